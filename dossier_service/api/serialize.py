"""Rows as JSON-ready dicts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import SQLModel

from dossier_service.models.followup import Hospitalisation
from dossier_service.models.tasks import Task, TaskAssignee


def dump(row: SQLModel) -> dict[str, Any]:
    return row.model_dump(mode="json")


def dump_all(rows: Iterable[SQLModel]) -> list[dict[str, Any]]:
    return [row.model_dump(mode="json") for row in rows]


def dump_stay(stay: Hospitalisation, now: datetime) -> dict[str, Any]:
    return {**dump(stay), "state": stay.state(now)}


def dump_task(task: Task, assignees: Iterable[TaskAssignee], today: Any) -> dict[str, Any]:
    return {
        **dump(task),
        "assignees": [{"kind": a.kind, "ref": a.ref} for a in assignees],
        "overdue": task.is_overdue(today),
    }
