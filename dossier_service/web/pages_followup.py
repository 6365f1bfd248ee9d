"""Writes of the file's follow-up: memos, hospitalisations, tasks, life-line episodes and
the liaison notebook. Each is one audited transaction (``section_write``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dossier_service import appkeys
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
from dossier_service.web.pagectx import PageInputError, parse_day, parse_local_datetime
from dossier_service.web.pages_patients import FileWrite, section_write

routes = web.RouteTableDef()


@section_write(routes, "/patients/{pid}/memos", "memo", anchor="memos")
async def add_memo(w: FileWrite) -> None:
    data = MemoIn.model_validate({"text": w.text("text")}, strict=False)
    await followup.add_memo(w.session, principal=w.principal, patient=w.patient, data=data)


@section_write(routes, "/patients/{pid}/memos/{mid}", "memo", anchor="memos", verb="update")
async def edit_memo(w: FileWrite) -> None:
    data = MemoUpdate.model_validate({"text": w.text("text")}, strict=False)
    await followup.update_memo(
        w.session, principal=w.principal, patient=w.patient, memo_id=w.row_id("mid"), data=data
    )


@section_write(
    routes, "/patients/{pid}/memos/{mid}/archiver", "memo", anchor="memos", verb="update"
)
async def archive_memo(w: FileWrite) -> None:
    await followup.update_memo(
        w.session,
        principal=w.principal,
        patient=w.patient,
        memo_id=w.row_id("mid"),
        data=MemoUpdate(archived=True),
    )


@section_write(
    routes, "/patients/{pid}/hospitalisations", "hospitalisation", anchor="hospitalisations"
)
async def add_hospitalisation(w: FileWrite) -> None:
    data = HospitalisationIn.model_validate(
        {
            "structure": w.text("structure"),
            "service": w.text("service"),
            "admission_at": parse_local_datetime(w.text("admission_at"), "admission"),
            "discharge_at": parse_local_datetime(w.text("discharge_at"), "sortie"),
            "comment": w.text("comment"),
        },
        strict=False,
    )
    await followup.add_hospitalisation(
        w.session, principal=w.principal, patient=w.patient, data=data
    )


@section_write(
    routes,
    "/patients/{pid}/hospitalisations/{hid}/sortie",
    "hospitalisation",
    anchor="hospitalisations",
    verb="update",
)
async def discharge(w: FileWrite) -> None:
    moment = parse_local_datetime(w.text("discharge_at"), "sortie")
    if moment is None:
        raise PageInputError("Indiquez la date et l'heure de sortie.")
    await followup.update_hospitalisation(
        w.session,
        principal=w.principal,
        patient=w.patient,
        stay_id=w.row_id("hid"),
        data=HospitalisationUpdate.model_validate({"discharge_at": moment}, strict=False),
    )


@section_write(
    routes, "/patients/{pid}/parcours/{eid}/fin", "parcours", anchor="ligne-de-vie", verb="update"
)
async def end_episode(w: FileWrite) -> None:
    day = parse_day(w.text("ends_on"))
    if day is None:
        raise PageInputError("Indiquez la date de fin du parcours.")
    await lifeline.update_episode(
        w.session,
        principal=w.principal,
        patient=w.patient,
        episode_id=w.row_id("eid"),
        data=EpisodeUpdate.model_validate({"ends_on": day}, strict=False),
    )


def assignees_from(form: Any) -> list[AssigneeIn]:
    out = []
    for raw in form.getall("assignees", []):
        kind, _, ref = str(raw).partition(":")
        out.append(AssigneeIn.model_validate({"kind": kind, "ref": ref}, strict=False))
    return out


@section_write(routes, "/patients/{pid}/taches", "tache", anchor="taches")
async def add_task(w: FileWrite) -> None:
    data = TaskIn.model_validate(
        {
            "type": w.text("type"),
            "subtypes": [str(s) for s in w.form.getall("subtypes", [])],
            "level": w.text("level") or "normale",
            "label": w.text("label"),
            "due_date": parse_day(w.text("due_date")),
            "comment": w.text("comment"),
            "assignees": assignees_from(w.form),
            "form_id": w.optional("form_id"),
            "document_ids": [str(d)[:36] for d in w.form.getall("document_ids", [])],
        },
        strict=False,
    )
    await tasks.create_task(
        w.session,
        principal=w.principal,
        patient=w.patient,
        data=data,
        task_types=w.ctx.config.task_types,
    )


@section_write(routes, "/patients/{pid}/parcours", "parcours", anchor="ligne-de-vie")
async def add_episode(w: FileWrite) -> None:
    data = EpisodeIn.model_validate(
        {
            "theme": w.text("theme"),
            "title": w.text("title"),
            "starts_on": parse_day(w.text("starts_on")),
            "ends_on": parse_day(w.text("ends_on")),
            "form_id": w.optional("form_id"),
        },
        strict=False,
    )
    await lifeline.add_episode(
        w.session,
        principal=w.principal,
        patient=w.patient,
        data=data,
        themes=w.ctx.config.lifeline_themes,
        form_ids=[f.key for f in w.request.app[appkeys.FORMS]],
    )


@section_write(routes, "/patients/{pid}/liaison", "liaison")
async def add_entry(w: FileWrite) -> None:
    data = NotebookIn.model_validate(
        {"kind": w.text("kind") or "note", "text": w.text("text")}, strict=False
    )
    await notebook.add_entry(
        w.session,
        principal=w.principal,
        patient=w.patient,
        kind=data.kind,
        text=data.text,
        source="web",
    )
