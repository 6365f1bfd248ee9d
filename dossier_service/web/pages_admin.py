"""The access log (journal d'accès) for admins: who read or changed which file, when, from
where, with what outcome. Read-only, like the API's; reading it is itself audited."""

from __future__ import annotations

from aiohttp import web
from sqlmodel import col, select

from dossier_service.models.audit import AuditEntry
from dossier_service.policy import may_read_audit
from dossier_service.web.pagectx import page_context
from dossier_service.web.pages_login import PAGES

routes = web.RouteTableDef()
PAGE_SIZE = 100


@routes.get("/journal")
async def access_log(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    if not may_read_audit(ctx.principal):
        raise web.HTTPNotFound()
    patient_id = request.query.get("patient", "").strip()[:40] or None
    actor = request.query.get("acteur", "").strip()[:255] or None
    try:
        before = max(0, int(request.query.get("avant", "0")))
    except ValueError:
        before = 0
    async with ctx.db.transaction() as session:
        query = select(AuditEntry)
        if patient_id:
            query = query.where(AuditEntry.patient_id == patient_id)
        if actor:
            query = query.where(AuditEntry.actor == actor)
        if before:
            query = query.where(col(AuditEntry.seq) < before)
        rows = list(
            (await session.exec(query.order_by(col(AuditEntry.seq).desc()).limit(PAGE_SIZE))).all()
        )
        await ctx.audit(session, action="read", resource="page:audit", patient_id=patient_id)
    return request.app[PAGES].render(
        request,
        "journal.html",
        {
            "nav": "journal",
            "rows": rows,
            "patient_filter": patient_id or "",
            "actor_filter": actor or "",
            "next_before": rows[-1].seq if len(rows) == PAGE_SIZE else None,
        },
    )
