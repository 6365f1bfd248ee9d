"""The bot's event feed (outbox) and the admins' audit log. Neither can be deleted."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.api.operation import Audit, Call, Operations, Param, allowed_when
from dossier_service.api.serialize import dump_all
from dossier_service.models.audit import OutboxEvent
from dossier_service.policy import may_read_audit, may_read_events
from dossier_service.services.audit_log import audit_entries

operations = Operations()


@operations.get(
    "/api/v1/events",
    access=allowed_when("may_read_events", may_read_events),
    audit=Audit("read", "events"),
    query=(Param("after", "int", 0), Param("limit", "int", 100, low=1, high=1000)),
)
async def events(call: Call, session: AsyncSession) -> tuple[int, Any]:
    """File → conversation events after a sequence number (the bot resumes from its last)."""
    after = call.query["after"]
    rows = list(
        (
            await session.exec(
                select(OutboxEvent)
                .where(col(OutboxEvent.seq) > after)
                .order_by(col(OutboxEvent.seq))
                .limit(call.query["limit"])
            )
        ).all()
    )
    if not rows:  # an empty poll reads nothing of anyone's file
        call.nothing_read()
    return 200, {"events": dump_all(rows), "next_after": rows[-1].seq if rows else after}


@operations.get(
    "/api/v1/audit",
    access=allowed_when("may_read_audit", may_read_audit),
    audit=Audit("read", "audit"),
    query=(
        Param("limit", "int", 100, low=1, high=1000),
        Param("before", "int", 0),
        Param("patient_id"),
        Param("actor"),
    ),
)
async def audit_log(call: Call, session: AsyncSession) -> tuple[int, Any]:
    """Admins only; newest first; filter by patient, actor; page with ``before`` (a seq)."""
    q = call.query
    rows = await audit_entries(
        session, patient_id=q["patient_id"], actor=q["actor"], before=q["before"], limit=q["limit"]
    )
    call.audit_as(patient_id=q["patient_id"])
    return 200, {
        "items": dump_all(rows),
        "next_before": rows[-1].seq if len(rows) == q["limit"] else None,
    }
