"""POST /api/v1/patients/{id}/retention/purge — for `cercle retention`, once the closed
file's archive is written: its documents leave the live system (rows in the request's
transaction with its audit row; contents no other document names, after the commit)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.context import context, open_file
from dossier_service.api.errors import ApiError
from dossier_service.api.runner import run
from dossier_service.policy import Action
from dossier_service.services import retention

routes = web.RouteTableDef()


@routes.post("/api/v1/patients/{patient_id}/retention/purge")
async def purge(request: web.Request) -> web.Response:
    ctx = context(request)
    if not ctx.principal.privileged:
        raise ApiError("M_FORBIDDEN")
    freed: list[str] = []

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.WRITE, "retention"
        )
        if access.patient.file_status != retention.CLOSED:
            raise ApiError("CERCLE_CONFLICT", "Le dossier n'est pas clos : rien n'est purgé.")
        await ctx.audit(session, action="purge", resource="documents", patient_id=access.patient.id)
        freed.extend(
            await retention.purge_documents(
                session, principal=ctx.principal, patient=access.patient
            )
        )
        return 200, {"documents_purged": len(freed)}

    response = await run(ctx, work)
    if freed:
        async with ctx.db.transaction() as session:
            kept = await retention.still_used(session, freed)
        store = request.app[appkeys.STORE]
        for sha256 in set(freed) - kept:
            await store.remove(sha256)
    return response
