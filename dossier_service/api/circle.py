"""/api/v1/patients/{id}/circle: the care circle (coordinators manage it)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.api.context import context, open_file, parse_model, read_raw
from dossier_service.api.runner import idempotency_key, run
from dossier_service.api.serialize import dump, dump_all
from dossier_service.policy import Action
from dossier_service.schemas import CircleMemberIn, CircleMemberUpdate, LeftRoomIn
from dossier_service.services import circle

routes = web.RouteTableDef()


@routes.get("/api/v1/patients/{patient_id}/circle")
async def list_circle(request: web.Request) -> web.Response:
    ctx = context(request)
    include_ended = request.query.get("include_ended") in ("1", "true")

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.READ, "circle"
        )
        await ctx.audit(session, action="read", resource="circle", patient_id=access.patient.id)
        members = await circle.list_members(
            session, patient_id=access.patient.id, include_ended=include_ended
        )
        return 200, {"items": dump_all(members)}

    return await run(ctx, work)


@routes.post("/api/v1/patients/{patient_id}/circle")
async def add_member(request: web.Request) -> web.Response:
    ctx = context(request)
    raw = await read_raw(request)
    data = parse_model(CircleMemberIn, raw)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.MANAGE_CIRCLE, "circle"
        )
        await ctx.audit(session, action="create", resource="circle", patient_id=access.patient.id)
        member = await circle.add_member(
            session, principal=ctx.principal, patient=access.patient, data=data
        )
        return 201, dump(member)

    return await run(ctx, work, key=idempotency_key(request), raw=raw)


@routes.patch("/api/v1/patients/{patient_id}/circle/{member_id}")
async def update_member(request: web.Request) -> web.Response:
    ctx = context(request)
    data = parse_model(CircleMemberUpdate, await read_raw(request))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.MANAGE_CIRCLE, "circle"
        )
        member = await circle.get_member(
            session, patient_id=access.patient.id, member_id=request.match_info["member_id"]
        )
        await ctx.audit(
            session, action="update", resource=f"circle/{member.id}", patient_id=access.patient.id
        )
        member = await circle.update_member(
            session, principal=ctx.principal, patient=access.patient, member=member, data=data
        )
        return 200, dump(member)

    return await run(ctx, work)


@routes.post("/api/v1/patients/{patient_id}/circle/{member_id}/end")
async def end_member(request: web.Request) -> web.Response:
    ctx = context(request)
    raw = await read_raw(request)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.MANAGE_CIRCLE, "circle"
        )
        member = await circle.get_member(
            session, patient_id=access.patient.id, member_id=request.match_info["member_id"]
        )
        await ctx.audit(
            session,
            action="update",
            resource=f"circle/{member.id}/end",
            patient_id=access.patient.id,
        )
        member = await circle.end_member(
            session, principal=ctx.principal, patient=access.patient, member=member
        )
        return 200, dump(member)

    return await run(ctx, work, key=idempotency_key(request), raw=raw)


@routes.post("/api/v1/patients/{patient_id}/circle/left-room")
async def left_room(request: web.Request) -> web.Response:
    """Issue 6: the bot saw a member leave the patient's conversation."""
    ctx = context(request)
    data = parse_model(LeftRoomIn, await read_raw(request))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.MANAGE_CIRCLE, "circle"
        )
        await ctx.audit(
            session, action="update", resource="circle.left_room", patient_id=access.patient.id
        )
        member = await circle.mark_left_room(
            session,
            principal=ctx.principal,
            patient=access.patient,
            matrix_user_id=data.matrix_user_id,
        )
        return 200, {"member": dump(member) if member else None}

    return await run(ctx, work)
