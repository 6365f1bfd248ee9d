"""POST /api/v1/patients/{id}/retention/purge — for `cercle retention`, once the closed
file's archive is written: its documents leave the live system (rows in the request's
transaction with its audit row; contents no other document names, after the commit).
Refusals are audited like every other: a caller without the right (403), a file that is not
closed (409)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.context import audit_refusal, context, open_file
from dossier_service.api.errors import ApiError, Denied
from dossier_service.api.runner import run
from dossier_service.policy import Action
from dossier_service.services import retention

routes = web.RouteTableDef()
RESOURCE = "retention"


class _NotClosed(Exception):
    pass


@routes.post("/api/v1/patients/{patient_id}/retention/purge")
async def purge(request: web.Request) -> web.Response:
    ctx = context(request)
    patient_id = request.match_info["patient_id"]
    freed: list[str] = []

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(session, ctx, patient_id, Action.WRITE, RESOURCE)
        if not ctx.principal.privileged:  # the circle may write, only Cercle itself purges
            raise Denied(
                status=403, patient_id=access.patient.id, resource=RESOURCE, action="purge"
            )
        if access.patient.file_status != retention.CLOSED:
            raise _NotClosed
        await ctx.audit(session, action="purge", resource="documents", patient_id=access.patient.id)
        freed.extend(
            await retention.purge_documents(
                session, principal=ctx.principal, patient=access.patient
            )
        )
        return 200, {"documents_purged": len(freed)}

    try:
        response = await run(ctx, work)
    except _NotClosed:
        refusal = Denied(status=409, patient_id=patient_id, resource=RESOURCE, action="purge")
        await audit_refusal(request, refusal)
        raise ApiError("CERCLE_CONFLICT", "Le dossier n'est pas clos : rien n'est purgé.") from None
    if freed:
        async with ctx.db.transaction() as session:
            kept = await retention.still_used(session, freed)
        store = request.app[appkeys.STORE]
        for sha256 in set(freed) - kept:
            await store.remove(sha256)
    return response
