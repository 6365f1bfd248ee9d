"""Activity extraction benchmark (issue 18).

A platform with 10,000 patients and 1,000,000 notebook entries (plus a year of activity:
messages per room and day, flags and their acknowledgements, tasks, circle changes, exports,
hospitalisations) in the dossier's own database; the real service in its own process. The
extraction of a whole year for the platform is produced by the service's own worker while
32 clients read patients' files as a care-circle member; the same load runs before it, in the
same run, for the comparison.

    python bench/extraction.py [--patients 10000] [--notebook 1000000] [--seconds 8]
                               [--clients 16] [--database-url URL]

Goals: the year's extraction ≤ 30 s and ≤ 300 MB (the service's growth plus the render
process); the others' p99 during it within ±20 % of the p99 before it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench.common.dossier import (  # noqa: E402
    MEMBER,
    SESSION_KEY,
    bench_config,
    line,
    load,
    wait_healthy,
)
from bench.common.measures import free_port  # noqa: E402

YEAR = (date(2025, 1, 1), date(2025, 12, 31))


def serve(database_url: str, root: Path, port: int) -> None:
    """The real app in this (child) process; its report worker looks for work every 0.2 s."""
    from aiohttp import web

    from dossier_service import appkeys, memory
    from dossier_service.app import create_app

    app = create_app(bench_config(database_url, root), with_pages=False)
    app[appkeys.REPORTS].poll_seconds = 0.2
    memory.settle_after_startup()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def seed(url: str, patients: int, notebook: int) -> list[str]:
    """Rows written straight with Core inserts (the benchmark is the extraction, not the
    writes); returns the ids of the files the member reads."""
    from sqlalchemy import insert

    from dossier_service.db import build_database
    from dossier_service.migrate import upgrade
    from dossier_service.models import (
        ActivityEvent,
        CircleMember,
        FileStatusChange,
        Hospitalisation,
        NotebookEntry,
        Patient,
        Task,
    )
    from dossier_service.models.types import new_id, table_of

    await upgrade(url)
    db = build_database(url)
    rng = random.Random(18)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    ids = [f"P-{i:06d}" for i in range(patients)]
    created = {pid: start + timedelta(days=rng.uniform(0, 700)) for pid in ids}

    async def put(model: Any, rows: list[dict[str, Any]]) -> None:
        for i in range(0, len(rows), 20_000):
            async with db.transaction() as session:
                connection = await session.connection()
                await connection.execute(insert(table_of(model)), rows[i : i + 20_000])

    await put(Patient, [{"id": p, "label": f"Bench {p}", "created_by": "@c:b", "created_at":
                         created[p], "updated_at": created[p], "registered_on":
                         created[p].date(), "file_status": "actif", "birth_first_names": [],
                         "phones": [], "birth_country": "France", "identity_status": "PROV"}
                        for p in ids])  # fmt: skip
    await put(FileStatusChange, [
        {"id": new_id(), "patient_id": p, "status": "clos", "previous_status": "actif",
         "comment": "", "changed_by": "@c:b", "changed_at": created[p] + timedelta(days=200)}
        for p in ids if rng.random() < 0.15
    ])  # fmt: skip
    circle = []
    for p in ids:
        for k in range(4):
            kind = "structure" if k == 3 else "professionnel"
            circle.append({
                "id": new_id(), "patient_id": p, "kind": kind, "display_name": f"m{k}",
                "matrix_user_id": MEMBER if k == 0 else f"@u{rng.randrange(2000)}:b",
                "directory_id": f"31{rng.randrange(1000):07d}" if kind == "structure" else None,
                "profession": "", "specialty": "", "role": "intervenant", "has_access": True,
                "description": "", "added_by": "@c:b",
                "added_at": created[p] + timedelta(days=rng.uniform(0, 60)),
            })  # fmt: skip
    await put(CircleMember, circle)
    await put(NotebookEntry, [
        {"id": new_id(), "patient_id": ids[i % patients], "kind": "note",
         "text": f"Transmission {i} : RAS.", "author": "@c:b", "source": "web",
         "created_at": start + timedelta(minutes=i)}
        for i in range(notebook)
    ])  # fmt: skip
    events = []
    for p in ids:
        for d in rng.sample(range(365), 30):  # 30 days with messages in the year
            day = YEAR[0] + timedelta(days=d)
            events.append({"id": new_id(), "patient_id": p, "kind": "messages",
                           "ref": f"!{p}|{day}", "of_ref": None, "flag_kind": "",
                           "at": datetime.combine(day, datetime.min.time(), UTC),
                           "day": day.isoformat(), "count": rng.randint(1, 40)})  # fmt: skip
        for f in range(3):
            raised = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(525_000))
            ref = f"$flag-{p}-{f}"
            events.append({"id": new_id(), "patient_id": p, "kind": "signalement", "ref": ref,
                           "of_ref": None, "flag_kind": rng.choice(["urgent", "demande"]),
                           "at": raised, "day": raised.date().isoformat(), "count": 1})  # fmt: skip
            if rng.random() < 0.9:
                acked = raised + timedelta(minutes=rng.expovariate(1 / 20))
                events.append({"id": new_id(), "patient_id": p, "kind": "prise_en_compte",
                               "ref": f"$ack-{p}-{f}", "of_ref": ref, "flag_kind": "",
                               "at": acked, "day": acked.date().isoformat(), "count": 1})  # fmt: skip
        if rng.random() < 0.3:
            at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(525_000))
            events.append({"id": new_id(), "patient_id": p, "kind": "export", "ref": f"$e-{p}",
                           "of_ref": None, "flag_kind": "", "at": at,
                           "day": at.date().isoformat(), "count": 1})  # fmt: skip
    await put(ActivityEvent, events)
    tasks = []
    for p in ids:
        for _ in range(5):
            made = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(525_000))
            done = made + timedelta(days=rng.uniform(0, 20)) if rng.random() < 0.7 else None
            tasks.append({"id": new_id(), "patient_id": p, "type": "Soins", "subtypes": [],
                          "level": "normale", "label": "t", "due_date": (made + timedelta(
                              days=7)).date(), "state": "fait" if done else "à faire",
                          "comment": "", "form_id": None, "document_ids": [],
                          "created_by": "@c:b", "created_at": made, "updated_at": made,
                          "closed_at": done})  # fmt: skip
    await put(Task, tasks)
    await put(Hospitalisation, [
        {"id": new_id(), "patient_id": p, "structure": "CHU", "service": "",
         "admission_at": datetime(2025, 3, 1, tzinfo=UTC) + timedelta(days=rng.randrange(250)),
         "discharge_at": None, "comment": "", "created_by": "@c:b",
         "created_at": datetime(2025, 3, 1, tzinfo=UTC)}
        for p in ids if rng.random() < 0.2
    ])  # fmt: skip
    await db.dispose()
    print(f"seeded: {patients:,} patients, {notebook:,} notebook entries, {len(events):,} "
          f"activity events, {len(tasks):,} tasks, {len(circle):,} circle members")  # fmt: skip
    return ids[:200]


async def ask_year(url: str) -> str:
    from dossier_service.db import build_database
    from dossier_service.extraction import reports
    from dossier_service.extraction.figures import Period

    db = build_database(url)
    async with db.transaction() as session:
        report = await reports.request(
            session, requester="@admin:bench.local",
            scope=reports.Scope(reports.PLATFORM, "toute la plateforme"), period=Period(*YEAR),
        )  # fmt: skip
        report_id = report.id
    await db.dispose()
    return report_id


async def report_state(url: str, report_id: str) -> tuple[str, Any, Any]:
    from dossier_service.db import build_database
    from dossier_service.models import ExtractionReport

    db = build_database(url)
    async with db.sessions() as session:
        report = await session.get(ExtractionReport, report_id)
        assert report is not None
        state = (report.status, report.claimed_at, report.done_at)
    await db.dispose()
    return state


def tree_rss(pid: int) -> int:
    import psutil

    try:
        process = psutil.Process(pid)
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            total += child.memory_info().rss
        return int(total)
    except psutil.NoSuchProcess:
        return 0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--notebook", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    from dossier_service import auth

    with tempfile.TemporaryDirectory(prefix="cercle-bench-extraction-") as tmp:
        root = Path(tmp)
        url = args.database_url or f"sqlite+aiosqlite:///{root / 'dossier.db'}"
        t0 = time.perf_counter()
        pids = await seed(url, args.patients, args.notebook)
        print(f"seeding took {time.perf_counter() - t0:.0f} s")
        port = free_port()
        code = (
            f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'bench')!r}]; "
            f"import extraction; extraction.serve({url!r}, "
            f"__import__('pathlib').Path({str(root)!r}), {port})"
        )
        service = subprocess.Popen([sys.executable, "-c", code])
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_healthy(base)
            member = {"Authorization": "Bearer "
                      + auth.issue_session(SESSION_KEY, MEMBER, lifetime=3600)}  # fmt: skip
            path = f"/api/v1/patients/{pids[0]}"
            await load(base, path, clients=args.clients, seconds=2, headers=member)
            before = await load(base, path, clients=args.clients, seconds=args.seconds,
                                headers=member, server_pid=service.pid)  # fmt: skip
            rss_before = tree_rss(service.pid)
            report_id = await ask_year(url)
            peak = rss_before
            started = time.perf_counter()

            async def watch() -> float:
                nonlocal peak
                while True:
                    peak = max(peak, tree_rss(service.pid))
                    status, claimed, done = await report_state(url, report_id)
                    if status != "en cours":
                        assert status == "prête", status
                        return float((done - claimed).total_seconds())
                    if time.perf_counter() - started > 600:
                        raise SystemExit("extraction: pas finie en 10 min")
                    await asyncio.sleep(0.2)

            done = asyncio.Event()

            async def extraction() -> float:
                try:
                    return await watch()
                finally:
                    done.set()

            watcher = asyncio.ensure_future(extraction())
            during = await load(base, path, clients=args.clients, seconds=600,
                                headers=member, warmup=0.0, stop=done)  # fmt: skip
            extraction_s = await watcher
            size = sum(f.stat().st_size for f in (root / "documents" / "extractions").iterdir())
        finally:
            service.terminate()
            service.wait(timeout=30)
    grown_mb = (peak - rss_before) / 2**20
    ratio = during["p99_ms"] / before["p99_ms"] if before["p99_ms"] else 0.0
    print(f"extraction of a year, whole platform: {extraction_s:.1f} s "
          f"(goal ≤ 30 s) {'OK' if extraction_s <= 30 else 'NOT MET'}")  # fmt: skip
    print(f"memory during it: +{grown_mb:.0f} MB over the service's {rss_before / 2**20:.0f} MB "
          f"(goal ≤ 300 MB) {'OK' if grown_mb <= 300 else 'NOT MET'}; documents {size / 1e6:.1f} MB")  # fmt: skip
    print(line("file reads before", before))
    print(line("file reads during", during))
    print(f"p99 during / before: {ratio:.2f} (goal 0.80–1.20) "
          f"{'OK' if 0.8 <= ratio <= 1.2 else 'NOT MET'}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
