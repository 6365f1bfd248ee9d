"""Read models for the API's hot paths: rows straight from SQL as JSON-ready dicts.

Same shapes as ``model_dump(mode="json")`` of the SQLModel rows (column names as keys,
ISO dates, UTC timestamps ending in ``Z``) without building ORM objects, which costs ten
times more than the query for a file with hundreds of rows.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import JSON, Date, DateTime, String, bindparam, func, select, type_coerce
from sqlalchemy.sql.elements import TypeCoerce
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.db import connection_of
from dossier_service.models.circle import CircleMember
from dossier_service.models.documents import Document
from dossier_service.models.followup import Hospitalisation, Memo
from dossier_service.models.forms import FormAnswer
from dossier_service.models.lifeline import Episode
from dossier_service.models.notebook import NotebookEntry
from dossier_service.models.patient import DeathDeclaration, FileStatusChange, IdentityStatusChange
from dossier_service.models.tasks import OPEN_STATES, Task, TaskAssignee
from dossier_service.models.types import UTCDateTime, table_of
from dossier_service.policy import Membership, Principal, may_see_document
from dossier_service.services import one_trip
from dossier_service.services.tasks import TaskFilters, dashboard_query


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    return value


def jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _value(v) for k, v in row.items()}


table = table_of


def _db_datetime(value: Any) -> str:
    """A UTC timestamp as the API writes it (``…Z``), from what the driver returned: on
    SQLite the stored text ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (UTC), elsewhere a datetime."""
    if isinstance(value, str):
        if len(value) in (19, 26) and value[10] == " ":
            text = value.replace(" ", "T", 1)
            return (text[:-7] if text.endswith(".000000") else text) + "Z"
        parsed = datetime.fromisoformat(value)
        value = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return str(_value(value.astimezone(UTC)))


def _db_date(value: Any) -> str:
    if isinstance(value, str):
        return value if len(value) == 10 else date.fromisoformat(value[:10]).isoformat()
    return str(value.isoformat())


def _db_json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def _converter(kind: Any) -> Callable[[Any], Any] | None:
    if isinstance(kind, UTCDateTime):
        return _db_datetime
    if isinstance(kind, Date):
        return _db_date
    if isinstance(kind, JSON):
        return _db_json
    return None


@lru_cache(maxsize=256)
def plain(selectable: Any) -> tuple[Any, ...]:
    """The columns of a table or subquery to select for JSON output: timestamps, dates and JSON columns come back
    as the driver returns them (no parsing into Python objects only to format them back),
    converted by ``rows`` straight to their JSON form."""
    return tuple(
        type_coerce(c, String).label(c.key) if _converter(c.type) is not None else c
        for c in selectable.c
    )


@lru_cache(maxsize=64)
def _plan(statement: Any) -> list[tuple[int, Callable[[Any], Any]]]:
    """Which selected columns need converting, and how (memoised for prebuilt statements)."""
    plan: list[tuple[int, Callable[[Any], Any]]] = []
    for i, column in enumerate(statement.selected_columns):
        element = getattr(column, "element", None)
        if isinstance(element, TypeCoerce):
            convert = _converter(element.clause.type)
            if convert is not None:
                plan.append((i, convert))
        elif isinstance(getattr(column.type, "impl", column.type), (DateTime, Date)):
            plan.append((i, _value))
    return plan


async def rows(
    session: AsyncSession, statement: Any, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The statement's rows as JSON-ready dicts (see ``plain``)."""
    plan = _plan(statement)
    # Core execution on the session's connection (same transaction, no ORM machinery)
    result = await (await connection_of(session)).execute(statement, params)
    keys = list(result.keys())
    out = []
    for row in result.all():
        values = list(row)
        for i, convert in plan:
            value = values[i]
            if value is not None:
                values[i] = convert(value)
        out.append(dict(zip(keys, values, strict=True)))
    return out


def _stay_state(stay: Mapping[str, Any], now: datetime) -> str:
    admission = datetime.fromisoformat(stay["admission_at"].replace("Z", "+00:00"))
    discharge = stay["discharge_at"]
    if admission > now:
        return "prévue"
    if discharge is None or datetime.fromisoformat(discharge.replace("Z", "+00:00")) > now:
        return "en cours"
    return "passée"


def _overdue(task: Mapping[str, Any], iso_today: str) -> bool:
    due = task["due_date"]
    return task["state"] in OPEN_STATES and due is not None and due < iso_today


def _with_task_extras(tasks: Iterable[dict[str, Any]], today: date) -> list[dict[str, Any]]:
    iso_today = today.isoformat()
    out = []
    for task in tasks:
        task["overdue"] = _overdue(task, iso_today)
        out.append(task)
    return out


