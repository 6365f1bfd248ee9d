"""What every change writes beside itself, in the caller's transaction: the liaison notebook
entry, the outbox event for the conversation side, and the audit row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, text
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.db import connection_of
from dossier_service.file_revisions import mark_changed
from dossier_service.models.audit import AuditEntry, OutboxEvent
from dossier_service.models.notebook import NotebookEntry
from dossier_service.models.patient import Patient
from dossier_service.models.types import table_of, utcnow
from dossier_service.policy import Principal

# Outbox event types (the bot's vocabulary, issue 6).
TASK_ASSIGNED = "task.assigned"
TASK_CLOSED = "task.closed"
DOCUMENT_ADDED = "document.added"
CIRCLE_ADDED = "circle.added"
CIRCLE_CHANGED = "circle.changed"
CIRCLE_ENDED = "circle.ended"
HOSPITAL_ADMISSION = "hospitalisation.admission"
HOSPITAL_DISCHARGE = "hospitalisation.discharge"
DEATH_DECLARED = "death.declared"
DEATH_CANCELLED = "death.cancelled"
AUDIT_ROWS = "cercle_audit_rows"  # key in the session's info: audit rows written
FORM_CHANGED = "form.changed"
PATIENT_CREATED = "patient.created"
NOTEBOOK_ENTRY = "notebook.entry"

_OUTBOX_LOCK = 0x43455243  # "CERC": serialises outbox writers so seq order = commit order
# Built once (immutable statements; values are passed as parameters on each call).
_OUTBOX_INSERT = insert(table_of(OutboxEvent))
_AUDIT_INSERT = insert(table_of(AuditEntry))
_OUTBOX_LOCK_SQL = text("SELECT pg_advisory_xact_lock(:k)")


async def notebook_event(
    session: AsyncSession, *, patient_id: str, text: str, author: str, source: str = "web"
) -> NotebookEntry:
    """An automatic liaison entry describing a change."""
    entry = NotebookEntry(
        patient_id=patient_id, kind="evenement", text=text, author=author, source=source
    )
    session.add(entry)
    mark_changed(session, patient_id)
    return entry


async def note(
    session: AsyncSession, principal: Principal, patient: Patient, text: str
) -> NotebookEntry:
    """The liaison entry of a change to ``patient``'s file, written by ``principal``."""
    return await notebook_event(session, patient_id=patient.id, author=principal.author, text=text)


async def tell(
    session: AsyncSession,
    principal: Principal,
    patient: Patient,
    type: str,
    payload: dict[str, Any],
) -> None:
    """The outbox event of a change to ``patient``'s file, for its conversation."""
    await emit(
        session,
        type=type,
        patient_id=patient.id,
        room_id=patient.room_id,
        actor=principal.author,
        payload=payload,
    )


async def emit(
    session: AsyncSession,
    *,
    type: str,
    patient_id: str | None,
    room_id: str | None,
    actor: str,
    payload: dict[str, Any],
) -> None:
    """Append an outbox event. On PostgreSQL a transaction-scoped advisory lock makes the
    sequence numbers visible in order, so a reader resuming "after N" never skips one."""
    # Core execution on the session's connection: same transaction, no ORM machinery
    connection = await connection_of(session)
    if connection.dialect.name == "postgresql":
        await connection.execute(_OUTBOX_LOCK_SQL, {"k": _OUTBOX_LOCK})
    await connection.execute(
        _OUTBOX_INSERT,
        {
            "type": type,
            "patient_id": patient_id,
            "room_id": room_id,
            "actor": actor,
            "payload": payload,
            "at": utcnow(),
        },
    )


async def audit(
    session: AsyncSession,
    *,
    principal: Principal,
    action: str,
    resource: str,
    patient_id: str | None,
    remote: str = "",
    request_id: str = "",
    outcome: str = "ok",
) -> None:
    """One audit row (a plain INSERT: it sits on every request's path)."""
    actor = principal.user_id
    if principal.on_behalf_of and principal.on_behalf_of != principal.user_id:
        actor = f"{principal.user_id} pour {principal.on_behalf_of}"
    written = await (await connection_of(session)).execute(
        _AUDIT_INSERT,
        {
            "at": utcnow(),
            "actor": actor[:255],
            "actor_kind": principal.audit_kind,
            "action": action,
            "resource": resource[:200],
            "patient_id": patient_id,
            "outcome": outcome,
            "remote": remote[:100],
            "request_id": request_id[:40],
        },
    )
    # counted per session: the API's runner refuses to commit a call whose row is missing
    session.info[AUDIT_ROWS] = session.info.get(AUDIT_ROWS, 0) + written.rowcount


async def audit_own_act(
    session: AsyncSession, user_id: str, *, action: str, resource: str, remote: str | None
) -> None:
    """The audit row of a person's act on her own account, about no file, where no
    request context was authenticated (logging in or out, reading her agenda feed)."""
    await audit(
        session,
        principal=Principal(user_id=user_id),
        action=action,
        resource=resource,
        patient_id=None,
        remote=remote or "",
    )
