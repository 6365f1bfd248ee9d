"""The access log (journal d'accès) for admins: who read or changed which file, when, from
where, with what outcome. Read-only, like the API's; reading it is itself audited."""

from __future__ import annotations

from aiohttp import web

from dossier_service.bounded import bounded_int
from dossier_service.policy import may_read_audit
from dossier_service.services.audit_log import audit_entries
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
    before = bounded_int(request.query.get("avant"), 0, 0, 2**62)
    async with ctx.db.transaction() as session:
        rows = await audit_entries(
            session, patient_id=patient_id, actor=actor, before=before, limit=PAGE_SIZE
        )
        await ctx.audit(session, action="read", resource="page:audit", patient_id=patient_id)
    return await request.app[PAGES].render(
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
