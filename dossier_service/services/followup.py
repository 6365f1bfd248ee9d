"""Memos and hospitalisations."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.models.followup import Hospitalisation, Memo
from dossier_service.models.patient import Patient
from dossier_service.models.types import utcnow
from dossier_service.policy import Principal
from dossier_service.schemas import HospitalisationIn, HospitalisationUpdate, MemoIn, MemoUpdate
from dossier_service.services import journal
from dossier_service.services.errors import InvalidInput, row_of_file
from dossier_service.services.patch import apply_patch
from dossier_service.services.text import fr_date


async def list_memos(session: AsyncSession, *, patient_id: str) -> list[Memo]:
    rows = await session.exec(
        select(Memo).where(Memo.patient_id == patient_id).order_by(col(Memo.created_at).desc())
    )
    return list(rows.all())


async def add_memo(
    session: AsyncSession, *, principal: Principal, patient: Patient, data: MemoIn
) -> Memo:
    memo = Memo(patient_id=patient.id, text=data.text, created_by=principal.author)
    session.add(memo)
    await journal.note(session, principal, patient, "Ajout d'un mémo")
    await session.flush()
    return memo


async def update_memo(
    session: AsyncSession,
    *,
    principal: Principal,
    patient: Patient,
    memo_id: str,
    data: MemoUpdate,
) -> Memo:
    memo = await row_of_file(session, Memo, memo_id, patient.id, "Mémo introuvable.")
    if data.text is not None:
        memo.text = data.text
    if data.archived is not None:
        memo.archived = data.archived
    memo.updated_at = utcnow()
    session.add(memo)
    text = "Archivage d'un mémo" if data.archived else "Modification d'un mémo"
    await journal.note(session, principal, patient, text)
    return memo


async def list_hospitalisations(session: AsyncSession, *, patient_id: str) -> list[Hospitalisation]:
    rows = await session.exec(
        select(Hospitalisation)
        .where(Hospitalisation.patient_id == patient_id)
        .order_by(col(Hospitalisation.admission_at).desc())
    )
    return list(rows.all())


def _check_stay(admission: datetime, discharge: datetime | None) -> None:
    if discharge is not None and discharge < admission:
        raise InvalidInput("La sortie précède l'admission.", field="discharge_at")


async def add_hospitalisation(
    session: AsyncSession, *, principal: Principal, patient: Patient, data: HospitalisationIn
) -> Hospitalisation:
    _check_stay(data.admission_at, data.discharge_at)
    stay = Hospitalisation(patient_id=patient.id, created_by=principal.author, **data.model_dump())
    session.add(stay)
    where = stay.structure + (f" ({stay.service})" if stay.service else "")
    await journal.note(
        session,
        principal,
        patient,
        f"Hospitalisation : admission le {fr_date(stay.admission_at)} à {where}",
    )
    await session.flush()
    payload = {
        "hospitalisation_id": stay.id,
        "structure": stay.structure,
        "admission_at": stay.admission_at.isoformat(),
    }
    await journal.tell(session, principal, patient, journal.HOSPITAL_ADMISSION, payload)
    if stay.discharge_at is not None and stay.discharge_at <= utcnow():
        await _discharged(session, principal=principal, patient=patient, stay=stay)
    return stay


async def _discharged(
    session: AsyncSession, *, principal: Principal, patient: Patient, stay: Hospitalisation
) -> None:
    assert stay.discharge_at is not None
    await journal.note(
        session,
        principal,
        patient,
        f"Hospitalisation : sortie le {fr_date(stay.discharge_at)} de {stay.structure}",
    )
    await journal.tell(
        session,
        principal,
        patient,
        journal.HOSPITAL_DISCHARGE,
        {
            "hospitalisation_id": stay.id,
            "structure": stay.structure,
            "discharge_at": stay.discharge_at.isoformat(),
        },
    )


async def update_hospitalisation(
    session: AsyncSession,
    *,
    principal: Principal,
    patient: Patient,
    stay_id: str,
    data: HospitalisationUpdate,
) -> Hospitalisation:
    stay = await row_of_file(
        session, Hospitalisation, stay_id, patient.id, "Hospitalisation introuvable."
    )
    had_discharge = stay.discharge_at
    apply_patch(stay, data, clearable={"discharge_at"})
    _check_stay(stay.admission_at, stay.discharge_at)
    session.add(stay)
    if stay.discharge_at is not None and stay.discharge_at != had_discharge:
        await _discharged(session, principal=principal, patient=patient, stay=stay)
    else:
        await journal.note(
            session, principal, patient, f"Modification de l'hospitalisation à {stay.structure}"
        )
    return stay
