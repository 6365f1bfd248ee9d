"""The care circle: add, change, end members; mark a member as having left the room."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from dossier_service.models.circle import ROLE_LABELS, CircleMember, StructureMember
from dossier_service.models.directory import Structure
from dossier_service.models.patient import Patient
from dossier_service.models.types import utcnow
from dossier_service.policy import Principal
from dossier_service.schemas import CircleMemberIn, CircleMemberUpdate
from dossier_service.services import journal
from dossier_service.services.errors import Conflict, InvalidInput, row_of_file


def files_with_access(user_id: Any) -> SelectOfScalar[str]:
    """The files ``user_id`` may read now: she is a current member of their care circle, with
    access (``user_id`` a text, or the bound parameter of a cached statement)."""
    return select(CircleMember.patient_id).where(
        CircleMember.matrix_user_id == user_id,
        col(CircleMember.ended_at).is_(None),
        col(CircleMember.has_access).is_(True),
    )


def _current_places(patient_id: str, user_id: str | None) -> SelectOfScalar[CircleMember]:
    """The person's current places in this care circle (her own, one a structure gives)."""
    return select(CircleMember).where(
        CircleMember.patient_id == patient_id,
        CircleMember.matrix_user_id == user_id,
        col(CircleMember.ended_at).is_(None),
    )


def _payload(member: CircleMember) -> dict[str, object]:
    return {
        "member_id": member.id,
        "matrix_user_id": member.matrix_user_id,
        "kind": member.kind,
        "role": member.role,
        "has_access": member.has_access,
        "display_name": member.display_name,
        "directory_id": member.directory_id,
        "via_member_id": member.via_member_id,
    }


async def _joins(
    session: AsyncSession,
    principal: Principal,
    patient: Patient,
    member: CircleMember,
    note: str,
) -> None:
    """``member`` joins the circle: recorded, ``note`` written in the file's journal, and told
    to the conversation (``circle.added``: the bot invites the person)."""
    session.add(member)
    await journal.note(session, principal, patient, note)
    await session.flush()
    await journal.tell(session, principal, patient, journal.CIRCLE_ADDED, _payload(member))


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
    if data.kind == "structure":
        return await _add_structure(session, principal=principal, patient=patient, data=data)
    if data.matrix_user_id:
        existing = await session.exec(_current_places(patient.id, data.matrix_user_id))
        if existing.first() is not None:
            raise Conflict(
                "Cette personne fait déjà partie du cercle de soins.", field="matrix_user_id"
            )
    member = CircleMember(patient_id=patient.id, added_by=principal.author, **data.model_dump())
    await _joins(
        session,
        principal,
        patient,
        member,
        f"Ajout de {member.display_name} sur le cercle de soins ({ROLE_LABELS[member.role]})",
    )
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
    if member.kind == "structure" and "has_access" in changes:
        if member.has_access and not member.directory_id:
            raise InvalidInput(
                "Une structure hors annuaire FINESS ne peut pas recevoir l'accès au dossier.",
                field="has_access",
            )
        if member.has_access:
            await bring_structure_members(session, principal, patient, member)
        else:
            await withdraw_structure_members(session, principal, patient, member)
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
    if member.kind == "structure":
        await withdraw_structure_members(session, principal, patient, member)
    return member


# -- issue 18: structures in the care circle ------------------------------------------------
async def _add_structure(
    session: AsyncSession, *, principal: Principal, patient: Patient, data: CircleMemberIn
) -> CircleMember:
    """A FINESS structure joins the circle: "sans accès au dossier" it is only recorded and
    shown; "avec accès" its members join the circle with access (and so the conversation)."""
    finess = (data.directory_id or "").strip().upper()
    if not finess:
        if data.has_access:
            raise InvalidInput(
                "Une structure avec accès au dossier doit venir de l'annuaire FINESS "
                "(numéro FINESS) : ses membres y sont connus.",
                field="directory_id",
            )
        return await _add_unlisted_structure(session, principal, patient, data)
    found = await session.get(Structure, finess)
    if found is None or not found.active:
        raise InvalidInput(
            "Structure introuvable dans l'annuaire FINESS (numéro FINESS attendu).",
            field="directory_id",
        )
    existing = await session.exec(
        select(CircleMember).where(
            CircleMember.patient_id == patient.id,
            CircleMember.kind == "structure",
            CircleMember.directory_id == finess,
            col(CircleMember.ended_at).is_(None),
        )
    )
    if existing.first() is not None:
        raise Conflict("Cette structure fait déjà partie du cercle de soins.", field="directory_id")
    values = data.model_dump()
    values.update(
        directory_id=finess,
        display_name=found.name or found.long_name or finess,
        role="structure",
        matrix_user_id=None,
        profession=found.category,
    )
    member = CircleMember(patient_id=patient.id, added_by=principal.author, **values)
    access = "avec accès au dossier" if member.has_access else "sans accès au dossier"
    await _joins(
        session,
        principal,
        patient,
        member,
        f"Ajout de la structure {member.display_name} sur le cercle de soins ({access})",
    )
    if member.has_access:
        await bring_structure_members(session, principal, patient, member)
    return member


async def _add_unlisted_structure(
    session: AsyncSession, principal: Principal, patient: Patient, data: CircleMemberIn
) -> CircleMember:
    """A structure outside FINESS (an association, a social service…): recorded and shown by
    its name, "sans accès au dossier" (it has no members Cercle knows of)."""
    if not data.display_name.strip():
        raise InvalidInput("Nom de la structure requis.", field="display_name")
    values = data.model_dump()
    values.update(role="structure", matrix_user_id=None, directory_id=None, has_access=False)
    member = CircleMember(patient_id=patient.id, added_by=principal.author, **values)
    await _joins(
        session,
        principal,
        patient,
        member,
        f"Ajout de la structure {member.display_name} sur le cercle de soins (sans accès au dossier)",
    )
    return member


