"""Writes of the file's follow-up: memos, hospitalisations, tasks, life-line episodes and
the liaison notebook. Each is one audited transaction (``write_section``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.context import Ctx, FileAccess
from dossier_service.policy import Action
from dossier_service.schemas import (
    AssigneeIn,
    EpisodeIn,
    EpisodeUpdate,
    HospitalisationIn,
    HospitalisationUpdate,
    MemoIn,
    MemoUpdate,
    NotebookIn,
    TaskIn,
)
from dossier_service.services import followup, lifeline, notebook, tasks
from dossier_service.web.pagectx import (
    PageInputError,
    optional,
    parse_day,
    parse_local_datetime,
    text,
)
from dossier_service.web.pages_patients import write_section

routes = web.RouteTableDef()


@routes.post("/patients/{pid}/memos")
async def add_memo(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        data = MemoIn.model_validate({"text": text(form, "text")}, strict=False)
        await followup.add_memo(session, principal=ctx.principal, patient=access.patient, data=data)

    return await write_section(request, "memo", Action.WRITE, work, anchor="memos")


@routes.post("/patients/{pid}/memos/{mid}")
async def edit_memo(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        data = MemoUpdate.model_validate({"text": text(form, "text")}, strict=False)
        await followup.update_memo(
            session,
            principal=ctx.principal,
            patient=access.patient,
            memo_id=request.match_info["mid"][:36],
            data=data,
        )

    return await write_section(request, "memo", Action.WRITE, work, anchor="memos", verb="update")


@routes.post("/patients/{pid}/memos/{mid}/archiver")
async def archive_memo(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        await followup.update_memo(
            session,
            principal=ctx.principal,
            patient=access.patient,
            memo_id=request.match_info["mid"][:36],
            data=MemoUpdate(archived=True),
        )

    return await write_section(request, "memo", Action.WRITE, work, anchor="memos", verb="update")


@routes.post("/patients/{pid}/hospitalisations")
async def add_hospitalisation(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        data = HospitalisationIn.model_validate(
            {
                "structure": text(form, "structure"),
                "service": text(form, "service"),
                "admission_at": parse_local_datetime(text(form, "admission_at"), "admission"),
                "discharge_at": parse_local_datetime(text(form, "discharge_at"), "sortie"),
                "comment": text(form, "comment"),
            },
            strict=False,
        )
        await followup.add_hospitalisation(
            session, principal=ctx.principal, patient=access.patient, data=data
        )

    return await write_section(
        request, "hospitalisation", Action.WRITE, work, anchor="hospitalisations"
    )


@routes.post("/patients/{pid}/hospitalisations/{hid}/sortie")
async def discharge(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        moment = parse_local_datetime(text(form, "discharge_at"), "sortie")
        if moment is None:
            raise PageInputError("Indiquez la date et l'heure de sortie.")
        await followup.update_hospitalisation(
            session,
            principal=ctx.principal,
            patient=access.patient,
            stay_id=request.match_info["hid"][:36],
            data=HospitalisationUpdate.model_validate({"discharge_at": moment}, strict=False),
        )

    return await write_section(
        request, "hospitalisation", Action.WRITE, work, anchor="hospitalisations", verb="update"
    )


@routes.post("/patients/{pid}/parcours/{eid}/fin")
async def end_episode(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        day = parse_day(text(form, "ends_on"))
        if day is None:
            raise PageInputError("Indiquez la date de fin du parcours.")
        await lifeline.update_episode(
            session,
            principal=ctx.principal,
            patient=access.patient,
            episode_id=request.match_info["eid"][:36],
            data=EpisodeUpdate.model_validate({"ends_on": day}, strict=False),
        )

    return await write_section(
        request, "parcours", Action.WRITE, work, anchor="ligne-de-vie", verb="update"
    )


def assignees_from(form: Any) -> list[AssigneeIn]:
    out = []
    for raw in form.getall("assignees", []):
        kind, _, ref = str(raw).partition(":")
        out.append(AssigneeIn.model_validate({"kind": kind, "ref": ref}, strict=False))
    return out


@routes.post("/patients/{pid}/taches")
async def add_task(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        data = TaskIn.model_validate(
            {
                "type": text(form, "type"),
                "subtypes": [str(s) for s in form.getall("subtypes", [])],
                "level": text(form, "level") or "normale",
                "label": text(form, "label"),
                "due_date": parse_day(text(form, "due_date")),
                "comment": text(form, "comment"),
                "assignees": assignees_from(form),
                "form_id": optional(form, "form_id"),
                "document_ids": [str(d)[:36] for d in form.getall("document_ids", [])],
            },
            strict=False,
        )
        await tasks.create_task(
            session,
            principal=ctx.principal,
            patient=access.patient,
            data=data,
            task_types=ctx.config.task_types,
        )

    return await write_section(request, "tache", Action.WRITE, work, anchor="taches")


@routes.post("/patients/{pid}/parcours")
async def add_episode(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        data = EpisodeIn.model_validate(
            {
                "theme": text(form, "theme"),
                "title": text(form, "title"),
                "starts_on": parse_day(text(form, "starts_on")),
                "ends_on": parse_day(text(form, "ends_on")),
                "form_id": optional(form, "form_id"),
            },
            strict=False,
        )
        await lifeline.add_episode(
            session,
            principal=ctx.principal,
            patient=access.patient,
            data=data,
            themes=ctx.config.lifeline_themes,
            form_ids=[f.key for f in request.app[appkeys.FORMS]],
        )

    return await write_section(request, "parcours", Action.WRITE, work, anchor="ligne-de-vie")


@routes.post("/patients/{pid}/liaison")
async def add_entry(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        data = NotebookIn.model_validate(
            {"kind": text(form, "kind") or "note", "text": text(form, "text")}, strict=False
        )
        await notebook.add_entry(
            session,
            principal=ctx.principal,
            patient=access.patient,
            kind=data.kind,
            text=data.text,
            source="web",
        )

    return await write_section(request, "liaison", Action.WRITE, work)
