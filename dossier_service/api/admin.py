"""The bot's event feed (outbox) and the admins' audit log. Neither can be deleted."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.api.context import context, query_int
from dossier_service.api.errors import ApiError
from dossier_service.api.runner import run
from dossier_service.api.serialize import dump_all
from dossier_service.models.audit import OutboxEvent
from dossier_service.policy import may_read_audit, may_read_events
from dossier_service.services.audit_log import audit_entries

routes = web.RouteTableDef()


@routes.get("/api/v1/events")
async def events(request: web.Request) -> web.Response:
    """File → conversation events after a sequence number (the bot resumes from its last)."""
    ctx = context(request)
    if not may_read_events(ctx.principal):
        raise ApiError("M_FORBIDDEN")
    after = query_int(request, "after", 0)
    limit = query_int(request, "limit", 100, low=1, high=1000)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        rows = list(
            (
                await session.exec(
                    select(OutboxEvent)
                    .where(col(OutboxEvent.seq) > after)
                    .order_by(col(OutboxEvent.seq))
                    .limit(limit)
                )
            ).all()
        )
        if rows:  # an empty poll reads nothing of anyone's file
            await ctx.audit(session, action="read", resource="events", patient_id=None)
        return 200, {"events": dump_all(rows), "next_after": rows[-1].seq if rows else after}

    return await run(ctx, work)


@routes.get("/api/v1/audit")
async def audit_log(request: web.Request) -> web.Response:
    """Admins only; newest first; filter by patient, actor; page with ``before`` (a seq)."""
    ctx = context(request)
    if not may_read_audit(ctx.principal):
        raise ApiError("M_FORBIDDEN")
    limit = query_int(request, "limit", 100, low=1, high=1000)
    before = query_int(request, "before", 0)
    patient_id = request.query.get("patient_id") or None
    actor = request.query.get("actor") or None

    async def work(session: AsyncSession) -> tuple[int, Any]:
        rows = await audit_entries(
            session, patient_id=patient_id, actor=actor, before=before, limit=limit
        )
        await ctx.audit(session, action="read", resource="audit", patient_id=patient_id)
        return 200, {
            "items": dump_all(rows),
            "next_before": rows[-1].seq if len(rows) == limit else None,
        }

    return await run(ctx, work)
