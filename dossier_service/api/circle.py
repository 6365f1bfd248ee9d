"""/api/v1/patients/{id}/circle: the care circle (coordinators manage it)."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.api.operation import Audit, Call, Operations, Param, member_of_file
from dossier_service.api.serialize import dump, dump_all
from dossier_service.models.circle import CircleMember
from dossier_service.policy import Action
from dossier_service.schemas import BackInRoomIn, CircleMemberIn, CircleMemberUpdate, LeftRoomIn
from dossier_service.services import circle

operations = Operations()
CIRCLE = "/api/v1/patients/{patient_id}/circle"
MANAGE = member_of_file(Action.MANAGE_CIRCLE)


@operations.get(
    CIRCLE,
    access=member_of_file(Action.READ),
    audit=Audit("read", "circle"),
    query=(Param("include_ended", "flag"),),
)
async def list_circle(call: Call, session: AsyncSession) -> tuple[int, Any]:
    members = await circle.list_members(
        session, patient_id=call.patient.id, include_ended=call.query["include_ended"]
    )
    return 200, {"items": dump_all(members)}


@operations.post(
    CIRCLE, access=MANAGE, audit=Audit("create", "circle"), body=CircleMemberIn, idempotent=True
)
async def add_member(call: Call, session: AsyncSession) -> tuple[int, Any]:
    return 201, dump(await call.on_file(circle.add_member, session, data=call.data(CircleMemberIn)))


async def _member(call: Call, session: AsyncSession, suffix: str = "") -> CircleMember:
    member = await circle.get_member(
        session, patient_id=call.patient.id, member_id=call.path("member_id")
    )
    call.audit_as(f"circle/{member.id}{suffix}")
    return member


@operations.patch(
    CIRCLE + "/{member_id}", access=MANAGE, audit=Audit("update", "circle"), body=CircleMemberUpdate
)
async def update_member(call: Call, session: AsyncSession) -> tuple[int, Any]:
    member = await call.on_file(
        circle.update_member,
        session,
        member=await _member(call, session),
        data=call.data(CircleMemberUpdate),
    )
    return 200, dump(member)


@operations.post(
    CIRCLE + "/{member_id}/end", access=MANAGE, audit=Audit("update", "circle"), idempotent=True
)
async def end_member(call: Call, session: AsyncSession) -> tuple[int, Any]:
    member = await call.on_file(
        circle.end_member, session, member=await _member(call, session, "/end")
    )
    return 200, dump(member)


@operations.post(
    CIRCLE + "/left-room",
    access=MANAGE,
    resource="circle",
    audit=Audit("update", "circle.left_room"),
    body=LeftRoomIn,
)
async def left_room(call: Call, session: AsyncSession) -> tuple[int, Any]:
    """Issue 6: the bot saw a member leave the patient's conversation (or removed from it)."""
    body = call.data(LeftRoomIn)
    member = await call.on_file(
        circle.mark_left_room,
        session,
        matrix_user_id=body.matrix_user_id,
        removed_by=body.removed_by,
        was_invited=body.was_invited,
    )
    return 200, {"member": dump(member) if member else None}


@operations.post(
    CIRCLE + "/back-in-room",
    access=MANAGE,
    resource="circle",
    audit=Audit("update", "circle.back_in_room"),
    body=BackInRoomIn,
)
async def back_in_room(call: Call, session: AsyncSession) -> tuple[int, Any]:
    """The bot saw a member who had left the patient's conversation join it again."""
    member = await call.on_file(
        circle.mark_back_in_room, session, matrix_user_id=call.data(BackInRoomIn).matrix_user_id
    )
    return 200, {"member": dump(member) if member else None}
