"""/api/v1/tasks: the task dashboard with its filters, creation, changes, closing."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.context import (
    Ctx,
    context,
    open_file,
    page,
    parse_model,
    query_date,
    query_int,
    read_raw,
)
from dossier_service.api.errors import ApiError, Denied
from dossier_service.api.runner import idempotency_key, run
from dossier_service.api.serialize import dump_task
from dossier_service.models.patient import Patient
from dossier_service.models.tasks import TASK_LEVELS, TASK_STATES, Task
from dossier_service.policy import Action
from dossier_service.schemas import TaskIn, TaskUpdate
from dossier_service.services import read_models, tasks

routes = web.RouteTableDef()


async def _task_access(
    session: AsyncSession, ctx: Ctx, task_id: str, action: Action
) -> tuple[Task, Patient | None]:
    task = await session.get(Task, task_id) if len(task_id) <= 36 else None
    if task is None:
        raise Denied(status=404, patient_id=None, resource="tasks", action=action.value)
    if task.patient_id is not None:
        access = await open_file(session, ctx, task.patient_id, action, f"tasks/{task.id}")
        return task, access.patient
    if not ctx.principal.privileged and task.created_by != ctx.principal.user_id:
        assignees = (await tasks.assignees_of(session, task_ids=[task.id]))[task.id]
        if not any(a.kind == "personne" and a.ref == ctx.principal.user_id for a in assignees):
            raise Denied(status=404, patient_id=None, resource="tasks", action=action.value)
    return task, None


@routes.get("/api/v1/tasks")
async def dashboard(request: web.Request) -> web.Response:
    ctx = context(request)
    q = request.query
    if q.get("level") and q["level"] not in TASK_LEVELS:
        raise ApiError("M_INVALID_PARAM", "Niveau de tâche inconnu.")
    if q.get("state") and q["state"] not in TASK_STATES:
        raise ApiError("M_INVALID_PARAM", "État de tâche inconnu.")
    limit = query_int(request, "limit", 100, low=1, high=500)
    offset = query_int(request, "offset", 0)
    filters = tasks.TaskFilters(
        type=q.get("type") or None,
        subtype=q.get("subtype") or None,
        patient_id=q.get("patient_id") or None,
        due_from=query_date(request, "due_from"),
        due_to=query_date(request, "due_to"),
        member=q.get("member") or None,
        level=q.get("level") or None,
        state=q.get("state") or None,
        overdue_only=q.get("overdue") in ("1", "true"),
        today=ctx.today(),
    )

    async def work(session: AsyncSession) -> tuple[int, Any]:
        if filters.patient_id:
            await open_file(session, ctx, filters.patient_id, Action.READ, "tasks")
        await ctx.audit(
            session, action="read", resource="tasks.dashboard", patient_id=filters.patient_id
        )
        items = await read_models.dashboard(
            session,
            principal=ctx.principal,
            filters=filters,
            limit=limit,
            offset=offset,
            today=ctx.today(),
            cache=ctx.request.app.get(appkeys.DASHBOARD_CACHE),
            revisions=ctx.db.revisions,
        )
        return 200, {
            "items": items,
            "overdue": sum(1 for i in items if i["overdue"]),
            "next": page(limit, offset, len(items)),
        }

    return await run(ctx, work)


@routes.post("/api/v1/tasks")
async def create(request: web.Request) -> web.Response:
    ctx = context(request)
    raw = await read_raw(request)
    data = parse_model(TaskIn, raw)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        patient = None
        if data.patient_id:
            patient = (
                await open_file(session, ctx, data.patient_id, Action.WRITE, "tasks")
            ).patient
        task = await tasks.create_task(
            session,
            principal=ctx.principal,
            patient=patient,
            data=data,
            task_types=ctx.config.task_types,
        )
        await ctx.audit(
            session, action="create", resource=f"tasks/{task.id}", patient_id=data.patient_id
        )
        assignees = (await tasks.assignees_of(session, task_ids=[task.id]))[task.id]
        return 201, dump_task(task, assignees, ctx.today())

    return await run(ctx, work, key=idempotency_key(request, data.idempotency_key), raw=raw)


@routes.get("/api/v1/tasks/{task_id}")
async def get(request: web.Request) -> web.Response:
    ctx = context(request)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        task, _ = await _task_access(session, ctx, request.match_info["task_id"], Action.READ)
        await ctx.audit(
            session, action="read", resource=f"tasks/{task.id}", patient_id=task.patient_id
        )
        assignees = (await tasks.assignees_of(session, task_ids=[task.id]))[task.id]
        return 200, dump_task(task, assignees, ctx.today())

    return await run(ctx, work)


@routes.patch("/api/v1/tasks/{task_id}")
async def update(request: web.Request) -> web.Response:
    ctx = context(request)
    raw = await read_raw(request)
    data = parse_model(TaskUpdate, raw)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        task, patient = await _task_access(
            session, ctx, request.match_info["task_id"], Action.WRITE
        )
        await ctx.audit(
            session, action="update", resource=f"tasks/{task.id}", patient_id=task.patient_id
        )
        task = await tasks.update_task(
            session,
            principal=ctx.principal,
            task=task,
            patient=patient,
            data=data,
            task_types=ctx.config.task_types,
        )
        assignees = (await tasks.assignees_of(session, task_ids=[task.id]))[task.id]
        return 200, dump_task(task, assignees, ctx.today())

    return await run(ctx, work, key=idempotency_key(request), raw=raw)
