"""Thematic form answers, versioned: each save is a new row with what changed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.form_answers import FormAnswerError, diff_answers, validate_answers
from dossier_service.forms_schema import FormDefinition
from dossier_service.models.forms import FormAnswer
from dossier_service.models.patient import Patient
from dossier_service.models.types import utcnow
from dossier_service.policy import Principal
from dossier_service.services import journal
from dossier_service.services.errors import Conflict, InvalidInput
from dossier_service.services.text import fr_date


async def versions(session: AsyncSession, *, patient_id: str, form_id: str) -> list[FormAnswer]:
    rows = await session.exec(
        select(FormAnswer)
        .where(FormAnswer.patient_id == patient_id, FormAnswer.form_id == form_id)
        .order_by(col(FormAnswer.version).desc())
    )
    return list(rows.all())


async def latest_by_form(session: AsyncSession, *, patient_id: str) -> dict[str, FormAnswer]:
    rows = await session.exec(
        select(FormAnswer)
        .where(FormAnswer.patient_id == patient_id)
        .order_by(col(FormAnswer.version))
    )
    latest: dict[str, FormAnswer] = {}
    for row in rows.all():
        latest[row.form_id] = row
    return latest


async def save_answers(
    session: AsyncSession,
    *,
    principal: Principal,
    patient: Patient,
    form: FormDefinition,
    answers: Mapping[str, Any],
    base_version: int | None,
    today: date,
) -> FormAnswer:
    """Store a new version. ``base_version`` (the version the editor started from) guards
    against overwriting someone else's save: a stale one is a conflict."""
    try:
        clean = validate_answers(form, answers, today=today)
    except FormAnswerError as exc:
        first = next(iter(exc.errors.items()), ("_", "réponses invalides"))
        raise InvalidInput(f"Formulaire : {first[0]} — {first[1]}", field=first[0]) from exc
    history = await versions(session, patient_id=patient.id, form_id=form.key)
    current = history[0] if history else None
    if base_version is not None and (current.version if current else 0) != base_version:
        raise Conflict("Le formulaire a été modifié entre-temps : rechargez-le.")
    changes = diff_answers(form, current.answers if current else None, clean)
    if current is not None and not changes:
        return current
    initiated_at = history[-1].initiated_at if history else utcnow()
    row = FormAnswer(
        patient_id=patient.id,
        form_id=form.key,
        version=(current.version + 1) if current else 1,
        answers=clean,
        changed_fields=[c.key for c in changes],
        initiated_at=initiated_at,
        created_by=principal.author,
    )
    session.add(row)
    verb = "Modification" if current else "Création"
    await journal.note(
        session,
        principal,
        patient,
        f"{verb} du formulaire {form.title} initié le {fr_date(initiated_at)}",
    )
    await session.flush()
    await journal.tell(
        session,
        principal,
        patient,
        journal.FORM_CHANGED,
        {"form_id": form.key, "version": row.version, "title": form.title},
    )
    return row
