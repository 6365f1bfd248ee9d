"""End of the retention period of a closed file: its documents leave the live system (they
were archived first by `cercle retention`). The file's identity, status history and audit
trail stay: they say that the file existed and when it was purged."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.models.documents import Document
from dossier_service.models.patient import Patient
from dossier_service.policy import Principal
from dossier_service.services import journal

CLOSED = "clos"


async def purge_documents(
    session: AsyncSession, *, principal: Principal, patient: Patient
) -> list[str]:
    """Delete the file's document rows; returns the contents (SHA-256) they named."""
    found = await session.exec(select(Document.sha256).where(Document.patient_id == patient.id))
    hashes = list(found.all())
    await session.exec(delete(Document).where(col(Document.patient_id) == patient.id))
    await journal.note(
        session,
        principal,
        patient,
        f"Fin de la durée de conservation : {len(hashes)} document(s) archivé(s) puis "
        "retiré(s) du dossier",
    )
    return hashes


async def still_used(session: AsyncSession, hashes: Iterable[str]) -> set[str]:
    """Which of these contents another document still names (contents are shared)."""
    wanted = list(set(hashes))
    if not wanted:
        return set()
    found = await session.exec(select(Document.sha256).where(col(Document.sha256).in_(wanted)))
    return set(found.all())
