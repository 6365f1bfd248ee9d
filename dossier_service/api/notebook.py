"""The liaison notebook and the thematic forms of a file."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.context import (
    context,
    open_file,
    parse_model,
    query_datetime,
    query_int,
    read_raw,
)
from dossier_service.api.errors import ApiError
from dossier_service.api.runner import idempotency_key, run
from dossier_service.api.serialize import dump, dump_all
from dossier_service.policy import Action
from dossier_service.schemas import FormAnswersIn, NotebookIn
from dossier_service.services import forms, notebook

routes = web.RouteTableDef()
SOURCE_HEADER = "X-Cercle-Source"  # "matrix" when the bot relays a conversation event


@routes.get("/api/v1/patients/{patient_id}/notebook")
async def list_entries(request: web.Request) -> web.Response:
    ctx = context(request)
    limit = query_int(request, "limit", 50, low=1, high=200)
    before = query_datetime(request, "before")
    kind = request.query.get("kind") or None

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.READ, "notebook"
        )
        await ctx.audit(session, action="read", resource="notebook", patient_id=access.patient.id)
        rows = await notebook.list_entries(
            session, patient_id=access.patient.id, limit=limit, before=before, kind=kind
        )
        nxt = rows[-1].created_at.isoformat() if len(rows) == limit else None
        return 200, {"items": dump_all(rows), "next_before": nxt}

    return await run(ctx, work)


@routes.post("/api/v1/patients/{patient_id}/notebook")
async def add_entry(request: web.Request) -> web.Response:
    ctx = context(request)
    raw = await read_raw(request)
    data = parse_model(NotebookIn, raw)
    source = (
        "matrix"
        if (ctx.principal.kind == "service" and request.headers.get(SOURCE_HEADER) == "matrix")
        else ("api" if ctx.principal.kind == "service" else "web")
    )

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.WRITE, "notebook"
        )
        await ctx.audit(session, action="create", resource="notebook", patient_id=access.patient.id)
        entry = await notebook.add_entry(
            session,
            principal=ctx.principal,
            patient=access.patient,
            kind=data.kind,
            text=data.text,
            source=source,
        )
        return 201, dump(entry)

    return await run(ctx, work, key=idempotency_key(request, data.idempotency_key), raw=raw)


@routes.get("/api/v1/patients/{patient_id}/forms")
async def list_forms(request: web.Request) -> web.Response:
    ctx = context(request)
    catalogue = request.app[appkeys.FORMS]

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.READ, "forms"
        )
        await ctx.audit(session, action="read", resource="forms", patient_id=access.patient.id)
        latest = await forms.latest_by_form(session, patient_id=access.patient.id)
        items = [
            {
                "form_id": f.key,
                "title": f.title,
                "version": latest[f.key].version if f.key in latest else 0,
                "updated_at": latest[f.key].created_at.isoformat() if f.key in latest else None,
            }
            for f in catalogue
        ]
        return 200, {"items": items}

    return await run(ctx, work)


@routes.get("/api/v1/patients/{patient_id}/forms/{form_id}")
async def get_form(request: web.Request) -> web.Response:
    ctx = context(request)
    form = request.app[appkeys.FORMS].get(request.match_info["form_id"])

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.READ, "forms"
        )
        if form is None:
            raise ApiError("M_NOT_FOUND", "Formulaire inconnu.")
        await ctx.audit(
            session, action="read", resource=f"forms/{form.key}", patient_id=access.patient.id
        )
        history = await forms.versions(session, patient_id=access.patient.id, form_id=form.key)
        return 200, {
            "form_id": form.key,
            "title": form.title,
            "current": dump(history[0]) if history else None,
            "versions": [
                {
                    "version": h.version,
                    "created_by": h.created_by,
                    "created_at": h.created_at.isoformat(),
                    "changed_fields": h.changed_fields,
                }
                for h in history
            ],
        }

    return await run(ctx, work)


@routes.put("/api/v1/patients/{patient_id}/forms/{form_id}")
async def save_form(request: web.Request) -> web.Response:
    ctx = context(request)
    form = request.app[appkeys.FORMS].get(request.match_info["form_id"])
    data = parse_model(FormAnswersIn, await read_raw(request))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        access = await open_file(
            session, ctx, request.match_info["patient_id"], Action.WRITE, "forms"
        )
        if form is None:
            raise ApiError("M_NOT_FOUND", "Formulaire inconnu.")
        await ctx.audit(
            session, action="update", resource=f"forms/{form.key}", patient_id=access.patient.id
        )
        row = await forms.save_answers(
            session,
            principal=ctx.principal,
            patient=access.patient,
            form=form,
            answers=data.answers,
            base_version=data.base_version,
            today=ctx.today(),
        )
        return 200, dump(row)

    return await run(ctx, work)
