"""/api/v1/tasks: the task dashboard with its filters, creation, changes, closing."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.context import Ctx, open_file, page
from dossier_service.api.errors import Denied
from dossier_service.api.operation import (
    READ_NAMED_FILE,
    WRITE_NAMED_FILE,
    Audit,
    Call,
    Operations,
    Param,
    row_access,
)
from dossier_service.api.serialize import dump_task
from dossier_service.models.patient import Patient
from dossier_service.models.tasks import TASK_LEVELS, TASK_STATES, Task
from dossier_service.policy import Action
from dossier_service.schemas import TaskIn, TaskUpdate
from dossier_service.services import read_models, tasks

operations = Operations()
TASKS = "/api/v1/tasks"
TASK = TASKS + "/{task_id}"


async def task_access(
    session: AsyncSession, ctx: Ctx, task_id: str, action: Action, resource: str = ""
) -> tuple[Task, Patient | None]:
    """The task and its file's patient if the caller may ``action`` it (API and pages): through
    its file's circle, or (a task outside any file) as its author, one of its assignees or the
    service. ``resource`` names a refusal in the audit (``tasks/<id>`` by default)."""
    task = await session.get(Task, task_id) if len(task_id) <= 36 else None
    if task is None:
        raise Denied(status=404, patient_id=None, resource=resource or "tasks", action=action.value)
    if task.patient_id is not None:
        resource = resource or f"tasks/{task.id}"
        return task, (await open_file(session, ctx, task.patient_id, action, resource)).patient
    me = ctx.principal
    if not me.privileged and task.created_by != me.user_id:
        assignees = (await tasks.assignees_of(session, task_ids=[task.id]))[task.id]
        if not any(a.kind == "personne" and a.ref == me.user_id for a in assignees):
            raise Denied(
                status=404, patient_id=None, resource=resource or "tasks", action=action.value
            )
    return task, None


async def _task_access(call: Call, session: AsyncSession, action: Action) -> None:
    task, call.state["patient"] = await task_access(session, call.ctx, call.path("task_id"), action)
    call.row = task
    call.audit_as(f"tasks/{task.id}", patient_id=task.patient_id)


READ_TASK = row_access("task", _task_access, Action.READ)
WRITE_TASK = row_access("task", _task_access, Action.WRITE)


async def _dumped(call: Call, session: AsyncSession, task: Task) -> dict[str, Any]:
    assignees = (await tasks.assignees_of(session, task_ids=[task.id]))[task.id]
    return dump_task(task, assignees, call.today())


@operations.get(
    TASKS,
    access=READ_NAMED_FILE,
    audit=Audit("read", "tasks.dashboard"),
    resource="tasks",
    query=(
        Param("level", "choice", choices=TASK_LEVELS, refusal="Niveau de tâche inconnu."),
        Param("state", "choice", choices=TASK_STATES, refusal="État de tâche inconnu."),
        Param("limit", "int", 100, low=1, high=500),
        Param("offset", "int", 0),
        Param("type"),
        Param("subtype"),
        Param("patient_id"),
        Param("due_from", "date"),
        Param("due_to", "date"),
        Param("member"),
        Param("overdue", "flag"),
    ),
)
async def dashboard(call: Call, session: AsyncSession) -> tuple[int, Any]:
    q = call.query
    filters = tasks.TaskFilters(
        type=q["type"],
        subtype=q["subtype"],
        patient_id=q["patient_id"],
        due_from=q["due_from"],
        due_to=q["due_to"],
        member=q["member"],
        level=q["level"],
        state=q["state"],
        overdue_only=q["overdue"],
        today=call.today(),
    )
    items = await read_models.dashboard(
        session,
        principal=call.me,
        filters=filters,
        limit=q["limit"],
        offset=q["offset"],
        today=call.today(),
        cache=call.request.app.get(appkeys.DASHBOARD_CACHE),
        epoch=call.ctx.db.change_epoch(),
    )
    return 200, {
        "items": items,
        "overdue": sum(1 for i in items if i["overdue"]),
        "next": page(q["limit"], q["offset"], len(items)),
    }


@operations.post(
    TASKS, access=WRITE_NAMED_FILE, audit=Audit("create", "tasks"), body=TaskIn, idempotent=True
)
async def create(call: Call, session: AsyncSession) -> tuple[int, Any]:
    task = await call.on_file(
        tasks.create_task, session, data=call.data(TaskIn), task_types=call.ctx.config.task_types
    )
    call.audit_as(f"tasks/{task.id}")
    return 201, await _dumped(call, session, task)


@operations.get(TASK, access=READ_TASK, audit=Audit("read", "tasks"))
async def get(call: Call, session: AsyncSession) -> tuple[int, Any]:
    return 200, await _dumped(call, session, call.row)


@operations.patch(
    TASK, access=WRITE_TASK, audit=Audit("update", "tasks"), body=TaskUpdate, idempotent=True
)
async def update(call: Call, session: AsyncSession) -> tuple[int, Any]:
    task = await tasks.update_task(
        session,
        principal=call.me,
        task=call.row,
        patient=call.state["patient"],
        data=call.data(TaskUpdate),
        task_types=call.ctx.config.task_types,
    )
    return 200, await _dumped(call, session, task)
