"""Rows as JSON-ready dicts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from sqlmodel import SQLModel

from dossier_service.models.followup import Hospitalisation
from dossier_service.models.tasks import Task, TaskAssignee


def json_response(body: Any, *, status: int = 200) -> web.Response:
    """``web.json_response`` encoded by orjson (UTF-8, same JSON values; several times
    faster than the standard encoder on a whole file)."""
    return web.Response(
        body=orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
        charset="utf-8",
    )


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
