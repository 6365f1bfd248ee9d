"""Memos, hospitalisations and life line episodes of a file."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.context import context, open_file, parse_model, read_raw
from dossier_service.api.runner import run
from dossier_service.api.serialize import dump, dump_all, dump_stay
from dossier_service.policy import Action
from dossier_service.schemas import (
    EpisodeIn,
    EpisodeUpdate,
    HospitalisationIn,
    HospitalisationUpdate,
    MemoIn,
    MemoUpdate,
)
from dossier_service.services import followup, lifeline

routes = web.RouteTableDef()


@routes.get("/api/v1/patients/{patient_id}/memos")
async def list_memos(request: web.Request) -> web.Response:
    ctx = context(request)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.READ, "memos"
        )
        await ctx.audit(session, action="read", resource="memos", patient_id=access.patient.id)
        return 200, {
            "items": dump_all(await followup.list_memos(session, patient_id=access.patient.id))
        }

    return await run(ctx, work)


@routes.post("/api/v1/patients/{patient_id}/memos")
async def add_memo(request: web.Request) -> web.Response:
    ctx = context(request)
    data = parse_model(MemoIn, await read_raw(request))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.WRITE, "memos"
        )
        await ctx.audit(session, action="create", resource="memos", patient_id=access.patient.id)
        return 201, dump(
            await followup.add_memo(
                session, principal=ctx.principal, patient=access.patient, data=data
            )
        )

    return await run(ctx, work)


@routes.patch("/api/v1/patients/{patient_id}/memos/{memo_id}")
async def update_memo(request: web.Request) -> web.Response:
    ctx = context(request)
    data = parse_model(MemoUpdate, await read_raw(request))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.WRITE, "memos"
        )
        await ctx.audit(session, action="update", resource="memos", patient_id=access.patient.id)
        memo = await followup.update_memo(
            session,
            principal=ctx.principal,
            patient=access.patient,
            memo_id=request.match_info["memo_id"],
            data=data,
        )
        return 200, dump(memo)

    return await run(ctx, work)


@routes.get("/api/v1/patients/{patient_id}/hospitalisations")
async def list_stays(request: web.Request) -> web.Response:
    ctx = context(request)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.READ, "hospitalisations"
        )
        await ctx.audit(
            session, action="read", resource="hospitalisations", patient_id=access.patient.id
        )
        stays = await followup.list_hospitalisations(session, patient_id=access.patient.id)
        return 200, {"items": [dump_stay(s, ctx.now()) for s in stays]}

    return await run(ctx, work)


@routes.post("/api/v1/patients/{patient_id}/hospitalisations")
async def add_stay(request: web.Request) -> web.Response:
    ctx = context(request)
    data = parse_model(HospitalisationIn, await read_raw(request))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.WRITE, "hospitalisations"
        )
        await ctx.audit(
            session, action="create", resource="hospitalisations", patient_id=access.patient.id
        )
        stay = await followup.add_hospitalisation(
            session, principal=ctx.principal, patient=access.patient, data=data
        )
        return 201, dump_stay(stay, ctx.now())

    return await run(ctx, work)


@routes.patch("/api/v1/patients/{patient_id}/hospitalisations/{stay_id}")
async def update_stay(request: web.Request) -> web.Response:
    ctx = context(request)
    data = parse_model(HospitalisationUpdate, await read_raw(request))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.WRITE, "hospitalisations"
        )
        await ctx.audit(
            session, action="update", resource="hospitalisations", patient_id=access.patient.id
        )
        stay = await followup.update_hospitalisation(
            session,
            principal=ctx.principal,
            patient=access.patient,
            stay_id=request.match_info["stay_id"],
            data=data,
        )
        return 200, dump_stay(stay, ctx.now())

    return await run(ctx, work)


@routes.get("/api/v1/patients/{patient_id}/lifeline")
async def list_episodes(request: web.Request) -> web.Response:
    ctx = context(request)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.READ, "lifeline"
        )
        await ctx.audit(session, action="read", resource="lifeline", patient_id=access.patient.id)
        return 200, {
            "items": dump_all(await lifeline.list_episodes(session, patient_id=access.patient.id))
        }

    return await run(ctx, work)


@routes.post("/api/v1/patients/{patient_id}/lifeline")
async def add_episode(request: web.Request) -> web.Response:
    ctx = context(request)
    data = parse_model(EpisodeIn, await read_raw(request))
    form_ids = [f.key for f in request.app[appkeys.FORMS]]

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.WRITE, "lifeline"
        )
        await ctx.audit(session, action="create", resource="lifeline", patient_id=access.patient.id)
        episode = await lifeline.add_episode(
            session,
            principal=ctx.principal,
            patient=access.patient,
            data=data,
            themes=ctx.config.lifeline_themes,
            form_ids=form_ids,
        )
        return 201, dump(episode)

    return await run(ctx, work)


@routes.patch("/api/v1/patients/{patient_id}/lifeline/{episode_id}")
async def update_episode(request: web.Request) -> web.Response:
    ctx = context(request)
    data = parse_model(EpisodeUpdate, await read_raw(request))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.WRITE, "lifeline"
        )
        await ctx.audit(session, action="update", resource="lifeline", patient_id=access.patient.id)
        episode = await lifeline.update_episode(
            session,
            principal=ctx.principal,
            patient=access.patient,
            episode_id=request.match_info["episode_id"],
            data=data,
        )
        return 200, dump(episode)

    return await run(ctx, work)
