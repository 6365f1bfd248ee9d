"""Who may extract what (``extraction.access.may_extract``): admins the platform and any
structure; a structure's current referent his structure only; a plain member, an ended
referent and the service's token alone never."""

from __future__ import annotations

from datetime import UTC, datetime

from dossier_service.db import Database
from dossier_service.extraction.access import may_extract
from dossier_service.models.circle import StructureMember
from dossier_service.policy import Principal
from tests.dossier_service.extraction.conftest import SSIAD

OTHER = "340000014"


async def test_admins_everything_referents_their_structure_only(db: Database) -> None:
    admin = Principal("@admin:t", is_admin=True)
    referent, member, former = Principal("@ref:t"), Principal("@ide:t"), Principal("@old:t")
    service = Principal("@bot:t", kind="service")
    async with db.transaction() as session:
        for who, role, ended in (
            ("@ref:t", "referent", None),
            ("@ide:t", "membre", None),
            ("@old:t", "referent", datetime(2026, 1, 1, tzinfo=UTC)),
        ):
            session.add(
                StructureMember(
                    finess=SSIAD,
                    matrix_user_id=who,
                    display_name=who,
                    role=role,
                    added_by="@admin:t",
                    ended_at=ended,
                    ended_by="@admin:t" if ended else None,
                )
            )
    async with db.sessions() as session:
        assert await may_extract(session, admin, "plateforme")
        assert await may_extract(session, admin, SSIAD)
        assert await may_extract(session, referent, SSIAD)
        assert not await may_extract(session, referent, OTHER)
        assert not await may_extract(session, referent, "plateforme")
        assert not await may_extract(session, member, SSIAD)
        assert not await may_extract(session, former, SSIAD)
        assert not await may_extract(session, service, "plateforme")
        assert not await may_extract(session, service, SSIAD)
