"""The patient list and the patient's file (its sections: ``templates/fiche/*.html``), and
``section_write``, the frame of every write of a section (``pages_identity_circle``,
``pages_followup``).

Every read and write runs in one transaction through the core's services, with
``open_file`` deciding access (404 for outsiders, 403 for members without access) and an
audit row written in the same transaction. Writes answer with a redirection to the section
(303); a refused input re-renders the file with the message (400/409).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from markupsafe import Markup
from pydantic import ValidationError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.context import Ctx, FileAccess, open_file
from dossier_service.bounded import bounded_int
from dossier_service.identity import ALLOWED_TRANSITIONS, IDENTITY_DOCUMENTS
from dossier_service.models.notebook import NotebookEntry
from dossier_service.models.patient import FileStatusChange, Patient, patient_public
from dossier_service.models.tasks import TASK_LEVELS, TASK_STATES
from dossier_service.policy import Action, Decision, Principal, decide
from dossier_service.schemas import (
    PatientCreate,
)
from dossier_service.services import circle, followup, lifeline, notebook, tasks
from dossier_service.services import documents as documents_service
from dossier_service.services import forms as forms_service
from dossier_service.services import patients as patients_service
from dossier_service.services.errors import ServiceError
from dossier_service.web.active_flags import active_flags
from dossier_service.web.pagectx import (
    PageInputError,
    french_validation,
    optional,
    page_context,
    posted_form,
    text,
)
from dossier_service.web.pages_login import PAGES
from dossier_service.web.timeline import render_life_line

routes = web.RouteTableDef()
PAGE_SIZE = 25
NOTICES = {
    "statut": "Statut du dossier modifié.",
    "memo": "Mémo enregistré.",
    "hospitalisation": "Hospitalisations mises à jour.",
    "tache": "Tâche ajoutée.",
    "cercle": "Cercle de soins mis à jour.",
    "parcours": "Ligne de vie mise à jour.",
    "liaison": "Entrée publiée dans le cahier de liaison.",
    "document": "Document déposé.",
    "formulaire": "Nouvelle version du formulaire enregistrée.",
    "dossier": "Dossier créé : vous en êtes coordinateur·rice.",
    "identite": "Identité mise à jour.",
    "deces": "Déclaration de décès enregistrée.",
}


def notice_of(request: web.Request) -> str | None:
    return NOTICES.get(request.query.get("ok", ""))


# --------------------------------------------------------------------------- list


@routes.get("/patients")
async def patient_list(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    q = request.query.get("q", "").strip()[:100]
    page = bounded_int(request.query.get("page"), 1, 1, 10_000)
    async with ctx.db.transaction() as session:
        rows, total = await patients_service.list_patients(
            session,
            principal=ctx.principal,
            search=q,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
        await ctx.audit(session, action="read", resource="page:patients", patient_id=None)
    return await request.app[PAGES].render(
        request,
        "patients.html",
        {
            "nav": "patients",
            "patients": rows,
            "total": total,
            "q": q,
            "page": page,
            "pages": (total + PAGE_SIZE - 1) // PAGE_SIZE,
            "notice": notice_of(request),
        },
    )


@routes.post("/patients")
async def patient_create(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    form = await posted_form(request, ctx)
    try:
        if not text(form, "label") and not text(form, "birth_name"):
            raise PageInputError("Indiquez au moins un libellé ou un nom de naissance.")
        data = PatientCreate.model_validate(
            {
                "label": text(form, "label"),
                "birth_name": text(form, "birth_name").upper() or None,
                "birth_first_names": text(form, "birth_first_names").split() or None,
                "sex": optional(form, "sex"),
                "birth_date": optional(form, "birth_date"),
            },
            strict=False,
        )
        async with ctx.db.transaction() as session:
            patient = await patients_service.create_patient(
                session, principal=ctx.principal, data=data, today=ctx.today()
            )
            await ctx.audit(
                session, action="create", resource="page:patient", patient_id=patient.id
            )
    except (ValidationError, ServiceError, PageInputError) as exc:
        message = french_validation(exc) if isinstance(exc, ValidationError) else exc.message
        return await request.app[PAGES].render(
            request,
            "patients.html",
            {
                "nav": "patients",
                "patients": [],
                "total": 0,
                "q": "",
                "page": 1,
                "pages": 0,
                "error": message,
            },
            status=400,
        )
    raise web.HTTPSeeOther(f"/patients/{patient.id}?ok=dossier")


# --------------------------------------------------------------------------- the file


async def file_view(
    session: AsyncSession, ctx: Ctx, request: web.Request, access: FileAccess
) -> dict[str, Any]:
    """Everything the file's page shows, read through the services."""
    patient = access.patient
    config = ctx.config
    members_all = await circle.list_members(session, patient_id=patient.id, include_ended=True)
    members = [m for m in members_all if m.ended_at is None]
    ended = [m for m in members_all if m.ended_at is not None]
    statuses = await session.exec(
        select(FileStatusChange)
        .where(FileStatusChange.patient_id == patient.id)
        .order_by(col(FileStatusChange.changed_at).desc())
        .limit(20)
    )
    patient_tasks = await tasks.list_tasks(
        session,
        principal=ctx.principal,
        filters=tasks.TaskFilters(patient_id=patient.id, today=ctx.today()),
        limit=200,
    )
    limit = bounded_int(request.query.get("liaison"), 50, 20, 1000)
    entries = await notebook.list_entries(session, patient_id=patient.id, limit=limit + 1)
    flag_entries = await session.exec(
        select(NotebookEntry).where(
            NotebookEntry.patient_id == patient.id, NotebookEntry.kind == "signalement"
        )
    )
    episodes = await lifeline.list_episodes(session, patient_id=patient.id)
    docs = await documents_service.list_documents(
        session, patient_id=patient.id, principal=ctx.principal, membership=access.membership
    )
    by_category: dict[str, list[Any]] = defaultdict(list)
    for d in docs:
        by_category[d.category].append(d)
    order = {c: i for i, c in enumerate(config.document_categories)}
    forms = ctx.request.app[appkeys.FORMS]
    today = ctx.today()
    return {
        "patient": patient,
        "identity": patient_public(patient),
        "identity_documents": IDENTITY_DOCUMENTS,
        "status_choices": [
            patient.identity_status,
            *sorted(ALLOWED_TRANSITIONS[patient.identity_status]),
        ],
        "death": await patients_service.active_death(session, patient_id=patient.id),
        "status_history": list(statuses.all()),
        "memos": await followup.list_memos(session, patient_id=patient.id),
        "hospitalisations": await followup.list_hospitalisations(session, patient_id=patient.id),
        "now": ctx.now(),
        "members": members,
        "ended_members": ended,
        "tasks": patient_tasks,
        "assignees": await tasks.assignees_of(session, task_ids=[t.id for t in patient_tasks]),
        "overdue_count": sum(1 for t in patient_tasks if t.is_overdue(today)),
        "active_flags": active_flags(flag_entries.all()),
        "entries": entries[:limit],
        "more_entries": len(entries) > limit,
        "entries_limit": limit,
        "episodes": episodes,
        "life_line_svg": _markup(
            render_life_line(episodes, today=today, themes=config.lifeline_themes)
        ),
        "documents_by_id": {d.id: d for d in docs},
        "documents_by_category": sorted(by_category.items(), key=lambda kv: order.get(kv[0], 99)),
        "forms": forms,
        "latest_answers": await forms_service.latest_by_form(session, patient_id=patient.id),
        "can_write": decide(ctx.principal, access.membership, Action.WRITE) is Decision.ALLOW,
        "can_manage": decide(ctx.principal, access.membership, Action.MANAGE_CIRCLE)
        is Decision.ALLOW,
        "file_statuses": config.file_statuses,
        "task_types": config.task_types,
        "task_levels": TASK_LEVELS,
        "task_states": TASK_STATES,
        "lifeline_themes": config.lifeline_themes,
        "document_categories": config.document_categories,
        "max_upload": f"{config.documents_max_size // (1024 * 1024)} Mo",
        "server_name": config.server_name,
        "show_patient": False,
        "patient_names": {},
        "can_write_task": lambda t: True,
        "return_to": f"/patients/{patient.id}#taches",
        "open_form": None,
    }


