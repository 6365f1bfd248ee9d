"""/api/v1/patients: the list, opening a file, the whole file as JSON, identity, status,
death declaration and its cancellation, the link to the patient's Matrix room."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.context import (
    Ctx,
    FileAccess,
    context,
    open_file,
    page,
    parse_model,
    query_int,
    read_raw,
)
from dossier_service.api.errors import ApiError, Denied
from dossier_service.api.runner import idempotency_key, run
from dossier_service.api.serialize import dump
from dossier_service.models.patient import (
    Patient,
    patient_public,
)
from dossier_service.policy import Action, may_create_patient
from dossier_service.schemas import (
    DeathCancelIn,
    DeathIn,
    FileStatusIn,
    IdentityUpdate,
    PatientCreate,
    RoomLinkIn,
)
from dossier_service.services import patients, read_models

routes = web.RouteTableDef()
NOTEBOOK_IN_FILE = 50


def summary(patient: Patient) -> dict[str, Any]:
    """What a list shows: no INS number, no address."""
    return {
        "id": patient.id,
        "label": patient.label,
        "birth_name": patient.birth_name,
        "used_name": patient.used_name,
        "first_birth_first_name": patient.first_birth_first_name,
        "used_first_name": patient.used_first_name,
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
        "sex": patient.sex,
        "identity_status": patient.identity_status,
        "file_status": patient.file_status,
        "room_id": patient.room_id,
        "deceased": patient.death_date is not None,
    }


async def full_file(session: AsyncSession, ctx: Ctx, access: FileAccess) -> dict[str, Any]:
    """Everything the caller may see of one file (the JSON behind the file's page)."""
    sections = await read_models.file_sections(
        session,
        patient_id=access.patient.id,
        principal=ctx.principal,
        membership=access.membership,
        now=ctx.now(),
        today=ctx.today(),
        notebook_limit=NOTEBOOK_IN_FILE,
        cache=ctx.request.app.get(appkeys.FILE_CACHE),
        revisions=ctx.db.revisions,
    )
    return {
        "patient": patient_public(access.patient),
        "my_role": access.membership.role if access.membership else None,
        **sections,
    }


@routes.get("/api/v1/patients")
async def list_patients(request: web.Request) -> web.Response:
    ctx = context(request)
    search = request.query.get("q", "").strip()[:100]
    room_id = request.query.get("room_id") or None
    limit = query_int(request, "limit", 50, low=1, high=200)
    offset = query_int(request, "offset", 0)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        rows, total = await patients.list_patients(
            session,
            principal=ctx.principal,
            search=search,
            room_id=room_id,
            limit=limit,
            offset=offset,
        )
        await ctx.audit(session, action="read", resource="patients.list", patient_id=None)
        return 200, {
            "items": [summary(p) for p in rows],
            "total": total,
            "next": page(limit, offset, len(rows)),
        }

    return await run(ctx, work)


@routes.post("/api/v1/patients")
async def create_patient(request: web.Request) -> web.Response:
    ctx = context(request)
    raw = await read_raw(request)
    data = parse_model(PatientCreate, raw)
    if not may_create_patient(ctx.principal):
        raise ApiError("M_FORBIDDEN")
    if (
        data.coordinator
        and ctx.principal.kind != "service"
        and data.coordinator != ctx.principal.user_id
    ):
        raise ApiError("M_FORBIDDEN", "Seul le service peut désigner un autre coordinateur.")
    if data.id and ctx.principal.kind != "service":
        raise ApiError("M_FORBIDDEN", "Seul le service peut choisir l'identifiant du dossier.")
    if data.room_id and ctx.principal.kind != "service":
        raise ApiError("M_FORBIDDEN", ROOM_LINK_BY_BOT)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        patient = await patients.create_patient(
            session, principal=ctx.principal, data=data, today=ctx.today()
        )
        await ctx.audit(session, action="create", resource="patient", patient_id=patient.id)
        return 201, {"id": patient.id, "patient": patient_public(patient)}

    return await run(ctx, work, key=idempotency_key(request), raw=raw)


@routes.get("/api/v1/patients/{patient_id}")
async def get_file(request: web.Request) -> web.Response:
    ctx = context(request)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.READ, "patient"
        )
        await ctx.audit(session, action="read", resource="patient", patient_id=access.patient.id)
        return 200, await full_file(session, ctx, access)

    return await run(ctx, work)


