"""Patient files: creation, INS identity, file status, death declaration, room link, search."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import identity as ins
from dossier_service.models.circle import CircleMember
from dossier_service.models.patient import (
    DeathDeclaration,
    FileStatusChange,
    IdentityStatusChange,
    Patient,
)
from dossier_service.models.types import utcnow
from dossier_service.policy import Principal
from dossier_service.schemas import IdentityFields, PatientCreate
from dossier_service.services import journal
from dossier_service.services.circle import files_with_access
from dossier_service.services.errors import Conflict, InvalidInput
from dossier_service.services.text import fr_date

# Traits that make up an INS identity: frozen once the identity is verified or retrieved.
STRICT_TRAITS = frozenset(
    {"birth_name", "birth_first_names", "sex", "birth_date", "birth_insee_code", "ins_number"}
)
_NOT_IDENTITY = frozenset({"id", "room_id", "coordinator", "coordinator_name"})
# the file's traits held as text, never None: "" when unknown
TEXT_TRAITS = (
    "label",
    "birth_name",
    "used_name",
    "used_first_name",
    "birth_commune",
    "birth_country",
    "postcode",
    "address",
    "email",
)


async def get_patient(session: AsyncSession, *, patient_id: str) -> Patient | None:
    return await session.get(Patient, patient_id)


async def patient_by_room(session: AsyncSession, *, room_id: str) -> Patient | None:
    result = await session.exec(select(Patient).where(Patient.room_id == room_id))
    return result.first()


def _apply_identity(
    patient: Patient, data: IdentityFields, today: date, *, creating: bool = False
) -> list[str]:
    """Validate and apply the fields the client sent; return the names of changed fields.

    A new file may start at any status whose requirements are met (an identity retrieved
    and checked at the first visit is QUAL at once); later changes follow the transitions.
    """
    given = {k: getattr(data, k) for k in data.model_fields_set if k not in _NOT_IDENTITY}
    try:
        if given.get("birth_insee_code") is not None:
            given["birth_insee_code"] = ins.check_insee_code(given["birth_insee_code"])
        if given.get("ins_number") is not None:
            given["ins_number"] = ins.check_ins_number(given["ins_number"])
        if given.get("birth_date") is not None:
            ins.check_past_date(given["birth_date"], "birth_date", today, "date de naissance")
        if given.get("identity_document_date") is not None:
            ins.check_past_date(
                given["identity_document_date"],
                "identity_document_date",
                today,
                "date de contrôle de la pièce d'identité",
            )
        for key in TEXT_TRAITS:
            if key in given and given[key] is None:
                given[key] = ""
        for key in ("birth_first_names", "phones"):
            if key in given and given[key] is None:
                given[key] = []
        if "identity_status" in given and given["identity_status"] is None:
            raise ins.IdentityError("identity_status", "Le statut d'identité est obligatoire.")
        changed = [k for k, v in given.items() if getattr(patient, k) != v]
        old_status = patient.identity_status
        new_status = given.get("identity_status", old_status)
        if not creating:
            ins.check_transition(old_status, new_status)
        strict_changed = STRICT_TRAITS.intersection(changed)
        if strict_changed and old_status != "PROV" and new_status == old_status:
            raise ins.IdentityError(
                sorted(strict_changed)[0],
                f"Les traits d'une identité au statut {old_status} ne peuvent être modifiés "
                "qu'en changeant de statut.",
            )
        merged = {**{k: getattr(patient, k) for k in Patient.model_fields}, **given}
        ins.check_status_requirements(
            new_status,
            ins_number=merged["ins_number"],
            identity_document_type=merged["identity_document_type"],
            identity_document_date=merged["identity_document_date"],
            birth_name=merged["birth_name"],
            birth_first_names=merged["birth_first_names"],
            birth_date=merged["birth_date"],
            sex=merged["sex"],
            birth_insee_code=merged["birth_insee_code"],
        )
        if merged["ins_number"] and new_status in ("RECUP", "QUAL"):
            ins.check_ins_matches(
                merged["ins_number"], sex=merged["sex"], birth_date=merged["birth_date"]
            )
        if (
            merged["birth_date"] is not None
            and merged["identity_document_date"] is not None
            and merged["identity_document_date"] < merged["birth_date"]
        ):
            raise ins.IdentityError(
                "identity_document_date",
                "La date de contrôle de la pièce précède la date de naissance.",
            )
    except ins.IdentityError as exc:
        raise InvalidInput(exc.message, field=exc.field) from exc
    for key, value in given.items():
        setattr(patient, key, value)
    if "birth_first_names" in given:
        patient.first_birth_first_name = (
            given["birth_first_names"][0] if given["birth_first_names"] else ""
        )
    return changed


async def create_patient(
    session: AsyncSession, *, principal: Principal, data: PatientCreate, today: date
) -> Patient:
    """Open a file. The requesting professional (or ``data.coordinator`` when the bot opens
    it for someone) becomes its first coordinator, with access."""
    if data.room_id and await patient_by_room(session, room_id=data.room_id):
        raise Conflict("Cette conversation est déjà liée à un dossier.", field="room_id")
    if data.id and await session.get(Patient, data.id) is not None:
        raise Conflict("Cet identifiant de dossier existe déjà.", field="id")
    patient = Patient(created_by=principal.author, room_id=data.room_id)
    if data.id:  # issue 6: the file takes the pseudonymous id the room already carries
        patient.id = data.id
    _apply_identity(patient, data, today, creating=True)
    session.add(patient)
    await session.flush()
    coordinator = data.coordinator or (principal.author if principal.kind == "user" else None)
    if coordinator:
        session.add(
            CircleMember(
                patient_id=patient.id,
                kind="professionnel",
                display_name=data.coordinator_name or coordinator,
                matrix_user_id=coordinator,
                role="coordinateur",
                has_access=True,
                added_by=principal.author,
            )
        )
    session.add(
        FileStatusChange(
            patient_id=patient.id,
            status=patient.file_status,
            changed_by=principal.author,
            comment="Création du dossier",
        )
    )
    await journal.note(session, principal, patient, "Création du dossier")
    await journal.tell(
        session, principal, patient, journal.PATIENT_CREATED, {"coordinator": coordinator}
    )
    await session.flush()
    return patient


async def update_identity(
    session: AsyncSession,
    *,
    principal: Principal,
    patient: Patient,
    data: IdentityFields,
    today: date,
) -> list[str]:
    old_status = patient.identity_status
    changed = _apply_identity(patient, data, today)
    if not changed:
        return []
    patient.updated_at = utcnow()
    if patient.identity_status != old_status:
        session.add(
            IdentityStatusChange(
                patient_id=patient.id,
                status=patient.identity_status,
                previous_status=old_status,
                changed_by=principal.author,
            )
        )
        await journal.note(
            session,
            principal,
            patient,
            f"Statut de l'identité : {ins.STATUS_LABELS[old_status]} → "
            f"{ins.STATUS_LABELS[patient.identity_status]}",
        )
    others = [c for c in changed if c != "identity_status"]
    if others:
        await journal.note(
            session, principal, patient, "Modification des informations administratives"
        )
    # issue 6: the bot keeps the room's pinned identity message current (field names only)
    await journal.emit(
        session,
        type="patient.identity_changed",
        patient_id=patient.id,
        room_id=patient.room_id,
        actor=principal.author,
        payload={"fields": sorted(changed)},
    )
    session.add(patient)
    await session.flush()
    return changed


async def set_file_status(
    session: AsyncSession,
    *,
    principal: Principal,
    patient: Patient,
    status: str,
    comment: str,
    allowed: Sequence[str],
) -> FileStatusChange:
    if status not in allowed:
        raise InvalidInput("Statut de dossier inconnu.", field="status")
    if status == patient.file_status:
        raise InvalidInput("Le dossier a déjà ce statut.", field="status")
    change = FileStatusChange(
        patient_id=patient.id,
        status=status,
        previous_status=patient.file_status,
        comment=comment,
        changed_by=principal.author,
    )
    await journal.note(
        session, principal, patient, f"Statut du dossier : {patient.file_status} → {status}"
    )
    patient.file_status = status
    patient.updated_at = utcnow()
    session.add_all([change, patient])
    await session.flush()
    return change


async def active_death(session: AsyncSession, *, patient_id: str) -> DeathDeclaration | None:
    result = await session.exec(
        select(DeathDeclaration).where(
            DeathDeclaration.patient_id == patient_id, col(DeathDeclaration.cancelled_at).is_(None)
        )
    )
    return result.first()


async def declare_death(
    session: AsyncSession, *, principal: Principal, patient: Patient, death_date: date, today: date
) -> DeathDeclaration:
    if await active_death(session, patient_id=patient.id):
        raise Conflict("Un décès est déjà déclaré pour ce patient.")
    if death_date > today:
        raise InvalidInput("La date du décès ne peut pas être dans le futur.", field="death_date")
    if patient.birth_date and death_date < patient.birth_date:
        raise InvalidInput("La date du décès précède la date de naissance.", field="death_date")
    declaration = DeathDeclaration(
        patient_id=patient.id, death_date=death_date, declared_by=principal.author
    )
    patient.death_date = death_date
    patient.updated_at = utcnow()
    session.add_all([declaration, patient])
    await journal.note(
        session, principal, patient, f"Déclaration du décès du patient (le {fr_date(death_date)})"
    )
    await journal.tell(session, principal, patient, journal.DEATH_DECLARED, {})
    await session.flush()
    return declaration


async def cancel_death(
    session: AsyncSession, *, principal: Principal, patient: Patient, reason: str
) -> DeathDeclaration:
    declaration = await active_death(session, patient_id=patient.id)
    if declaration is None:
        raise Conflict("Aucun décès déclaré à annuler.")
    declaration.cancelled_at = utcnow()
    declaration.cancelled_by = principal.author
    declaration.cancel_reason = reason
    patient.death_date = None
    patient.updated_at = utcnow()
    session.add_all([declaration, patient])
    await journal.note(
        session, principal, patient, "Annulation de la déclaration du décès du patient"
    )
    await journal.tell(session, principal, patient, journal.DEATH_CANCELLED, {})
    await session.flush()
    return declaration


async def link_room(
    session: AsyncSession, *, principal: Principal, patient: Patient, room_id: str
) -> Patient:
    if patient.room_id == room_id:
        return patient
    other = await patient_by_room(session, room_id=room_id)
    if other is not None:
        raise Conflict("Cette conversation est déjà liée à un autre dossier.", field="room_id")
    patient.room_id = room_id
    patient.updated_at = utcnow()
    session.add(patient)
    await journal.note(session, principal, patient, "Conversation du patient liée au dossier")
    await session.flush()
    return patient


def _visible_patients(principal: Principal) -> Any:
    query = select(Patient)
    if not principal.privileged:
        query = query.where(col(Patient.id).in_(files_with_access(principal.user_id)))
    return query


async def list_patients(
    session: AsyncSession,
    *,
    principal: Principal,
    search: str = "",
    room_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Patient], int]:
    """Files the principal may open (all of them for admins and the bot), newest first."""
    query = _visible_patients(principal)
    if room_id:
        query = query.where(Patient.room_id == room_id)
    if search:
        needle = f"%{search.lower()}%"
        query = query.where(
            or_(
                func.lower(Patient.label).like(needle),
                func.lower(Patient.birth_name).like(needle),
                func.lower(Patient.used_name).like(needle),
                func.lower(Patient.first_birth_first_name).like(needle),
                func.lower(Patient.used_first_name).like(needle),
                func.lower(Patient.id).like(needle),
                col(Patient.ins_number) == search.replace(" ", "").upper(),  # the mail bridge
            )
        )
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(
        query.order_by(col(Patient.created_at).desc(), col(Patient.id)).limit(limit).offset(offset)
    )
    return list(rows.all()), int(total)
