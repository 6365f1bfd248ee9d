"""POST /api/v1/patients/{id}/retention/purge — for `cercle retention`, once the closed
file's archive is written: its documents leave the live system (rows in the request's
transaction with its audit row; contents no other document names, after the commit).
Refusals are audited like every other: a caller without the right (403), a file that is not
closed (409)."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.errors import Denied
from dossier_service.api.operation import Audit, Call, Operations, member_of_file
from dossier_service.policy import Action
from dossier_service.services import retention

operations = Operations()
RESOURCE = "retention"
NOT_CLOSED = "Le dossier n'est pas clos : rien n'est purgé."


@operations.post(
    "/api/v1/patients/{patient_id}/retention/purge",
    access=member_of_file(Action.WRITE),
    resource=RESOURCE,
    audit=Audit("purge", "documents"),
)
async def purge(call: Call, session: AsyncSession) -> tuple[int, Any]:
    patient = call.patient
    if not call.me.privileged:  # the circle may write, only Cercle itself purges
        raise Denied(status=403, patient_id=patient.id, resource=RESOURCE, action="purge")
    if patient.file_status != retention.CLOSED:
        raise Denied(
            status=409, patient_id=patient.id, resource=RESOURCE, action="purge", error=NOT_CLOSED
        )
    freed = await call.on_file(retention.purge_documents, session)

    async def remove_unused_contents() -> None:
        async with call.ctx.db.transaction() as later:
            kept = await retention.still_used(later, freed)
        store = call.request.app[appkeys.STORE]
        for sha256 in set(freed) - kept:
            await store.remove(sha256)

    if freed:
        call.after_commit.append(remove_unused_contents)
    return 200, {"documents_purged": len(freed)}
