"""Tasks: creation, changes of state and assignees, the dashboard query with its filters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, exists, or_
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.file_revisions import mark_changed
from dossier_service.models.documents import Document
from dossier_service.models.patient import Patient
from dossier_service.models.tasks import OPEN_STATES, Task, TaskAssignee
from dossier_service.models.types import utcnow
from dossier_service.policy import Principal
from dossier_service.schemas import AssigneeIn, TaskIn, TaskUpdate
from dossier_service.services import journal
from dossier_service.services.circle import files_with_access
from dossier_service.services.errors import InvalidInput

CLOSED_STATES = frozenset({"fait", "annulé"})


@dataclass(frozen=True)
class TaskFilters:
    type: str | None = None
    subtype: str | None = None
    patient_id: str | None = None
    due_from: date | None = None
    due_to: date | None = None
    member: str | None = None
    level: str | None = None
    state: str | None = None
    overdue_only: bool = False
    today: date | None = None


def _check_type(
    type_: str, subtypes: Sequence[str], task_types: Mapping[str, Sequence[str]]
) -> None:
    if type_ not in task_types:
        raise InvalidInput("Type de tâche inconnu.", field="type")
    unknown = [s for s in subtypes if s not in task_types[type_]]
    if unknown:
        raise InvalidInput("Sous-type inconnu pour ce type de tâche.", field="subtypes")


async def _check_documents(
    session: AsyncSession, patient_id: str | None, ids: Sequence[str]
) -> None:
    if not ids:
        return
    if patient_id is None:
        raise InvalidInput(
            "Une tâche sans patient ne peut pas lier de documents.", field="document_ids"
        )
    rows = await session.exec(
        select(Document.id).where(col(Document.id).in_(ids), Document.patient_id == patient_id)
    )
    if len(set(rows.all())) != len(set(ids)):
        raise InvalidInput("Document lié introuvable dans ce dossier.", field="document_ids")


async def assignees_of(
    session: AsyncSession, *, task_ids: Sequence[str]
) -> dict[str, list[TaskAssignee]]:
    out: dict[str, list[TaskAssignee]] = {t: [] for t in task_ids}
    if not task_ids:
        return out
    rows = await session.exec(select(TaskAssignee).where(col(TaskAssignee.task_id).in_(task_ids)))
    for row in rows.all():
        out[row.task_id].append(row)
    return out


def _assignee_payload(assignees: Sequence[AssigneeIn | TaskAssignee]) -> list[dict[str, str]]:
    return [{"kind": a.kind, "ref": a.ref} for a in assignees]


async def _set_assignees(
    session: AsyncSession, task: Task, assignees: Sequence[AssigneeIn]
) -> None:
    await session.exec(delete(TaskAssignee).where(col(TaskAssignee.task_id) == task.id))
    seen: set[tuple[str, str]] = set()
    for a in assignees:
        if (a.kind, a.ref) not in seen:
            seen.add((a.kind, a.ref))
            session.add(TaskAssignee(task_id=task.id, kind=a.kind, ref=a.ref))


async def create_task(
    session: AsyncSession,
    *,
    principal: Principal,
    patient: Patient | None,
    data: TaskIn,
    task_types: Mapping[str, Sequence[str]],
) -> Task:
    _check_type(data.type, data.subtypes, task_types)
    patient_id = patient.id if patient else None
    await _check_documents(session, patient_id, data.document_ids)
    fields = data.model_dump(exclude={"assignees", "idempotency_key", "patient_id"})
    task = Task(patient_id=patient_id, created_by=principal.author, **fields)
    session.add(task)
    await session.flush()
    await _set_assignees(session, task, data.assignees)
    await _note(session, principal, patient, f"Création de la tâche « {task.label} »")
    if data.assignees:
        await _tell(session, principal, task, patient, journal.TASK_ASSIGNED, data.assignees)
    await session.flush()
    return task


async def _note(
    session: AsyncSession, principal: Principal, patient: Patient | None, text: str
) -> None:
    """A task's change written in its patient's notebook; a task of no file has no notebook
    entry, yet the dashboards change."""
    if patient is None:
        mark_changed(session, None)
    else:
        await journal.note(session, principal, patient, text)


async def _tell(
    session: AsyncSession,
    principal: Principal,
    task: Task,
    patient: Patient | None,
    type: str,
    assignees: Sequence[AssigneeIn | TaskAssignee],
) -> None:
    """The outbox event of a change to ``task`` (to its patient's conversation, if any)."""
    await journal.emit(
        session,
        type=type,
        patient_id=task.patient_id,
        room_id=patient.room_id if patient else None,
        actor=principal.author,
        payload=_task_payload(task, assignees),
    )


def _task_payload(task: Task, assignees: Sequence[AssigneeIn | TaskAssignee]) -> dict[str, Any]:
    return {
        "task_id": task.id,
        "label": task.label,
        "level": task.level,
        "state": task.state,
        "due_date": task.due_date.isoformat() if task.due_date else None,
        "assignees": _assignee_payload(assignees),
    }


async def update_task(
    session: AsyncSession,
    *,
    principal: Principal,
    task: Task,
    patient: Patient | None,
    data: TaskUpdate,
    task_types: Mapping[str, Sequence[str]],
) -> Task:
    changes = data.model_dump(exclude_unset=True)
    notes: list[str] = []
    if "state" in changes and changes["state"] is not None and changes["state"] != task.state:
        new = changes["state"]
        if task.state in CLOSED_STATES and new != "à faire":
            raise InvalidInput(
                "Une tâche close ne peut que être rouverte (à faire).", field="state"
            )
        task.state = new
        task.closed_at = utcnow() if new in CLOSED_STATES else None
        notes.append(f"état « {new} »")
    for key in ("level", "label", "comment"):
        if changes.get(key) is not None and changes[key] != getattr(task, key):
            setattr(task, key, changes[key])
            notes.append({"level": "niveau", "label": "libellé", "comment": "commentaire"}[key])
    if "due_date" in changes and changes["due_date"] != task.due_date:
        task.due_date = changes["due_date"]
        notes.append("échéance")
    if changes.get("subtypes") is not None:
        _check_type(task.type, changes["subtypes"], task_types)
        task.subtypes = list(changes["subtypes"])
        notes.append("sous-types")
    if changes.get("document_ids") is not None:
        await _check_documents(session, task.patient_id, changes["document_ids"])
        task.document_ids = list(changes["document_ids"])
        notes.append("documents liés")
    new_assignees: list[AssigneeIn] = []
    if data.assignees is not None:
        before = {
            (a.kind, a.ref) for a in (await assignees_of(session, task_ids=[task.id]))[task.id]
        }
        await _set_assignees(session, task, data.assignees)
        new_assignees = [a for a in data.assignees if (a.kind, a.ref) not in before]
        notes.append("destinataires")
    if not notes:
        return task
    task.updated_at = utcnow()
    session.add(task)
    await session.flush()
    await _note(session, principal, patient, f"Tâche « {task.label} » : " + ", ".join(notes))
    if new_assignees:
        await _tell(session, principal, task, patient, journal.TASK_ASSIGNED, new_assignees)
    if "state" in changes and task.state in CLOSED_STATES:
        await _tell(session, principal, task, patient, journal.TASK_CLOSED, [])
    return task


def _visible() -> Any:
    """Tasks of the files where ``:uid`` is a member with access, and file-less tasks ``:uid``
    created or is assigned to."""
    uid: Any = bindparam("uid")
    assigned = exists().where(
        col(TaskAssignee.task_id) == col(Task.id),
        col(TaskAssignee.kind) == "personne",
        col(TaskAssignee.ref) == uid,
    )
    return or_(
        col(Task.patient_id).in_(files_with_access(uid)),
        and_(col(Task.patient_id).is_(None), or_(col(Task.created_by) == uid, assigned)),
    )


@lru_cache(maxsize=1024)
def _dashboard_shape(
    privileged: bool,
    type_: bool,
    patient_id: bool,
    level: bool,
    state: bool,
    due_from: bool,
    due_to: bool,
    member: bool,
    overdue_only: bool,
) -> Any:
    """The statement for one combination of filters, built once: values are bound
    parameters, so its compiled form is reused by every request of that shape."""
    query = select(Task)
    if not privileged:
        query = query.where(_visible())
    if type_:
        query = query.where(Task.type == bindparam("type"))
    if patient_id:
        query = query.where(Task.patient_id == bindparam("patient_id"))
    if level:
        query = query.where(Task.level == bindparam("level"))
    if state:
        query = query.where(Task.state == bindparam("state"))
    if due_from:
        query = query.where(col(Task.due_date) >= bindparam("due_from"))
    if due_to:
        query = query.where(col(Task.due_date) <= bindparam("due_to"))
    if member:
        query = query.where(
            exists().where(
                col(TaskAssignee.task_id) == col(Task.id),
                col(TaskAssignee.ref) == bindparam("member"),
            )
        )
    if overdue_only:
        query = query.where(
            col(Task.state).in_(OPEN_STATES), col(Task.due_date) < bindparam("today")
        )
    return query.order_by(col(Task.due_date).is_(None), col(Task.due_date), col(Task.created_at))


def dashboard_query(principal: Principal, filters: TaskFilters) -> tuple[Any, dict[str, Any]]:
    """The dashboard's SELECT of tasks (visibility + filters), ordered: overdue and soonest
    first, and its parameters. Subtypes (a JSON list) are filtered by the callers."""
    f = filters
    statement = _dashboard_shape(
        principal.privileged,
        bool(f.type),
        bool(f.patient_id),
        bool(f.level),
        bool(f.state),
        bool(f.due_from),
        bool(f.due_to),
        bool(f.member),
        f.overdue_only,
    )
    params = {
        "uid": principal.user_id,
        "type": f.type,
        "patient_id": f.patient_id,
        "level": f.level,
        "state": f.state,
        "due_from": f.due_from,
        "due_to": f.due_to,
        "member": f.member,
        "today": f.today or date.today(),
    }
    return statement, params


async def list_tasks(
    session: AsyncSession,
    *,
    principal: Principal,
    filters: TaskFilters,
    limit: int = 100,
    offset: int = 0,
) -> list[Task]:
    """The dashboard: tasks the principal may see, filtered; overdue first, then by due date."""
    query, params = dashboard_query(principal, filters)
    f = filters
    rows = list(
        (
            await session.exec(
                query.limit(limit if not f.subtype else 1000).offset(offset), params=params
            )
        ).all()
    )
    if f.subtype:  # JSON list: filtered here, portable across SQLite and PostgreSQL
        rows = [t for t in rows if f.subtype in t.subtypes][:limit]
    return rows
