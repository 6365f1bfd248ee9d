"""The care circle: add, change, end members; mark a member as having left the room."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.models.circle import ROLE_LABELS, CircleMember
from dossier_service.models.patient import Patient
from dossier_service.models.types import utcnow
from dossier_service.policy import Principal
from dossier_service.schemas import CircleMemberIn, CircleMemberUpdate
from dossier_service.services import journal
from dossier_service.services.errors import Conflict, InvalidInput, row_of_file


def _payload(member: CircleMember) -> dict[str, object]:
    return {
        "member_id": member.id,
        "matrix_user_id": member.matrix_user_id,
        "kind": member.kind,
        "role": member.role,
        "has_access": member.has_access,
        "display_name": member.display_name,
    }


async def list_members(
    session: AsyncSession, *, patient_id: str, include_ended: bool = False
) -> list[CircleMember]:
    query = select(CircleMember).where(CircleMember.patient_id == patient_id)
    if not include_ended:
        query = query.where(col(CircleMember.ended_at).is_(None))
    rows = await session.exec(query.order_by(col(CircleMember.added_at), col(CircleMember.id)))
    return list(rows.all())


async def get_member(session: AsyncSession, *, patient_id: str, member_id: str) -> CircleMember:
    return await row_of_file(session, CircleMember, member_id, patient_id, "Membre introuvable.")


async def add_member(
    session: AsyncSession, *, principal: Principal, patient: Patient, data: CircleMemberIn
) -> CircleMember:
    if data.kind == "professionnel" and not data.matrix_user_id and data.has_access:
        raise InvalidInput(
            "Un professionnel habilité doit avoir un compte (identifiant Matrix).",
            field="matrix_user_id",
        )
    if data.matrix_user_id:
        existing = await session.exec(
            select(CircleMember).where(
                CircleMember.patient_id == patient.id,
                CircleMember.matrix_user_id == data.matrix_user_id,
                col(CircleMember.ended_at).is_(None),
            )
        )
        if existing.first() is not None:
            raise Conflict(
                "Cette personne fait déjà partie du cercle de soins.", field="matrix_user_id"
            )
    member = CircleMember(patient_id=patient.id, added_by=principal.author, **data.model_dump())
    session.add(member)
    await journal.note(
        session,
        principal,
        patient,
        f"Ajout de {member.display_name} sur le cercle de soins ({ROLE_LABELS[member.role]})",
    )
    await session.flush()
    await journal.tell(session, principal, patient, journal.CIRCLE_ADDED, _payload(member))
    return member


async def update_member(
    session: AsyncSession,
    *,
    principal: Principal,
    patient: Patient,
    member: CircleMember,
    data: CircleMemberUpdate,
) -> CircleMember:
    if member.ended_at is not None:
        raise Conflict("Ce membre ne fait plus partie du cercle de soins.")
    changes = {k: v for k, v in data.model_dump(exclude_unset=True).items() if v is not None}
    changes = {k: v for k, v in changes.items() if getattr(member, k) != v}
    if not changes:
        return member
    for key, value in changes.items():
        setattr(member, key, value)
    session.add(member)
    parts = []
    if "role" in changes:
        parts.append(f"rôle {ROLE_LABELS[member.role]}")
    if "has_access" in changes:
        parts.append("habilité" if member.has_access else "sans accès au dossier")
    detail = f" ({', '.join(parts)})" if parts else ""
    await journal.note(
        session,
        principal,
        patient,
        f"Modification de {member.display_name} sur le cercle de soins{detail}",
    )
    await journal.tell(session, principal, patient, journal.CIRCLE_CHANGED, _payload(member))
    return member


async def end_member(
    session: AsyncSession, *, principal: Principal, patient: Patient, member: CircleMember
) -> CircleMember:
    if member.ended_at is not None:
        raise Conflict("Ce membre ne fait déjà plus partie du cercle de soins.")
    if member.role == "coordinateur" and member.has_access:
        others = [
            m
            for m in await list_members(session, patient_id=patient.id)
            if m.id != member.id and m.role == "coordinateur" and m.has_access
        ]
        leaving_herself = member.matrix_user_id == principal.author
        if not others and (
            leaving_herself or (principal.kind == "user" and not principal.is_admin)
        ):
            raise Conflict(
                "Le dossier doit garder au moins un coordinateur : nommez-en un autre avant "
                "de vous retirer."
                if leaving_herself
                else "Le dossier doit garder au moins un coordinateur."
            )
    member.ended_at = utcnow()
    member.ended_by = principal.author
    session.add(member)
    await journal.note(
        session, principal, patient, f"Retrait de {member.display_name} du cercle de soins"
    )
    await journal.tell(session, principal, patient, journal.CIRCLE_ENDED, _payload(member))
    return member


async def mark_left_room(
    session: AsyncSession, *, principal: Principal, patient: Patient, matrix_user_id: str
) -> CircleMember | None:
    """Issue 6: a member left the patient's conversation. Idempotent; no outbox event (the
    conversation already knows)."""
    rows = await session.exec(
        select(CircleMember).where(
            CircleMember.patient_id == patient.id,
            CircleMember.matrix_user_id == matrix_user_id,
            col(CircleMember.ended_at).is_(None),
        )
    )
    member = rows.first()
    if member is None or member.left_room_at is not None:
        return member
    member.left_room_at = utcnow()
    session.add(member)
    await journal.note(
        session, principal, patient, f"{member.display_name} a quitté la conversation du patient"
    )
    return member
