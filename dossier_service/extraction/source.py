"""The facts of an extraction, read from the dossier's database (SQLite or PostgreSQL).

Every query is bounded by the period and by a chunk of the scope's patients, each in a
transaction of its own (other users' requests are served between two chunks, even on SQLite's
single connection), and the big series are aggregated in SQL (messages per patient and
month): nothing here reads the notebook at all.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.sql import Select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.extraction.figures import (
    CircleChange,
    ExportFact,
    Facts,
    FileFact,
    FlagFact,
    HospitalisationFact,
    Period,
    RoomMessages,
    TaskFact,
)
from dossier_service.extraction.pace import Pace
from dossier_service.models.activity import ActivityEvent
from dossier_service.models.circle import CircleMember
from dossier_service.models.followup import Hospitalisation
from dossier_service.models.patient import FileStatusChange, Patient
from dossier_service.models.tasks import Task
from dossier_service.models.types import table_of

_CHUNK = 500  # patient ids per IN (...) list


def bounds(period: Period) -> tuple[datetime, datetime]:
    """The period as UTC instants: [first Paris midnight, the midnight after the last day)."""
    return period.instants


async def patients_of_structure(
    session: AsyncSession, structure_id: str, period: Period
) -> list[str]:
    """Patients whose care circle held the structure at some moment of the period."""
    start, end = bounds(period)
    c = table_of(CircleMember).c
    rows = await session.execute(
        select(c.patient_id)
        .where(
            c.kind == "structure",
            c.directory_id == structure_id,
            c.added_at < end,
            or_(c.ended_at.is_(None), c.ended_at >= start),
        )
        .distinct()
    )
    return sorted(r[0] for r in rows)


Sessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def read_facts(
    sessions: Sessions,
    period: Period,
    patients: Collection[str] | None,
    *,
    pace: Pace | None = None,
) -> tuple[Facts, dict[str, str]]:
    """Facts of the period for ``patients`` (``None``: every file), and each file's label;
    each read given way to the dossier's users by ``pace`` (the render process's)."""
    start, end = bounds(period)
    p, s = table_of(Patient).c, table_of(FileStatusChange).c
    labels: dict[str, str] = {}
    opened: dict[str, datetime] = {}
    scoped = patients is not None
    if patients is None:  # the platform: every file opened before the end, in chunks too
        async with sessions() as session:
            patients = [r[0] for r in await session.execute(select(p.id).where(p.created_at < end))]

    async def read(query: Select[Any]) -> Sequence[Any]:
        async with sessions() as session:
            return (await session.execute(query)).all()

    async def rows_of(query: Select[Any]) -> Sequence[Any]:
        if pace is not None:
            return await pace.read(lambda: read(query))
        result = await read(query)
        await asyncio.sleep(0)  # let the requests waiting for the connection pass
        return result

    for chunk in _chunks(patients):
        rows = await rows_of(
            _scoped(select(p.id, p.label, p.created_at).where(p.created_at < end), p.id, chunk)
        )
        for pid, label, created in rows:
            labels[pid] = label
            opened[pid] = _utc(created)
    changes: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for chunk in _chunks(patients):
        rows = await rows_of(
            _scoped(
                select(s.patient_id, s.status, s.changed_at)
                .where(s.changed_at < end)
                .order_by(s.patient_id, s.changed_at),
                s.patient_id,
                chunk,
            )
        )
        for pid, status, at in rows:
            changes[pid].append((status, _utc(at)))
    files = [FileFact(pid, labels[pid], opened[pid], tuple(changes.get(pid, ()))) for pid in opened]

    c = table_of(CircleMember).c
    circle: list[CircleChange] = []
    for chunk in _chunks(patients):
        rows = await rows_of(
            _scoped(
                select(c.patient_id, c.kind, c.added_at, c.ended_at).where(
                    or_(
                        and_(c.added_at >= start, c.added_at < end),
                        and_(c.ended_at >= start, c.ended_at < end),
                    )
                ),
                c.patient_id,
                chunk,
            )
        )
        for pid, kind, added, ended in rows:
            if start <= _utc(added) < end:
                circle.append(CircleChange(pid, _utc(added), "ajout", kind))
            if ended is not None and start <= _utc(ended) < end:
                circle.append(CircleChange(pid, _utc(ended), "retrait", kind))

    a = table_of(ActivityEvent).c
    month = func.substr(a.day, 1, 7)
    messages: list[RoomMessages] = []
    flags: list[FlagFact] = []
    exports: list[ExportFact] = []
    # a month of the period at a time, and for a structure a chunk of its files: every query
    # is one range of the (kind, day) index; the platform's need no list of files at all
    groups: list[Sequence[str] | None] = [*_chunks(patients)] if scoped else [None]
    for group in groups:
        for first, last, window in _months(period):
            w_start, w_end = window.instants

            def of(query: Select[Any], files: Sequence[str] | None = group) -> Select[Any]:
                return query if files is None else query.where(a.patient_id.in_(files))

            rows = await rows_of(
                of(
                    select(a.patient_id, month, func.min(a.day), func.sum(a.count))
                    .where(a.kind == "messages", a.day >= first, a.day <= last)
                    .group_by(a.patient_id, month)
                )
            )
            messages.extend(
                RoomMessages(pid, date.fromisoformat(day), int(total))
                for pid, _, day, total in rows
                if pid in opened
            )
            rows = await rows_of(
                of(
                    select(a.patient_id, a.flag_kind, a.at, a.ref).where(
                        a.kind == "signalement", a.at >= w_start, a.at < w_end
                    )
                )
            )
            # their first acknowledgements in a query of their own, by the flags' refs: a
            # join with the aggregate of every acknowledgement was planned by PostgreSQL, on
            # stale statistics, as that aggregate again for each flag (minutes for 500 files)
            refs = [ref for *_, ref in rows]
            first_acks: dict[str, datetime] = {}
            for i in range(0, len(refs), _CHUNK):
                for ref, acked in await rows_of(
                    select(a.of_ref, func.min(a.at))
                    .where(a.kind == "prise_en_compte", a.of_ref.in_(refs[i : i + _CHUNK]))
                    .group_by(a.of_ref)
                ):
                    first_acks[ref] = _utc(acked)
            flags.extend(
                FlagFact(pid, kind, _utc(at), first_acks.get(ref))
                for pid, kind, at, ref in rows
                if pid in opened
            )
            rows = await rows_of(
                of(
                    select(a.patient_id, a.at).where(
                        a.kind == "export", a.at >= w_start, a.at < w_end
                    )
                )
            )
            exports.extend(ExportFact(pid, _utc(at)) for pid, at in rows if pid in opened)

    t = table_of(Task).c
    tasks: list[TaskFact] = []
    task_query = select(t.patient_id, t.created_at, t.closed_at, t.due_date).where(
        t.created_at < end, or_(t.closed_at.is_(None), t.closed_at >= start)
    )
    queries = [task_query.where(t.patient_id.in_(c)) for c in _chunks(patients)]
    if not scoped:  # the platform's tasks tied to no file
        queries.append(task_query.where(t.patient_id.is_(None)))
    for query in queries:
        rows = await rows_of(query)
        tasks.extend(
            TaskFact(pid, _utc(created), _utc(closed) if closed else None, _date(due))
            for pid, created, closed, due in rows
        )

    h = table_of(Hospitalisation).c
    stays: list[HospitalisationFact] = []
    for chunk in _chunks(patients):
        rows = await rows_of(
            _scoped(
                select(h.patient_id, h.admission_at, h.discharge_at).where(
                    h.admission_at >= start, h.admission_at < end
                ),
                h.patient_id,
                chunk,
            )
        )
        stays.extend(
            HospitalisationFact(pid, _utc(adm), _utc(dis) if dis else None)
            for pid, adm, dis in rows
        )
    facts = Facts(files, circle, messages, flags, tasks, exports, stays)
    return facts, labels


def _months(period: Period) -> list[tuple[str, str, Period]]:
    """(first day, last day, as a period) of each month of ``period``, cut to it."""
    out = []
    for label in period.months():
        year, number = int(label[:4]), int(label[5:7])
        after = date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
        window = Period(
            max(date(year, number, 1), period.start), min(after - timedelta(days=1), period.end)
        )
        out.append((window.start.isoformat(), window.end.isoformat(), window))
    return out


def _chunks(patients: Collection[str]) -> list[Sequence[str]]:
    ordered = sorted(patients)
    return [ordered[i : i + _CHUNK] for i in range(0, len(ordered), _CHUNK)]


def _scoped(query: Select[Any], column: Any, chunk: Sequence[str]) -> Select[Any]:
    return query.where(column.in_(chunk))


def _utc(value: Any) -> datetime:
    """What the driver returned for a UTC timestamp (SQLite: naive text or datetime)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
