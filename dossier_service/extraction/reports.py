"""Extraction reports: asked for, produced in the background, announced, downloaded.

``request`` records the demand (status « en cours ») in the request's transaction, with its
audit row. ``ReportWorker`` (one per dossier process) takes pending reports in order — also
those left pending by a process that was killed — and hands each to a child process at a
lower priority (``render``), which reads the facts itself (read-only, in short transactions),
computes the figures and writes the XLSX and the CSV archive under
``<documents>/extractions/`` (written to a temporary name, then renamed: never half a file):
the service's event loop never waits on that work, nor holds its rows. Then, in one
transaction, the worker marks the report « prête », puts a task on the requester's dashboard
and an ``extraction.ready`` outbox event for the bot's direct-chat notice. A failure marks it
« échec » with a French reason, never the exception's text.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from deployment.conventions import wait_set
from dossier_service.db import Database
from dossier_service.extraction.figures import Period
from dossier_service.extraction.render import Job
from dossier_service.file_revisions import mark_changed
from dossier_service.models.activity import FAILED, PENDING, READY, ExtractionReport
from dossier_service.models.circle import CircleMember
from dossier_service.models.tasks import Task, TaskAssignee
from dossier_service.models.types import table_of, utcnow
from dossier_service.services import journal

log = logging.getLogger(__name__)

EXTRACTION_READY = "extraction.ready"
PLATFORM = "plateforme"
STRUCTURE = "structure"
MAX_DAYS = 3 * 366  # a longer period is refused: ask for several
LEASE = timedelta(minutes=2)  # a claim not renewed for this long was left by a killed process
RENEW_SECONDS = 30.0  # how often the process producing a report renews its claim


class ReportRefused(ValueError):
    """A demand that cannot be taken (French, for the requester)."""


@dataclass(frozen=True)
class Scope:
    kind: str
    label: str
    structure_id: str | None = None


async def request(
    session: AsyncSession, *, requester: str, scope: Scope, period: Period
) -> ExtractionReport:
    if (period.end - period.start).days > MAX_DAYS:
        raise ReportRefused("Période trop longue : trois ans au plus par extraction.")
    report = ExtractionReport(
        requested_by=requester,
        scope_kind=scope.kind,
        structure_id=scope.structure_id,
        scope_label=scope.label,
        period_start=period.start,
        period_end=period.end,
    )
    session.add(report)
    await session.flush()
    return report


def files_of(documents_dir: Path, report_id: str) -> tuple[Path, Path]:
    folder = documents_dir / "extractions"
    return folder / f"{report_id}.xlsx", folder / f"{report_id}.zip"


class ReportWorker:
    """Produces pending reports, one at a time, in this process."""

    def __init__(
        self, db: Database, documents_dir: Path, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.documents_dir = documents_dir
        self.clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self.poll_seconds = 30.0  # pending reports of other processes are seen this late

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Until :meth:`stop`: wait for a wake-up (a demand made here) or the poll (demands
        made on another process, or left by a killed one), then produce what is pending."""
        while not self._stopping:
            await wait_set(self._wake, self.poll_seconds)
            self._wake.clear()
            try:
                while not self._stopping and await self.produce_next():
                    pass
            except Exception as exc:  # the database is away: try again at the next poll
                log.warning("extractions en attente : base indisponible (%s)", type(exc).__name__)

    def stop(self) -> None:
        """Ask :meth:`run` to end after the report in production (never cut in a query: a
        cancelled database call can leave its pooled connection unusable)."""
        self._stopping = True
        self._wake.set()

    async def produce_next(self) -> bool:
        """Claim and produce the oldest pending report; False when there is none.

        The claim is an atomic UPDATE, so with several dossier processes on PostgreSQL each
        report is produced once; a claim older than ``LEASE`` (its process was killed) is
        taken again."""
        r = table_of(ExtractionReport).c
        while True:
            now = self.clock()
            claimable = and_(
                r.status == PENDING, or_(r.claimed_at.is_(None), r.claimed_at < now - LEASE)
            )
            async with self.db.sessions() as session:
                row = (
                    await session.execute(
                        select(r.id).where(claimable).order_by(r.requested_at).limit(1)
                    )
                ).first()
            if row is None:
                return False
            async with self.db.transaction() as session:
                claimed = await session.execute(
                    update(table_of(ExtractionReport))
                    .where(r.id == row[0], claimable)
                    .values(claimed_at=now)
                )
            if claimed.rowcount == 1:  # type: ignore[attr-defined]
                break  # else another process took it first: look again
        report_id = row[0]
        done = asyncio.Event()
        renewing = asyncio.create_task(self._renew_claim(report_id, done))
        try:
            await self._produce(report_id)
        except Exception:
            log.exception("extraction %s en échec", report_id)
            async with self.db.transaction() as session:
                await session.execute(
                    update(table_of(ExtractionReport))
                    .where(r.id == report_id)
                    .values(
                        status=FAILED,
                        reason="L'extraction n'a pas pu être produite.",
                        done_at=self.clock(),
                    )
                )
        finally:
            done.set()
            await renewing  # ends between two renewals: never cut inside a database call
        return True

    async def _renew_claim(self, report_id: str, done: asyncio.Event) -> None:
        """While this process produces the report, its claim stays fresh: a process killed
        midway stops renewing, and after ``LEASE`` (not a quarter of an hour) the report is
        taken again — by the same process once restarted, or by another."""
        r = table_of(ExtractionReport).c
        while not done.is_set():
            if await wait_set(done, RENEW_SECONDS):
                return
            try:
                async with self.db.transaction() as session:
                    await session.execute(
                        update(table_of(ExtractionReport))
                        .where(r.id == report_id, r.status == PENDING)
                        .values(claimed_at=self.clock())
                    )
            except Exception as exc:  # the database away: tried again at the next renewal
                log.warning("extraction : réservation non renouvelée (%s)", type(exc).__name__)

    async def _produce(self, report_id: str) -> None:
        async with self.db.sessions() as session:
            report = await session.get(ExtractionReport, report_id)
            assert report is not None
            structure_id = None
            if report.scope_kind == STRUCTURE and report.structure_id:
                structure_id = report.structure_id
            visible = await _circle_files(session, report.requested_by)
        made_at = self.clock()
        xlsx_path, zip_path = files_of(self.documents_dir, report_id)
        url = self.db.engine.url.render_as_string(hide_password=False)
        job = Job(
            url,
            Period(report.period_start, report.period_end),
            structure_id,
            report.scope_label,
            visible,
            made_at,
        )
        title = await _render(pickle.dumps(job), xlsx_path, zip_path)
        xlsx, csv_zip = xlsx_path.read_bytes(), zip_path.read_bytes()
        async with self.db.transaction() as session:
            report = await session.get(ExtractionReport, report_id)
            assert report is not None
            report.status = READY
            report.title = title[:400]
            report.xlsx_sha256 = hashlib.sha256(xlsx).hexdigest()
            report.csv_sha256 = hashlib.sha256(csv_zip).hexdigest()
            report.done_at = self.clock()
            task = Task(
                type="Administratif",
                subtypes=["Extraction"],
                label=title[:500],
                comment=f"Télécharger le document : /extractions/{report_id}",
                created_by=report.requested_by,
            )
            session.add(task)
            await session.flush()
            session.add(TaskAssignee(task_id=task.id, kind="personne", ref=report.requested_by))
            mark_changed(session, None)
            await journal.emit(
                session,
                type=EXTRACTION_READY,
                patient_id=None,
                room_id=None,
                actor=report.requested_by,
                payload={
                    "report_id": report_id,
                    "user_id": report.requested_by,
                    "title": report.title,
                    "task_id": task.id,
                },
            )


async def _circle_files(session: AsyncSession, user_id: str) -> set[str]:
    """The files whose care circle holds the requester now (their patients may be named)."""
    c = table_of(CircleMember).c
    rows = await session.execute(
        select(c.patient_id).where(c.matrix_user_id == user_id, c.ended_at.is_(None)).distinct()
    )
    return {r[0] for r in rows}


async def _render(job: bytes, xlsx_path: Path, zip_path: Path) -> str:
    """Run ``dossier_service.extraction.render`` on ``job``; its title, or RuntimeError."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dossier_service.extraction.render",
        str(xlsx_path),
        str(zip_path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, _ = await child.communicate(job)  # stderr never logged: it may name patients
    finally:
        if child.returncode is None:  # cancelled: the helper does not outlive the demand
            child.kill()
            await child.wait()
    if child.returncode != 0:
        log.error("rendu d'extraction en échec (code %s)", child.returncode)
        raise RuntimeError("extraction render failed")
    return out.decode()
