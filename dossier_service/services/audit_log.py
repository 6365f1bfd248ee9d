"""Reading the audit log (admins): one query shared by the API and the page."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.models.audit import AuditEntry


async def audit_entries(
    session: AsyncSession,
    *,
    patient_id: str | None,
    actor: str | None,
    before: int,
    limit: int,
) -> list[AuditEntry]:
    """Newest first; ``before`` (a sequence number, 0 for none) pages backwards."""
    query = select(AuditEntry)
    if patient_id:
        query = query.where(AuditEntry.patient_id == patient_id)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if before:
        query = query.where(col(AuditEntry.seq) < before)
    return list((await session.exec(query.order_by(col(AuditEntry.seq).desc()).limit(limit))).all())
