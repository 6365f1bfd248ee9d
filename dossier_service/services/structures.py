"""Structure members and referents (issue 18).

An admin or one of the structure's referents adds and removes its members; a member may
leave herself. Each change reaches every care circle holding the structure "avec accès au
dossier": a new member joins those circles with access (the conversation invites her), a
member who leaves loses the places the structure gave her (the conversation removes her).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.models.circle import StructureMember
from dossier_service.models.directory import Structure
from dossier_service.models.types import utcnow
from dossier_service.policy import Principal
from dossier_service.schemas import StructureMemberIn
from dossier_service.services import circle
from dossier_service.services.errors import Conflict, Forbidden, NotFound


async def structure_of(session: AsyncSession, finess: str) -> Structure:
    found = await session.get(Structure, finess.strip().upper())
    if found is None or not found.active:
        raise NotFound("Structure introuvable dans l'annuaire FINESS.")
    return found


async def membership(session: AsyncSession, finess: str, user_id: str) -> StructureMember | None:
    rows = await session.exec(
        select(StructureMember).where(
            StructureMember.finess == finess,
            StructureMember.matrix_user_id == user_id,
            col(StructureMember.ended_at).is_(None),
        )
    )
    return rows.first()


async def may_manage(session: AsyncSession, principal: Principal, finess: str) -> bool:
    """Admins (and the bot's own token) and the structure's referents."""
    if principal.privileged:
        return True
    mine = await membership(session, finess, principal.user_id)
    return mine is not None and mine.role == "referent"


async def _keep_a_referent(
    session: AsyncSession, principal: Principal, member: StructureMember
) -> None:
    """A referent leaving, removed or made a member again by someone other than an admin never
    leaves the structure without referent: nobody but the admins could then decide its
    account requests or manage its members. (An admin may; the RPPS refresh, privileged,
    follows the directory.)"""
    if principal.privileged or member.role != "referent":
        return
    others = await session.exec(
        select(StructureMember.id).where(
            StructureMember.finess == member.finess,
            StructureMember.role == "referent",
            StructureMember.id != member.id,
            col(StructureMember.ended_at).is_(None),
        )
    )
    if others.first() is None:
        raise Conflict(
            "La structure n'aurait plus de référent : nommez d'abord un autre référent, ou "
            "demandez-le à un administrateur."
        )


async def list_members(
    session: AsyncSession, *, principal: Principal, finess: str
) -> list[StructureMember]:
    """Visible to admins and to the structure's own members."""
    await structure_of(session, finess)
    if not principal.privileged and await membership(session, finess, principal.user_id) is None:
        raise Forbidden("Réservé aux membres de la structure et aux administrateurs.")
    return await circle.active_structure_members(session, finess)


async def add_member(
    session: AsyncSession,
    *,
    principal: Principal,
    finess: str,
    data: StructureMemberIn,
    source: str = "admin",
    without_rpps: bool = False,
    check_rights: bool = True,
) -> StructureMember:
    found = await structure_of(session, finess)
    if check_rights and not await may_manage(session, principal, found.finess):
        raise Forbidden(
            "Seuls un administrateur et les référents de la structure gèrent ses membres."
        )
    if await membership(session, found.finess, data.matrix_user_id) is not None:
        raise Conflict("Cette personne est déjà membre de la structure.", field="matrix_user_id")
    member = StructureMember(
        finess=found.finess,
        matrix_user_id=data.matrix_user_id,
        display_name=data.display_name,
        role=data.role,
        source=source,
        without_rpps=without_rpps,
        added_by=principal.author,
    )
    session.add(member)
    await session.flush()
    for patient, row in await circle.circles_with_access_through(session, found.finess):
        await circle.bring_structure_members(session, principal, patient, row, only=member)
    return member


async def end_member(
    session: AsyncSession, *, principal: Principal, finess: str, member_id: str
) -> StructureMember:
    found = await structure_of(session, finess)
    member = await session.get(StructureMember, member_id)
    if member is None or member.finess != found.finess:
        raise NotFound("Membre introuvable.")
    leaving_herself = member.matrix_user_id == principal.author and principal.kind == "user"
    if not leaving_herself and not await may_manage(session, principal, found.finess):
        raise Forbidden(
            "Seuls un administrateur et les référents de la structure gèrent ses membres."
        )
    if member.ended_at is not None:
        raise Conflict("Cette personne ne fait déjà plus partie de la structure.")
    await _keep_a_referent(session, principal, member)
    member.ended_at = utcnow()
    member.ended_by = principal.author
    session.add(member)
    for patient, row in await circle.circles_with_access_through(session, found.finess):
        await circle.withdraw_structure_members(
            session, principal, patient, row, only_user=member.matrix_user_id
        )
    return member


_RPPS_MEMBERS = text(
    "SELECT DISTINCT l.mxid, p.first_name, p.last_name FROM annuaire_account_link l "
    "JOIN annuaire_professional p ON p.national_id = l.national_id AND p.active = 1 "
    "JOIN annuaire_activity a ON a.professional_id = p.id "
    "WHERE a.finess = :finess OR (:siret <> '' AND a.siret = :siret) ORDER BY l.mxid"
)


async def sync_rpps_members(
    session: AsyncSession, *, principal: Principal, finess: str
) -> tuple[list[StructureMember], list[StructureMember]]:
    """The structure's members from the RPPS: every professional linked to an account whose
    activity names this structure (its FINESS number, or its SIRET) becomes a member (source
    « rpps »); one whose activity no longer names it stops being one. Members added by hand
    or by request are left alone. Returns (added, ended)."""
    found = await structure_of(session, finess)
    if not await may_manage(session, principal, found.finess):
        raise Forbidden(
            "Seuls un administrateur et les référents de la structure gèrent ses membres."
        )
    rows = await session.execute(_RPPS_MEMBERS, {"finess": found.finess, "siret": found.siret})
    wanted = {mxid: f"{first} {last}".strip() for mxid, first, last in rows.all()}
    current = {
        m.matrix_user_id: m for m in await circle.active_structure_members(session, found.finess)
    }
    added = []
    for mxid, name in wanted.items():
        if mxid in current:
            continue
        added.append(
            await add_member(
                session,
                principal=principal,
                finess=found.finess,
                data=StructureMemberIn(matrix_user_id=mxid, display_name=name or mxid),
                source="rpps",
                check_rights=False,
            )
        )
    ended = []
    for mxid, member in current.items():
        if member.source == "rpps" and mxid not in wanted:
            ended.append(
                await end_member(
                    session, principal=principal, finess=found.finess, member_id=member.id
                )
            )
    return added, ended


async def set_role(
    session: AsyncSession, *, principal: Principal, finess: str, member_id: str, role: str
) -> StructureMember:
    """An admin or a referent names a member referent, or makes a referent a member again."""
    found = await structure_of(session, finess)
    if not await may_manage(session, principal, found.finess):
        raise Forbidden(
            "Seuls un administrateur et les référents de la structure gèrent ses membres."
        )
    if role not in ("referent", "membre"):
        raise Conflict("Rôle inconnu : référent ou membre.", field="role")
    member = await session.get(StructureMember, member_id)
    if member is None or member.finess != found.finess or member.ended_at is not None:
        raise NotFound("Membre introuvable.")
    if role == "membre":
        await _keep_a_referent(session, principal, member)
    member.role = role
    session.add(member)
    await session.flush()
    return member


async def give_places(session: AsyncSession, *, principal: Principal, finess: str) -> int:
    """Every current member of the structure takes her places in the circles holding it
    « avec accès » — the repair when giving them failed after an approval (the approval and
    the places are two transactions); someone already there is left as she is. Returns the
    places given."""
    found = await structure_of(session, finess)
    if not await may_manage(session, principal, found.finess):
        raise Forbidden(
            "Seuls un administrateur et les référents de la structure gèrent ses membres."
        )
    given = 0
    for patient, row in await circle.circles_with_access_through(session, found.finess):
        given += len(await circle.bring_structure_members(session, principal, patient, row))
    return given


async def bring_into_circles(
    session: AsyncSession, *, principal: Principal, finess: str, user_id: str
) -> int:
    """Someone who became a member outside this service (an approved account request
    without RPPS, written with the approval) takes her places in the circles holding the
    structure « avec accès »; already there, nothing changes. Returns the places given."""
    member = await membership(session, finess, user_id)
    if member is None:
        return 0
    given = 0
    for patient, row in await circle.circles_with_access_through(session, finess):
        given += len(
            await circle.bring_structure_members(session, principal, patient, row, only=member)
        )
    return given
