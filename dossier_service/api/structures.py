"""/api/v1/structures/{finess}/members: a structure's members and referents (issue 18)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.api.context import acting_person
from dossier_service.api.errors import Denied
from dossier_service.api.operation import SIGNED_IN, Audit, Call, Operations
from dossier_service.api.serialize import dump, dump_all
from dossier_service.schemas import StructureMemberIn
from dossier_service.services import structures
from dossier_service.services.errors import Forbidden

operations = Operations()
T = TypeVar("T")


async def _on_structure(
    call: Call,
    session: AsyncSession,
    work: Callable[..., Awaitable[T]],
    audit_suffix: str = "",
    **arguments: Any,
) -> T:
    """``work(session, principal=…, finess=…, **arguments)``: the acting person, on the
    path's structure, which the audit row names (``structures/<finess><audit_suffix>``). A
    refusal leaves its "refusé" audit row (as one on a patient's file does)."""
    finess = call.path("finess")
    call.audit_as(f"structures/{finess[:9]}{audit_suffix}")
    try:
        return await work(session, principal=acting_person(call.ctx), finess=finess, **arguments)
    except Forbidden as exc:
        assert call.op.audit is not None
        raise Denied(
            status=403,
            patient_id=None,
            resource=call.audit_resource or call.op.audit.resource,
            action=call.op.audit.action,
            error=exc.message,
        ) from None


@operations.get(
    "/api/v1/structures/{finess}/members",
    access=SIGNED_IN,
    audit=Audit("read", "structures"),
)
async def list_structure_members(call: Call, session: AsyncSession) -> tuple[int, Any]:
    """The structure's current members (its members and admins only)."""
    members = await _on_structure(call, session, structures.list_members)
    return 200, {"items": dump_all(members)}


@operations.post(
    "/api/v1/structures/{finess}/members",
    access=SIGNED_IN,
    audit=Audit("create", "structures"),
    body=StructureMemberIn,
    idempotent=True,
)
async def add_structure_member(call: Call, session: AsyncSession) -> tuple[int, Any]:
    """An admin or a referent adds a member; the circles holding the structure "avec accès"
    take her in."""
    member = await _on_structure(
        call, session, structures.add_member, data=call.data(StructureMemberIn)
    )
    return 201, dump(member)


@operations.post(
    "/api/v1/structures/{finess}/members/{member_id}/end",
    access=SIGNED_IN,
    audit=Audit("update", "structures"),
    idempotent=True,
)
async def end_structure_member(call: Call, session: AsyncSession) -> tuple[int, Any]:
    """An admin, a referent or the member herself ends a membership; the places in care
    circles it gave end with it."""
    member = await _on_structure(
        call, session, structures.end_member, "/members", member_id=call.path("member_id")
    )
    return 200, dump(member)


@operations.post(
    "/api/v1/structures/{finess}/members/rpps",
    access=SIGNED_IN,
    audit=Audit("update", "structures"),
)
async def sync_structure_members_from_rpps(call: Call, session: AsyncSession) -> tuple[int, Any]:
    """Members from the RPPS: linked professionals whose activity names the structure's
    FINESS (or SIRET) join it; those whose activity no longer does leave it."""
    added, ended = await _on_structure(call, session, structures.sync_rpps_members, "/members")
    return 200, {"added": dump_all(added), "ended": dump_all(ended)}
