"""Who may extract what (``extraction.access.may_extract``): admins the platform and any
structure; never the service's token alone; nobody else until the referents' rule lands."""

from __future__ import annotations

from dossier_service.db import Database
from dossier_service.extraction.access import may_extract
from dossier_service.policy import Principal
from tests.dossier_service.extraction.conftest import SSIAD


async def test_admins_only_until_referents_plug_in(db: Database) -> None:
    admin = Principal("@admin:t", is_admin=True)
    person = Principal("@ide:t")
    service = Principal("@bot:t", kind="service")
    async with db.sessions() as session:
        assert await may_extract(session, admin, "plateforme")
        assert await may_extract(session, admin, SSIAD)
        assert not await may_extract(session, service, "plateforme")
        assert not await may_extract(session, service, SSIAD)
        assert not await may_extract(session, person, "plateforme")
        # the referent rule plugs in here: a referent of SSIAD will be allowed SSIAD only
        assert not await may_extract(session, person, SSIAD)