class FileCache:
    """Per-process cache of files' sections, keyed by the file's *revision*.

    Every change to a file writes a liaison entry in the same transaction (the notebook's
    own rule), so a new entry means new content. The revision counts the commits that changed
    the file: this process's own on SQLite, and the others' notices too on PostgreSQL
    (``file_revisions``); while those cannot be heard, (number, newest timestamp) of the
    entries read from the database. Either is taken *before* the sections, so that what is
    stored under a revision is never older than it. Derived values (hospitalisation state,
    overdue tasks) and per-caller filtering (confidential documents) are computed on every
    read.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, Hashable, str], dict[str, Any]] = OrderedDict()

    def get(self, key: tuple[str, Hashable, str]) -> dict[str, Any] | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: tuple[str, Hashable, str], value: dict[str, Any]) -> None:
        for old in [k for k in self._entries if k[0] == key[0]]:
            del self._entries[old]
        self._entries[key] = value
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


_NOTEBOOK = table_of(NotebookEntry)
_REVISION = select(func.count(), func.max(_NOTEBOOK.c.created_at)).where(
    _NOTEBOOK.c.patient_id == bindparam("pid")
)


async def revision(session: AsyncSession, patient_id: str) -> tuple[int, str]:
    result = await (await connection_of(session)).execute(_REVISION, {"pid": patient_id})
    count, newest = result.one()
    return int(count), str(_value(newest))


def _with_assignees(found: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of tasks LEFT JOIN their assignees, folded into one dict per task (in order)."""
    by_id: dict[str, dict[str, Any]] = {}
    for row in found:
        kind, ref = row.pop("assignee_kind"), row.pop("assignee_ref")
        task = by_id.get(row["id"])
        if task is None:
            row["assignees"] = []
            task = by_id[row["id"]] = row
        if kind is not None:
            task["assignees"].append({"kind": kind, "ref": ref})
    return list(by_id.values())


_FORM_KEYS = ("form_id", "version", "created_at", "created_by", "initiated_at")


@lru_cache(maxsize=1)
def _section_statements() -> dict[str, Any]:
    """The file's sections as statements built once (``:pid``, ``:notebook_limit``)."""
    pid: Any = bindparam("pid")
    t_status, t_ident, t_death = (
        table(FileStatusChange),
        table(IdentityStatusChange),
        table(DeathDeclaration),
    )
    t_memo, t_stay, t_member = table(Memo), table(Hospitalisation), table(CircleMember)
    t_ep, t_doc, t_note, t_form, t_task, t_who = (
        table(Episode),
        table(Document),
        table(NotebookEntry),
        table(FormAnswer),
        table(Task),
        table(TaskAssignee),
    )

    def of_file(t: Any, *order: Any) -> Any:
        """``t``'s rows of the file, in ``order``."""
        return select(*plain(t)).where(t.c.patient_id == pid).order_by(*order)

    return {
        "death": select(*plain(t_death)).where(
            t_death.c.patient_id == pid, t_death.c.cancelled_at.is_(None)
        ),
        "forms": select(*(c for c in plain(t_form) if c.key in _FORM_KEYS))
        .where(t_form.c.patient_id == pid)
        .order_by(t_form.c.version),
        "tasks": select(
            *plain(t_task),
            t_who.c.kind.label("assignee_kind"),
            t_who.c.ref.label("assignee_ref"),
        )
        .select_from(t_task.outerjoin(t_who, t_who.c.task_id == t_task.c.id))
        .where(t_task.c.patient_id == pid)
        .order_by(
            t_task.c.due_date.is_(None),
            t_task.c.due_date,
            t_task.c.created_at,
            t_task.c.id,
            t_who.c.kind,
            t_who.c.ref,
        ),
        "status_history": of_file(t_status, t_status.c.changed_at.desc()),
        "identity_status_history": of_file(t_ident, t_ident.c.changed_at.desc()),
        "memos": of_file(t_memo, t_memo.c.created_at.desc()),
        "hospitalisations": of_file(t_stay, t_stay.c.admission_at.desc()),
        "circle": select(*plain(t_member))
        .where(t_member.c.patient_id == pid, t_member.c.ended_at.is_(None))
        .order_by(t_member.c.added_at, t_member.c.id),
        "lifeline": of_file(t_ep, t_ep.c.starts_on),
        "documents": of_file(t_doc, t_doc.c.uploaded_at.desc()),
        "notebook": of_file(t_note, t_note.c.created_at.desc(), t_note.c.id).limit(
            bindparam("notebook_limit")
        ),
    }


