"""The liaison notebook as people read and write it: notes, transmissions, signalements."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.db import connection_of
from dossier_service.file_revisions import mark_changed
from dossier_service.models.notebook import NotebookEntry
from dossier_service.models.patient import Patient
from dossier_service.models.types import table_of
from dossier_service.policy import Principal
from dossier_service.services import journal

_ENTRY_INSERT = insert(table_of(NotebookEntry))


async def list_entries(
    session: AsyncSession,
    *,
    patient_id: str,
    limit: int = 50,
    before: datetime | None = None,
    kind: str | None = None,
) -> list[NotebookEntry]:
    """Newest first; page with ``before`` = the last entry's ``created_at``."""
    query = select(NotebookEntry).where(NotebookEntry.patient_id == patient_id)
    if before is not None:
        query = query.where(NotebookEntry.created_at < before)
    if kind:
        query = query.where(NotebookEntry.kind == kind)
    rows = await session.exec(
        query.order_by(col(NotebookEntry.created_at).desc(), col(NotebookEntry.id)).limit(limit)
    )
    return list(rows.all())


async def add_entry(
    session: AsyncSession,
    *,
    principal: Principal,
    patient: Patient,
    kind: str,
    text: str,
    source: str = "web",
) -> NotebookEntry:
    entry = NotebookEntry(
        patient_id=patient.id, kind=kind, text=text, author=principal.author, source=source
    )
    # a plain INSERT (notes are the busiest write; an entry never changes afterwards)
    await (await connection_of(session)).execute(_ENTRY_INSERT, entry.model_dump())
    mark_changed(session, patient.id)
    if source != "matrix":  # what came from the conversation is not echoed back to it
        await journal.tell(
            session,
            principal,
            patient,
            journal.NOTEBOOK_ENTRY,
            {"entry_id": entry.id, "kind": kind},
        )
    return entry