async def active_structure_members(session: AsyncSession, finess: str) -> list[StructureMember]:
    rows = await session.exec(
        select(StructureMember)
        .where(StructureMember.finess == finess, col(StructureMember.ended_at).is_(None))
        .order_by(col(StructureMember.added_at), col(StructureMember.id))
    )
    return list(rows.all())


async def bring_structure_members(
    session: AsyncSession,
    principal: Principal,
    patient: Patient,
    structure: CircleMember,
    only: StructureMember | None = None,
) -> list[CircleMember]:
    """The structure's members (or ``only`` one) join the circle with access, each told to
    the conversation (``circle.added``: the bot invites them with the history). Someone
    already in the circle keeps her own place."""
    assert structure.directory_id is not None
    people = [only] if only else await active_structure_members(session, structure.directory_id)
    added = []
    for person in people:
        existing = await session.exec(_current_places(patient.id, person.matrix_user_id))
        if existing.first() is not None:
            continue
        row = CircleMember(
            patient_id=patient.id,
            kind="professionnel",
            display_name=person.display_name,
            matrix_user_id=person.matrix_user_id,
            role="intervenant",
            has_access=True,
            description=f"Membre de la structure {structure.display_name}",
            added_by=principal.author,
            via_member_id=structure.id,
        )
        await _joins(
            session,
            principal,
            patient,
            row,
            f"Ajout de {row.display_name} sur le cercle de soins "
            f"(membre de la structure {structure.display_name})",
        )
        added.append(row)
    return added


async def withdraw_structure_members(
    session: AsyncSession,
    principal: Principal,
    patient: Patient,
    structure: CircleMember,
    only_user: str | None = None,
) -> list[CircleMember]:
    """The places the structure gave (all, or ``only_user``'s) end, each told to the
    conversation (``circle.ended``: the bot removes them from the room)."""
    query = select(CircleMember).where(
        CircleMember.patient_id == patient.id,
        CircleMember.via_member_id == structure.id,
        col(CircleMember.ended_at).is_(None),
    )
    if only_user is not None:
        query = query.where(CircleMember.matrix_user_id == only_user)
    ended = list((await session.exec(query)).all())
    for row in ended:
        row.ended_at = utcnow()
        row.ended_by = principal.author
        session.add(row)
        await journal.note(
            session,
            principal,
            patient,
            f"Retrait de {row.display_name} du cercle de soins "
            f"(plus d'accès par la structure {structure.display_name})",
        )
        await journal.tell(session, principal, patient, journal.CIRCLE_ENDED, _payload(row))
    return ended


async def circles_with_access_through(
    session: AsyncSession, finess: str
) -> list[tuple[Patient, CircleMember]]:
    """Every file whose circle holds this structure "avec accès au dossier"."""
    rows = await session.exec(
        select(Patient, CircleMember)
        .where(
            col(CircleMember.patient_id) == col(Patient.id),
            CircleMember.kind == "structure",
            CircleMember.directory_id == finess,
            CircleMember.has_access == True,  # noqa: E712
            col(CircleMember.ended_at).is_(None),
        )
        .order_by(col(CircleMember.added_at))
    )
    return [(p, m) for p, m in rows.all()]


async def mark_left_room(
    session: AsyncSession,
    *,
    principal: Principal,
    patient: Patient,
    matrix_user_id: str,
    removed_by: str | None = None,
    was_invited: bool = False,
) -> CircleMember | None:
    """Issue 6: a member is out of the patient's conversation — she left, was removed from
    it in a client by ``removed_by``, or her invitation was declined (``was_invited``) or
    withdrawn. Her places in the circle (and her access) stay as they are: the room says how
    to end them. Idempotent; no outbox event (the conversation knows)."""
    places = list((await session.exec(_current_places(patient.id, matrix_user_id))).all())
    if not places or all(p.left_room_at is not None for p in places):
        return places[0] if places else None
    for place in places:
        place.left_room_at = place.left_room_at or utcnow()
        session.add(place)
    name = places[0].display_name
    by = None  # someone else than her: a kick, a ban, an invitation withdrawn
    if removed_by and removed_by != matrix_user_id:
        by = await _name_in_circle(session, patient.id, removed_by)
    if was_invited and by:
        text = f"L'invitation de {name} dans la conversation du patient a été retirée par {by}"
    elif was_invited:
        text = f"{name} a décliné l'invitation dans la conversation du patient"
    elif by:
        text = f"{name} a été retiré(e) de la conversation du patient par {by}"
    else:
        text = f"{name} a quitté la conversation du patient"
    await journal.note(session, principal, patient, text)
    return places[0]


async def mark_back_in_room(
    session: AsyncSession, *, principal: Principal, patient: Patient, matrix_user_id: str
) -> CircleMember | None:
    """A member who had left the patient's conversation has joined it again. Idempotent: a
    first arrival (never marked left) changes nothing and writes nothing."""
    places = list((await session.exec(_current_places(patient.id, matrix_user_id))).all())
    back = [p for p in places if p.left_room_at is not None]
    for place in back:
        place.left_room_at = None
        session.add(place)
    if back:
        await journal.note(
            session,
            principal,
            patient,
            f"{back[0].display_name} a rejoint la conversation du patient",
        )
    return places[0] if places else None


async def _name_in_circle(session: AsyncSession, patient_id: str, user_id: str) -> str:
    """How the file names ``user_id``: her name in this circle, else her Matrix id."""
    place = (await session.exec(_current_places(patient_id, user_id))).first()
    return place.display_name if place is not None else user_id
