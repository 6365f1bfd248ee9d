"""Extraction reports produced in the background: files, status, the requester's task and the
bot's outbox event; a report left pending by a killed process is produced at the next start."""

from __future__ import annotations

import asyncio
import io
import stat
from datetime import date, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from dossier_service.db import Database
from dossier_service.extraction import reports
from dossier_service.extraction.figures import Period
from dossier_service.models.activity import FAILED, PENDING, READY, ExtractionReport
from dossier_service.models.audit import OutboxEvent
from dossier_service.models.circle import CircleMember
from dossier_service.models.tasks import Task, TaskAssignee
from tests.dossier_service.extraction.conftest import PERIOD, SSIAD, at

REFERENT = "@referente:cercle.test"


async def ask(db: Database, scope: reports.Scope, period: Period = PERIOD) -> str:
    async with db.transaction() as session:
        return (await reports.request(session, requester=REFERENT, scope=scope, period=period)).id


async def test_a_report_is_produced_filed_and_announced(db: Database, tmp_path: Path) -> None:
    async with db.transaction() as session:  # the requester is in P-A's circle only
        session.add(
            CircleMember(
                patient_id="P-A",
                kind="professionnel",
                display_name="R",
                role="coordinateur",
                added_by="@c:t",
                matrix_user_id=REFERENT,
                added_at=at(0),
            )
        )
    report_id = await ask(db, reports.Scope(reports.STRUCTURE, "la structure SSIAD", SSIAD))
    worker = reports.ReportWorker(db, tmp_path, clock=lambda: at(100))
    assert await worker.produce_next() is True
    assert await worker.produce_next() is False

    async with db.sessions() as session:
        report = await session.get(ExtractionReport, report_id)
        assert report is not None and report.status == READY
        assert report.title.startswith(
            "Document d'extraction brute des données pour la structure SSIAD réalisée le"
        )
        task = (await session.exec(select(Task).where(Task.label == report.title))).one()[0]
        assignee = (
            await session.exec(select(TaskAssignee).where(TaskAssignee.task_id == task.id))
        ).one()[0]
        assert assignee.ref == REFERENT and task.state == "à faire"
        event = (
            await session.exec(
                select(OutboxEvent).where(OutboxEvent.type == reports.EXTRACTION_READY)
            )
        ).one()[0]
        assert event.payload["user_id"] == REFERENT and event.payload["report_id"] == report_id

    xlsx, archive = reports.files_of(tmp_path, report_id)
    assert stat.S_IMODE(xlsx.stat().st_mode) == 0o600 and archive.exists()
    assert not list(xlsx.parent.glob(".upload-*"))
    book = load_workbook(io.BytesIO(xlsx.read_bytes()))
    names = [row[0] for row in book["Patients"].iter_rows(min_row=2, values_only=True)]
    assert names == ["label P-A"]  # the requester's own patient, by its label


async def test_a_report_left_pending_by_a_killed_process_is_produced_next(
    db: Database, tmp_path: Path
) -> None:
    first = await ask(db, reports.Scope(reports.PLATFORM, "toute la plateforme"))
    second = await ask(
        db,
        reports.Scope(reports.PLATFORM, "toute la plateforme"),
        Period(date(2026, 1, 1), date(2026, 12, 31)),
    )
    busy = await ask(db, reports.Scope(reports.PLATFORM, "toute la plateforme"))
    async with db.transaction() as session:  # a killed process's claim, and a live one's
        (await session.get(ExtractionReport, first)).claimed_at = at(100) - timedelta(minutes=20)  # type: ignore[union-attr]
        (await session.get(ExtractionReport, busy)).claimed_at = at(100) - timedelta(minutes=1)  # type: ignore[union-attr]
    worker = reports.ReportWorker(db, tmp_path, clock=lambda: at(100))
    worker.poll_seconds = 0.1  # what a restarted process finds at its first poll
    task = asyncio.create_task(worker.run())
    try:
        deadline = asyncio.get_running_loop().time() + 180  # two render processes, loaded CI
        while asyncio.get_running_loop().time() < deadline:
            async with db.sessions() as session:
                statuses = [
                    (await session.get(ExtractionReport, rid)).status  # type: ignore[union-attr]
                    for rid in (first, second, busy)
                ]
            if statuses[:2] == [READY, READY]:
                break
            await asyncio.sleep(0.2)
        assert statuses == [READY, READY, PENDING]  # the live claim is left to its process
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    book = load_workbook(io.BytesIO(reports.files_of(tmp_path, first)[0].read_bytes()))
    cells = {str(c) for row in book["Patients"].iter_rows(values_only=True) for c in row}
    assert not any(c.startswith("label ") for c in cells)  # no circle: nobody named


async def test_a_failure_is_recorded_in_french_and_the_worker_goes_on(
    db: Database,
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("not a directory")
    report_id = await ask(db, reports.Scope(reports.PLATFORM, "toute la plateforme"))
    worker = reports.ReportWorker(db, blocked, clock=lambda: at(100))
    assert await worker.produce_next() is True
    async with db.sessions() as session:
        report = await session.get(ExtractionReport, report_id)
        assert report is not None and report.status == FAILED
        assert report.reason == "L'extraction n'a pas pu être produite."
    assert await worker.produce_next() is False


async def test_a_period_over_three_years_is_refused(db: Database) -> None:
    with pytest.raises(reports.ReportRefused, match="trois ans"):
        await ask(
            db, reports.Scope(reports.PLATFORM, "x"), Period(date(2020, 1, 1), date(2026, 1, 1))
        )


@pytest.mark.skipif(not hasattr(__import__("os"), "SCHED_IDLE"), reason="Linux only")
def test_the_render_process_runs_only_on_idle_cpu_time() -> None:
    """The extraction's child leaves the CPU to the service's users: idle class, not nice."""
    import subprocess
    import sys

    probe = (
        "import os; from dossier_service.extraction.render import yield_to_others; "
        "before = os.sched_getscheduler(0); yield_to_others(); "
        "print(before == os.SCHED_OTHER, os.sched_getscheduler(0) == os.SCHED_IDLE)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


async def test_a_claim_is_renewed_while_producing_and_a_stale_one_is_retaken_in_minutes(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed midway leaves its claim: taken again after ``LEASE`` (minutes, not a
    quarter of an hour); the process producing a long report keeps renewing its own."""
    left = await ask(db, reports.Scope(reports.PLATFORM, "toute la plateforme"))
    async with db.transaction() as session:
        (await session.get(ExtractionReport, left)).claimed_at = at(100) - timedelta(minutes=3)  # type: ignore[union-attr]
    ticks = iter(at(100) + timedelta(seconds=s) for s in range(10_000))
    worker = reports.ReportWorker(db, tmp_path, clock=lambda: next(ticks))
    monkeypatch.setattr(reports, "RENEW_SECONDS", 0.05)
    claims: list[object] = []

    async def slow_produce(report_id: str) -> None:  # a long render: the claim must move on
        for _ in range(4):
            await asyncio.sleep(0.1)
            async with db.sessions() as session:
                claims.append((await session.get(ExtractionReport, report_id)).claimed_at)  # type: ignore[union-attr]

    monkeypatch.setattr(worker, "_produce", slow_produce)
    assert await worker.produce_next() is True  # the 3-minute-old claim was stale
    assert len(set(claims)) >= 3, claims  # renewed during the production