def _markup(svg: str) -> Markup:
    return Markup(svg)  # built by timeline.render_life_line, which escapes every text


async def render_file(
    request: web.Request,
    ctx: Ctx,
    patient_id: str,
    *,
    error: str | None = None,
    status: int = 200,
    open_form: str | None = None,
) -> web.Response:
    async with ctx.db.transaction() as session:
        access = await open_file(session, ctx, patient_id, Action.READ, "page:patient")
        view = await file_view(session, ctx, request, access)
        await ctx.audit(session, action="read", resource="page:patient", patient_id=patient_id)
    view.update(
        nav="patients",
        error=error,
        notice=None if error else notice_of(request),
        open_form=open_form,
    )
    return await request.app[PAGES].render(request, "patient.html", view, status=status)


@routes.get("/patients/{pid}")
async def patient_file(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    return await render_file(request, ctx, request.match_info["pid"])


# --------------------------------------------------------------------------- writes


@dataclass(frozen=True)
class FileWrite:
    """What a write of a file's section works with: its transaction, the page's context and
    who writes, the file (opened for the section's action) and the posted form."""

    request: web.Request
    session: AsyncSession
    ctx: Ctx
    principal: Principal
    patient: Patient
    form: Any

    def text(self, name: str) -> str:
        return text(self.form, name)

    def optional(self, name: str) -> str | None:
        return optional(self.form, name)

    def row_id(self, name: str) -> str:
        """The id of the row the path's ``{name}`` names (36 characters at most)."""
        return self.request.match_info[name][:36]


Work = Callable[[FileWrite], Awaitable[None]]


def section_write(
    routes: web.RouteTableDef,
    path: str,
    section: str,
    action: Action = Action.WRITE,
    *,
    anchor: str | None = None,
    verb: str = "create",
) -> Callable[[Work], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Declare the form POSTed to ``path`` that writes ``section`` of the file: the decorated
    ``work(write)`` runs as ``write_section`` (one audited transaction, the section named in
    the redirection, ``#anchor`` or the section)."""

    def declare(work: Work) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @routes.post(path)
        @functools.wraps(work)
        async def handler(request: web.Request) -> web.StreamResponse:
            return await write_section(request, section, action, work, anchor=anchor, verb=verb)

        return handler

    return declare


async def write_section(
    request: web.Request,
    section: str,
    action: Action,
    work: Work,
    *,
    anchor: str | None = None,
    verb: str = "create",
) -> web.StreamResponse:
    """Run ``work(write)`` as one audited write on the file."""
    ctx = page_context(request)
    pid = request.match_info["pid"]
    form = await posted_form(request, ctx)
    try:
        async with ctx.db.transaction() as session:
            access = await open_file(session, ctx, pid, action, f"page:{section}")
            await work(FileWrite(request, session, ctx, ctx.principal, access.patient, form))
            await ctx.audit(session, action=verb, resource=f"page:{section}", patient_id=pid)
    except ValidationError as exc:
        return await render_file(
            request, ctx, pid, error=french_validation(exc), status=400, open_form=section
        )
    except PageInputError as exc:
        return await render_file(
            request, ctx, pid, error=exc.message, status=400, open_form=section
        )
    except ServiceError as exc:
        return await render_file(
            request, ctx, pid, error=exc.message, status=exc.status, open_form=section
        )
    raise web.HTTPSeeOther(f"/patients/{pid}?ok={section}#{anchor or section}")