async def _load_sections(session: AsyncSession, pid: str, notebook_limit: int) -> dict[str, Any]:
    params = {"pid": pid, "notebook_limit": notebook_limit}
    found: dict[str, Any] = {}
    if session.get_bind().dialect.name == "postgresql":  # one round trip, not twelve
        found = await one_trip.rows_by_name(
            session, _section_statements(), params, plan=_plan, json_decoded=_db_json
        )
    else:  # in the process: twelve calls cost less than building JSON
        for name, statement in _section_statements().items():
            found[name] = await rows(session, statement, params)
    death, forms, tasks = found.pop("death"), found.pop("forms"), found.pop("tasks")
    return {
        "death": death[0] if death else None,
        **found,
        "forms": {f["form_id"]: {k: f[k] for k in _FORM_KEYS[1:]} for f in forms},
        "tasks": _with_assignees(tasks),
    }


async def file_sections(
    session: AsyncSession,
    *,
    patient_id: str,
    principal: Principal,
    membership: Membership | None,
    now: datetime,
    today: date,
    notebook_limit: int = 50,
    cache: FileCache | None = None,
    kept_revision: Hashable | None = None,
) -> dict[str, Any]:
    """Every section of a file but the identity, as the caller may see them. The cache's
    key is the file's revision: the one this process keeps (``Database.file_revision``,
    taken before the sections are read), else read from the database."""
    if cache is None:
        sections = await _load_sections(session, patient_id, notebook_limit)
    else:
        if kept_revision is not None:
            key = (patient_id, kept_revision, f"process|{notebook_limit}")
        else:
            count, newest = await revision(session, patient_id)
            key = (patient_id, count, f"{newest}|{notebook_limit}")
        cached = cache.get(key)
        if cached is None:
            cached = await _load_sections(session, patient_id, notebook_limit)
            cache.put(key, cached)
        sections = cached
    iso_today = today.isoformat()
    return {
        **sections,
        "hospitalisations": [
            {**s, "state": _stay_state(s, now)} for s in sections["hospitalisations"]
        ],
        "documents": [
            d
            for d in sections["documents"]
            if may_see_document(principal, membership, d["restricted_to_roles"])
        ],
        "tasks": [{**t, "overdue": _overdue(t, iso_today)} for t in sections["tasks"]],
    }


@lru_cache(maxsize=1024)
def _dashboard_rows(shape: Any) -> Any:
    """A dashboard statement with its page (``:limit``, ``:offset``) and each task's
    assignees joined: one statement per request, built once per filter shape."""
    t, a = table(Task), table(TaskAssignee)
    page_of_tasks = (
        shape.with_only_columns(*t.c)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .subquery("page")
    )
    return (
        select(
            *plain(page_of_tasks),
            a.c.kind.label("assignee_kind"),
            a.c.ref.label("assignee_ref"),
        )
        .select_from(page_of_tasks.outerjoin(a, a.c.task_id == page_of_tasks.c.id))
        .order_by(
            page_of_tasks.c.due_date.is_(None),
            page_of_tasks.c.due_date,
            page_of_tasks.c.created_at,
            page_of_tasks.c.id,
            a.c.kind,
            a.c.ref,
        )
    )


class DashboardCache:
    """Per-process cache of task dashboards, keyed by the database's change epoch
    (``Database.change_epoch``: every committed change to any file, or to a task without
    one, moves it — on PostgreSQL the other processes' too, through their notices). A
    dashboard depends on tasks and on care circles (who sees what), both changed only through
    writes that move it; the key holds the caller, the filters, the page and the day (what
    is overdue). One key for all files: at a region's write rate it misses more often, never
    serves a dashboard older than the last change heard."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], list[dict[str, Any]]] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> list[dict[str, Any]] | None:
        value = self._entries.get(key)
        if value is None:
            return None
        self._entries.move_to_end(key)
        return [dict(task) for task in value]  # callers may add to their copy

    def put(self, key: tuple[Any, ...], value: list[dict[str, Any]]) -> None:
        self._entries[key] = [dict(task) for task in value]
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


async def dashboard(
    session: AsyncSession,
    *,
    principal: Principal,
    filters: TaskFilters,
    limit: int,
    offset: int,
    today: date,
    cache: DashboardCache | None = None,
    epoch: Hashable | None = None,
) -> list[dict[str, Any]]:
    """The task dashboard as JSON rows (same filters and order as ``tasks.list_tasks``);
    kept in ``cache`` under ``epoch`` (``Database.change_epoch``) when there is one."""
    key: tuple[Any, ...] | None = None
    if cache is not None and epoch is not None:
        key = (epoch, principal, filters, limit, offset, today)
        cached = cache.get(key)
        if cached is not None:
            return cached
    shape, params = dashboard_query(principal, filters)
    params["limit"] = limit if not filters.subtype else 1000
    params["offset"] = offset
    found = _with_assignees(await rows(session, _dashboard_rows(shape), params))
    if filters.subtype:
        found = [t for t in found if filters.subtype in t["subtypes"]][:limit]
    found = _with_task_extras(found, today)
    if cache is not None and key is not None:
        cache.put(key, found)
    return found
