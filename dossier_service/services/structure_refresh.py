"""Structure memberships from the RPPS, refreshed after each RPPS import (issue 18).

``cercle annuaire importer`` ends by calling :func:`refresh_after_import`: every structure
that an account-linked professional's activity names (its FINESS number, or its SIRET), and
every structure that still has members « rpps », is brought in line by
:func:`structures.sync_rpps_members` (the one rule, also behind
``POST /api/v1/structures/{finess}/members/rpps``). One transaction per structure, each
change with its audit row; a second run changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.db import Database
from dossier_service.policy import Principal
from dossier_service.services import journal, structures
from dossier_service.services.errors import NotFound

IMPORT_PRINCIPAL = Principal(user_id="cercle:import-rpps", kind="service")

_NAMED = text(
    "SELECT DISTINCT a.finess, a.siret FROM annuaire_account_link l "
    "JOIN annuaire_professional p ON p.national_id = l.national_id AND p.active = 1 "
    "JOIN annuaire_activity a ON a.professional_id = p.id "
    "WHERE a.finess <> '' OR a.siret <> ''"
)
_BY_SIRET = text("SELECT finess FROM annuaire_structure WHERE siret = :siret AND active = 1")
_WITH_RPPS_MEMBERS = text(
    "SELECT DISTINCT finess FROM structure_members WHERE source = 'rpps' AND ended_at IS NULL"
)


@dataclass
class RefreshReport:
    structures: int = 0
    added: list[tuple[str, str]] = field(default_factory=list)  # (FINESS, account)
    ended: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "structures": self.structures,
            "ajoutes": [{"finess": f, "compte": m} for f, m in self.added],
            "retires": [{"finess": f, "compte": m} for f, m in self.ended],
        }


async def structures_to_refresh(session: AsyncSession) -> list[str]:
    """FINESS numbers whose RPPS-derived members may have changed."""
    wanted: set[str] = set()
    sirets: set[str] = set()
    for finess, siret in (await session.execute(_NAMED)).all():
        if finess:
            wanted.add(str(finess))
        if siret:
            sirets.add(str(siret))
    for siret in sorted(sirets):
        wanted.update(str(r[0]) for r in (await session.execute(_BY_SIRET, {"siret": siret})))
    wanted.update(str(r[0]) for r in (await session.execute(_WITH_RPPS_MEMBERS)).all())
    return sorted(wanted)


async def refresh_structure(
    session: AsyncSession, finess: str, report: RefreshReport, principal: Principal
) -> None:
    try:
        added, ended = await structures.sync_rpps_members(
            session, principal=principal, finess=finess
        )
    except NotFound:  # a number of no active FINESS structure: nothing to be a member of
        return
    report.structures += 1
    for members, action, listed in (
        (added, "create", report.added),
        (ended, "update", report.ended),
    ):
        for member in members:
            listed.append((member.finess, member.matrix_user_id))
            await journal.audit(
                session,
                principal=principal,
                action=action,
                resource=f"structures/{member.finess}/members/{member.id}",
                patient_id=None,
            )


async def refresh_after_import(
    database: Database, principal: Principal = IMPORT_PRINCIPAL
) -> RefreshReport:
    """Every structure the RPPS names, one transaction each."""
    report = RefreshReport()
    async with database.transaction() as session:
        numbers = await structures_to_refresh(session)
    for finess in numbers:
        async with database.transaction() as session:
            await refresh_structure(session, finess, report, principal)
    return report
