"""The patient list and the patient's file, with the writes of each section.

Every read and write runs in one transaction through the core's services, with
``open_file`` deciding access (404 for outsiders, 403 for members without access) and an
audit row written in the same transaction. Writes answer with a redirection to the section
(303); a refused input re-renders the file with the message (400/409).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from aiohttp import web
from markupsafe import Markup
from pydantic import ValidationError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.context import Ctx, FileAccess, open_file
from dossier_service.identity import ALLOWED_TRANSITIONS, IDENTITY_DOCUMENTS
from dossier_service.models.patient import FileStatusChange, patient_public
from dossier_service.models.tasks import TASK_LEVELS, TASK_STATES
from dossier_service.policy import Action, Decision, decide
from dossier_service.schemas import (
    AssigneeIn,
    CircleMemberIn,
    CircleMemberUpdate,
    DeathCancelIn,
    EpisodeIn,
    EpisodeUpdate,
    HospitalisationIn,
    HospitalisationUpdate,
    IdentityUpdate,
    MemoIn,
    MemoUpdate,
    NotebookIn,
    PatientCreate,
    TaskIn,
)
from dossier_service.services import circle, followup, lifeline, notebook, tasks
from dossier_service.services import documents as documents_service
from dossier_service.services import forms as forms_service
from dossier_service.services import patients as patients_service
from dossier_service.services.errors import ServiceError
from dossier_service.web.pagectx import (
    PageInputError,
    french_validation,
    optional,
    page_context,
    parse_day,
    parse_local_datetime,
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
    try:
        page = max(1, min(int(request.query.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    async with ctx.db.transaction() as session:
        rows, total = await patients_service.list_patients(
            session, principal=ctx.principal, search=q, limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )  # fmt: skip
        await ctx.audit(session, action="read", resource="page:patients", patient_id=None)
    return request.app[PAGES].render(
        request, "patients.html",
        {"nav": "patients", "patients": rows, "total": total, "q": q, "page": page,
         "pages": (total + PAGE_SIZE - 1) // PAGE_SIZE, "notice": notice_of(request)},
    )  # fmt: skip


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
        return request.app[PAGES].render(
            request, "patients.html",
            {"nav": "patients", "patients": [], "total": 0, "q": "", "page": 1, "pages": 0,
             "error": message},
            status=400,
        )  # fmt: skip
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
        session, principal=ctx.principal,
        filters=tasks.TaskFilters(patient_id=patient.id, today=ctx.today()), limit=200,
    )  # fmt: skip
    try:
        limit = max(20, min(int(request.query.get("liaison", "50")), 1000))
    except ValueError:
        limit = 50
    entries = await notebook.list_entries(session, patient_id=patient.id, limit=limit + 1)
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
        "member_names": {m.matrix_user_id: m.display_name for m in members_all if m.matrix_user_id},
        "ended_members": ended,
        "tasks": patient_tasks,
        "assignees": await tasks.assignees_of(session, task_ids=[t.id for t in patient_tasks]),
        "overdue_count": sum(1 for t in patient_tasks if t.is_overdue(today)),
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
    request: web.Request, ctx: Ctx, patient_id: str, *, error: str | None = None,
    status: int = 200, open_form: str | None = None,
) -> web.Response:  # fmt: skip
    async with ctx.db.transaction() as session:
        access = await open_file(session, ctx, patient_id, Action.READ, "page:patient")
        view = await file_view(session, ctx, request, access)
        await ctx.audit(session, action="read", resource="page:patient", patient_id=patient_id)
    view.update(nav="patients", error=error, notice=None if error else notice_of(request),
                open_form=open_form)  # fmt: skip
    return request.app[PAGES].render(request, "patient.html", view, status=status)


@routes.get("/patients/{pid}")
async def patient_file(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    return await render_file(request, ctx, request.match_info["pid"])


# --------------------------------------------------------------------------- writes


async def write_section(
    request: web.Request,
    section: str,
    action: Action,
    work: Any,
    *,
    anchor: str | None = None,
    verb: str = "create",
) -> web.StreamResponse:
    """Run ``work(session, ctx, access, form)`` as one audited write on the file."""
    ctx = page_context(request)
    pid = request.match_info["pid"]
    form = await posted_form(request, ctx)
    try:
        async with ctx.db.transaction() as session:
            access = await open_file(session, ctx, pid, action, f"page:{section}")
            await work(session, ctx, access, form)
            await ctx.audit(session, action=verb, resource=f"page:{section}", patient_id=pid)
    except ValidationError as exc:
        return await render_file(request, ctx, pid, error=french_validation(exc), status=400,
                                 open_form=section)  # fmt: skip
    except PageInputError as exc:
        return await render_file(
            request, ctx, pid, error=exc.message, status=400, open_form=section
        )
    except ServiceError as exc:
        return await render_file(request, ctx, pid, error=exc.message, status=exc.status,
                                 open_form=section)  # fmt: skip
    raise web.HTTPSeeOther(f"/patients/{pid}?ok={section}#{anchor or section}")


TEXT_TRAITS = ("label", "birth_name", "used_name", "used_first_name", "birth_commune",
               "birth_country", "postcode", "address", "email", "identity_document_type")  # fmt: skip


def identity_changes(patient: Any, form: Any) -> dict[str, Any]:
    """Only what the person changed: unchanged traits are not re-sent (the INS rules freeze
    some of them once the identity is verified); the INS number only when typed."""
    wanted: dict[str, Any] = {key: text(form, key) for key in TEXT_TRAITS}
    wanted["birth_name"] = wanted["birth_name"].upper()
    wanted["birth_first_names"] = text(form, "birth_first_names").split()
    wanted["phones"] = [p.strip() for p in text(form, "phones").split(",") if p.strip()]
    wanted["sex"] = optional(form, "sex")
    wanted["birth_insee_code"] = (optional(form, "birth_insee_code") or "").upper() or None
    wanted["birth_date"] = parse_day(text(form, "birth_date"))
    wanted["identity_document_date"] = parse_day(text(form, "identity_document_date"))
    wanted["identity_document_type"] = wanted["identity_document_type"] or None
    wanted["identity_status"] = text(form, "identity_status") or patient.identity_status
    changes = {k: v for k, v in wanted.items() if getattr(patient, k) != v}
    if text(form, "ins_number"):
        changes["ins_number"] = text(form, "ins_number").replace(" ", "")
    return changes


@routes.post("/patients/{pid}/identite")
async def update_identity(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        changes = identity_changes(access.patient, form)
        if not changes:
            raise PageInputError("Aucune modification de l'identité.")
        data = IdentityUpdate.model_validate(
            {k: (v.isoformat() if isinstance(v, date) else v) for k, v in changes.items()},
            strict=False,
        )
        await patients_service.update_identity(
            session, principal=ctx.principal, patient=access.patient, data=data, today=ctx.today()
        )

    return await write_section(request, "identite", Action.WRITE, work, verb="update")


@routes.post("/patients/{pid}/deces")
async def declare_death(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        day = parse_day(text(form, "death_date"))
        if day is None:
            raise PageInputError("Indiquez la date du décès.")
        await patients_service.declare_death(
            session, principal=ctx.principal, patient=access.patient, death_date=day,
            today=ctx.today(),
        )  # fmt: skip

    return await write_section(request, "deces", Action.WRITE, work, anchor="identite")


@routes.post("/patients/{pid}/deces/annulation")
async def cancel_death(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        data = DeathCancelIn.model_validate({"reason": text(form, "reason")}, strict=False)
        await patients_service.cancel_death(
            session, principal=ctx.principal, patient=access.patient, reason=data.reason
        )

    return await write_section(request, "deces", Action.WRITE, work, anchor="identite",
                               verb="update")  # fmt: skip


@routes.post("/patients/{pid}/statut")
async def set_status(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        await patients_service.set_file_status(
            session, principal=ctx.principal, patient=access.patient, status=text(form, "status"),
            comment=text(form, "comment")[:1000], allowed=ctx.config.file_statuses,
        )  # fmt: skip

    return await write_section(request, "statut", Action.WRITE, work, verb="update")


@routes.post("/patients/{pid}/memos")
async def add_memo(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        data = MemoIn.model_validate({"text": text(form, "text")}, strict=False)
        await followup.add_memo(session, principal=ctx.principal, patient=access.patient, data=data)

    return await write_section(request, "memo", Action.WRITE, work, anchor="memos")


@routes.post("/patients/{pid}/memos/{mid}/archiver")
async def archive_memo(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        await followup.update_memo(
            session, principal=ctx.principal, patient=access.patient,
            memo_id=request.match_info["mid"][:36], data=MemoUpdate(archived=True),
        )  # fmt: skip

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

    return await write_section(request, "hospitalisation", Action.WRITE, work,
                               anchor="hospitalisations")  # fmt: skip


@routes.post("/patients/{pid}/hospitalisations/{hid}/sortie")
async def discharge(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        moment = parse_local_datetime(text(form, "discharge_at"), "sortie")
        if moment is None:
            raise PageInputError("Indiquez la date et l'heure de sortie.")
        await followup.update_hospitalisation(
            session, principal=ctx.principal, patient=access.patient,
            stay_id=request.match_info["hid"][:36],
            data=HospitalisationUpdate.model_validate({"discharge_at": moment}, strict=False),
        )  # fmt: skip

    return await write_section(request, "hospitalisation", Action.WRITE, work,
                               anchor="hospitalisations", verb="update")  # fmt: skip


@routes.post("/patients/{pid}/parcours/{eid}/fin")
async def end_episode(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        day = parse_day(text(form, "ends_on"))
        if day is None:
            raise PageInputError("Indiquez la date de fin du parcours.")
        await lifeline.update_episode(
            session, principal=ctx.principal, patient=access.patient,
            episode_id=request.match_info["eid"][:36],
            data=EpisodeUpdate.model_validate({"ends_on": day}, strict=False),
        )  # fmt: skip

    return await write_section(request, "parcours", Action.WRITE, work, anchor="ligne-de-vie",
                               verb="update")  # fmt: skip


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
            session, principal=ctx.principal, patient=access.patient, data=data,
            task_types=ctx.config.task_types,
        )  # fmt: skip

    return await write_section(request, "tache", Action.WRITE, work, anchor="taches")


@routes.post("/patients/{pid}/cercle")
async def add_member(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        data = CircleMemberIn.model_validate(
            {
                "kind": text(form, "kind"),
                "display_name": text(form, "display_name"),
                "matrix_user_id": optional(form, "matrix_user_id"),
                "directory_id": optional(form, "directory_id"),
                "profession": text(form, "profession"),
                "specialty": text(form, "specialty"),
                "role": text(form, "role"),
                "has_access": text(form, "has_access") == "oui",
                "description": text(form, "description"),
            },
            strict=False,
        )
        await circle.add_member(session, principal=ctx.principal, patient=access.patient, data=data)

    return await write_section(request, "cercle", Action.MANAGE_CIRCLE, work)


@routes.post("/patients/{pid}/cercle/{mid}/fin")
async def end_member(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        member = await circle.get_member(
            session, patient_id=access.patient.id, member_id=request.match_info["mid"][:36]
        )
        await circle.end_member(
            session, principal=ctx.principal, patient=access.patient, member=member
        )

    return await write_section(request, "cercle", Action.MANAGE_CIRCLE, work, verb="update")


@routes.post("/patients/{pid}/cercle/{mid}/acces")
async def toggle_access(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        member = await circle.get_member(
            session, patient_id=access.patient.id, member_id=request.match_info["mid"][:36]
        )
        if member.matrix_user_id == ctx.principal.user_id:
            raise PageInputError("Vous ne pouvez pas modifier votre propre habilitation.")
        await circle.update_member(
            session, principal=ctx.principal, patient=access.patient, member=member,
            data=CircleMemberUpdate(has_access=text(form, "has_access") == "oui"),
        )  # fmt: skip

    return await write_section(request, "cercle", Action.MANAGE_CIRCLE, work, verb="update")


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
            session, principal=ctx.principal, patient=access.patient, data=data,
            themes=ctx.config.lifeline_themes,
            form_ids=[f.key for f in request.app[appkeys.FORMS]],
        )  # fmt: skip

    return await write_section(request, "parcours", Action.WRITE, work, anchor="ligne-de-vie")


@routes.post("/patients/{pid}/liaison")
async def add_entry(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        data = NotebookIn.model_validate(
            {"kind": text(form, "kind") or "note", "text": text(form, "text")}, strict=False
        )
        await notebook.add_entry(
            session, principal=ctx.principal, patient=access.patient, kind=data.kind,
            text=data.text, source="web",
        )  # fmt: skip

    return await write_section(request, "liaison", Action.WRITE, work)
