"""The task dashboard with the reference's filters and overdue alerts; changing a task's state."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlmodel import col, select

from dossier_service import appkeys, bounded
from dossier_service.api.tasks import task_access
from dossier_service.models.circle import CircleMember
from dossier_service.models.tasks import OPEN_STATES, TASK_LEVELS, TASK_STATES
from dossier_service.policy import Action
from dossier_service.schemas import TaskUpdate
from dossier_service.services import patients as patients_service
from dossier_service.services import tasks as tasks_service
from dossier_service.services.errors import ServiceError
from dossier_service.web.pagectx import page_context, posted_form, safe_next, text
from dossier_service.web.pages_login import PAGES
from dossier_service.web.rendering import display_name

routes = web.RouteTableDef()
DASHBOARD_LIMIT = 300


def _day(value: str) -> date | None:
    try:
        return bounded.parse_day(value) if value else None
    except ValueError:  # a filter: an unreadable or out-of-range day is no filter
        return None


@routes.get("/taches")
async def dashboard(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    q = request.query
    config = ctx.config
    today = ctx.today()
    state = q.get("etat", "ouvertes")
    filters: dict[str, Any] = {
        "type": q.get("type") if q.get("type") in config.task_types else None,
        "subtypes": [q["sous_type"]] if q.get("sous_type") else [],
        "patient": q.get("patient", "")[:40] or None,
        "due_from": _day(q.get("du", "")),
        "due_to": _day(q.get("au", "")),
        "member": q.get("membre", "").strip()[:255] or None,
        "level": q.get("niveau") if q.get("niveau") in TASK_LEVELS else None,
        "state": state if state in (*TASK_STATES, "ouvertes") else "",
        "overdue": q.get("retard") == "1",
        "mine": q.get("miennes") == "1",
        "circle": q.get("cercle", "").strip()[:255] or None,
    }
    states = list(OPEN_STATES) if filters["state"] == "ouvertes" else [filters["state"] or None]
    async with ctx.db.transaction() as session:
        rows: list[Any] = []
        for one_state in states:
            rows += await tasks_service.list_tasks(
                session,
                principal=ctx.principal,
                limit=DASHBOARD_LIMIT,
                filters=tasks_service.TaskFilters(
                    type=filters["type"],
                    subtype=(filters["subtypes"] or [None])[0],
                    patient_id=filters["patient"],
                    due_from=filters["due_from"],
                    due_to=filters["due_to"],
                    member=ctx.principal.user_id if filters["mine"] else filters["member"],
                    level=filters["level"],
                    state=one_state,
                    overdue_only=filters["overdue"],
                    today=today,
                ),
            )
        if filters["circle"]:  # tasks of the files whose care circle includes that person
            circle_of = set(
                (
                    await session.exec(
                        select(CircleMember.patient_id).where(
                            CircleMember.matrix_user_id == filters["circle"],
                            col(CircleMember.ended_at).is_(None),
                        )
                    )
                ).all()
            )
            rows = [t for t in rows if t.patient_id in circle_of]
        rows.sort(key=lambda t: (t.due_date is None, t.due_date or today, t.created_at))
        rows = rows[:DASHBOARD_LIMIT]
        visible, _total = await patients_service.list_patients(
            session, principal=ctx.principal, limit=500
        )
        assignees = await tasks_service.assignees_of(session, task_ids=[t.id for t in rows])
        await ctx.audit(
            session, action="read", resource="page:tasks", patient_id=filters["patient"]
        )
    names = {p.id: display_name(p) for p in visible}
    return await request.app[PAGES].render(
        request,
        "taches.html",
        {
            "nav": "taches",
            "tasks": rows,
            "assignees": assignees,
            "filters": filters,
            "overdue_count": sum(1 for t in rows if t.is_overdue(today)),
            "truncated": len(rows) >= DASHBOARD_LIMIT,
            "task_types": config.task_types,
            "task_levels": TASK_LEVELS,
            "task_states": TASK_STATES,
            "patient_choices": sorted(names.items(), key=lambda kv: kv[1]),
            "patient_names": names,
            "show_patient": True,
            "documents_by_id": {},
            "forms": request.app[appkeys.FORMS],
            "can_write_task": lambda t: True,
            "return_to": request.path_qs,
        },
    )


@routes.post("/taches/{tid}/etat")
async def change_state(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    form = await posted_form(request, ctx)
    back = safe_next(text(form, "retour"), "/taches")
    try:
        data = TaskUpdate.model_validate({"state": text(form, "state")}, strict=False)
        async with ctx.db.transaction() as session:
            # the API's rule: through the task's file, or as its author or an assignee
            task, patient = await task_access(
                session, ctx, request.match_info["tid"][:36], Action.WRITE, "page:task"
            )
            await tasks_service.update_task(
                session,
                principal=ctx.principal,
                task=task,
                patient=patient,
                data=data,
                task_types=ctx.config.task_types,
            )
            await ctx.audit(
                session, action="update", resource="page:task", patient_id=task.patient_id
            )
    except ServiceError as exc:
        if exc.status == 404:
            raise web.HTTPNotFound() from None
        return await request.app[PAGES].render(
            request,
            "erreur.html",
            {"titre": "Tâche non modifiée", "explication": exc.message},
            status=exc.status,
        )
    except ValidationError as exc:
        message = exc.message if isinstance(exc, ServiceError) else "État de tâche invalide."
        return await request.app[PAGES].render(
            request,
            "erreur.html",
            {"titre": "Tâche non modifiée", "explication": message},
            status=400,
        )
    raise web.HTTPSeeOther(back)