@routes.patch("/api/v1/patients/{patient_id}/identity")
async def update_identity(request: web.Request) -> web.Response:
    ctx = context(request)
    data = parse_model(IdentityUpdate, await read_raw(request))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.WRITE, "patient.identity"
        )
        await ctx.audit(
            session, action="update", resource="patient.identity", patient_id=access.patient.id
        )
        changed = await patients.update_identity(
            session, principal=ctx.principal, patient=access.patient, data=data, today=ctx.today()
        )
        return 200, {"changed": changed, "patient": patient_public(access.patient)}

    return await run(ctx, work)


@routes.post("/api/v1/patients/{patient_id}/status")
async def set_status(request: web.Request) -> web.Response:
    ctx = context(request)
    data = parse_model(FileStatusIn, await read_raw(request))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.WRITE, "patient.status"
        )
        await ctx.audit(
            session, action="update", resource="patient.status", patient_id=access.patient.id
        )
        change = await patients.set_file_status(
            session,
            principal=ctx.principal,
            patient=access.patient,
            status=data.status,
            comment=data.comment,
            allowed=ctx.config.file_statuses,
        )
        return 201, dump(change)

    return await run(ctx, work)


@routes.post("/api/v1/patients/{patient_id}/death")
async def declare_death(request: web.Request) -> web.Response:
    ctx = context(request)
    raw = await read_raw(request)
    data = parse_model(DeathIn, raw)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.WRITE, "patient.death"
        )
        await ctx.audit(
            session, action="create", resource="patient.death", patient_id=access.patient.id
        )
        declaration = await patients.declare_death(
            session,
            principal=ctx.principal,
            patient=access.patient,
            death_date=data.death_date,
            today=ctx.today(),
        )
        return 201, dump(declaration)

    return await run(ctx, work, key=idempotency_key(request), raw=raw)


@routes.post("/api/v1/patients/{patient_id}/death/cancel")
async def cancel_death(request: web.Request) -> web.Response:
    ctx = context(request)
    raw = await read_raw(request)
    data = parse_model(DeathCancelIn, raw)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.WRITE, "patient.death"
        )
        await ctx.audit(
            session, action="update", resource="patient.death.cancel", patient_id=access.patient.id
        )
        declaration = await patients.cancel_death(
            session, principal=ctx.principal, patient=access.patient, reason=data.reason
        )
        return 200, dump(declaration)

    return await run(ctx, work, key=idempotency_key(request), raw=raw)


ROOM_LINK_BY_BOT = (
    "Un dossier se lie à une conversation depuis la conversation elle-même, avec le bot : "
    "!patient lier <identifiant du dossier>."
)


@routes.put("/api/v1/patients/{patient_id}/room")
async def link_room(request: web.Request) -> web.Response:
    """Link the file to its patient room. Only the bot does it: it has seen, in Matrix,
    that the person asking is a joined member of the room, that the bot is in it with the
    power to furnish it (a patient room), and it acts on her behalf (her circle role is
    checked here); a room already linked to another file is a 409."""
    ctx = context(request)
    data = parse_model(RoomLinkIn, await read_raw(request))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.MANAGE_CIRCLE, "patient.room"
        )
        if ctx.principal.kind != "service":
            # nobody here can vouch for the person's membership of that room
            raise Denied(status=403, patient_id=access.patient.id, resource="patient.room",
                         action=Action.MANAGE_CIRCLE.value)  # fmt: skip
        await ctx.audit(
            session, action="update", resource="patient.room", patient_id=access.patient.id
        )
        patient = await patients.link_room(
            session, principal=ctx.principal, patient=access.patient, room_id=data.room_id
        )
        return 200, {"id": patient.id, "room_id": patient.room_id}

    return await run(ctx, work)
