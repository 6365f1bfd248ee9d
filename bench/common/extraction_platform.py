"""The platform of the extraction benchmark (issue 18): built once, kept on disk.

``platform(args)`` yields the URL of a database of its own for one run, copied from a cached
platform keyed by its parameters (SQLite: a file under the cache directory; PostgreSQL: a
template database next to the given URL's), building the cache first when it is missing.

The rows are those the product writes (patients, their care circles with a FINESS structure
each, their notebooks, a year of activity events — messages per room and day, flags and
their acknowledgements, exports —, file closures, tasks, hospitalisations, the structures and
a referent), inserted with Core in batches through the product's own engine and migrations.
``Expected`` holds the figures the extraction must find in it (the known scenario).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common.postgres import Server

ROOT = Path(__file__).resolve().parents[2]
SEED_VERSION = 3  # change it when the rows change: the cache is rebuilt
YEAR = (date(2025, 1, 1), date(2025, 12, 31))
MEMBER = "@member:bench.local"  # in the care circle of the files read during the load
REFERENT = "@referent:bench.local"  # referent of STRUCTURES[0]
ADMIN = "@admin:bench.local"
STRUCTURES = [f"31{i:07d}" for i in range(100)]
READ_FILES = 200  # the member's files
BATCH = 20_000


@dataclass
class Expected:
    """Summary figures of the year, whole platform and STRUCTURES[0] (the known scenario)."""

    platform: dict[str, int]
    structure: dict[str, int]
    read_files: list[str]


def cache_key(patients: int, notebook: int) -> str:
    migrations = sorted(p.name for p in (ROOT / "dossier_service/migrations/versions").glob("*.py"))
    text = json.dumps([SEED_VERSION, patients, notebook, migrations])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextlib.asynccontextmanager
async def platform(
    base_url: str | None, cache_dir: Path, run_dir: Path, patients: int, notebook: int
) -> AsyncIterator[tuple[str, Expected]]:
    key = cache_key(patients, notebook)
    cache_dir.mkdir(parents=True, exist_ok=True)
    facts = cache_dir / f"extraction-{key}.json"
    if base_url is None or not base_url.startswith("postgresql"):
        cached = cache_dir / f"extraction-{key}.db"
        if not cached.exists() or not facts.exists():
            building = cache_dir / f"extraction-{key}.building.db"
            building.unlink(missing_ok=True)
            expected = await _build(f"sqlite+aiosqlite:///{building}", patients, notebook)
            building.rename(cached)
            facts.write_text(json.dumps(asdict(expected)))
        else:
            print(f"platform from the cache: {cached} ({cached.stat().st_size / 1e6:.0f} MB)")
        copy = run_dir / "dossier.db"
        t0 = time.perf_counter()
        shutil.copyfile(cached, copy)
        print(f"copied for this run in {time.perf_counter() - t0:.1f} s")
        yield f"sqlite+aiosqlite:///{copy}", Expected(**json.loads(facts.read_text()))
        return
    template = f"cercle_bench_extraction_{key}"
    server = Server(base_url)
    if not server.exists(template) or not facts.exists():
        server.execute(f'DROP DATABASE IF EXISTS "{template}_building"')
        server.execute(f'CREATE DATABASE "{template}_building"')
        expected = await _build(server.url(f"{template}_building"), patients, notebook)
        server.execute(f'DROP DATABASE IF EXISTS "{template}"')
        server.execute(f'ALTER DATABASE "{template}_building" RENAME TO "{template}"')
        facts.write_text(json.dumps(asdict(expected)))
    else:
        print(f"platform from the cache: database {template}")
    run = f"cercle_bench_extraction_run_{key}"
    server.drop([run])
    server.execute(f'CREATE DATABASE "{run}" TEMPLATE "{template}"')
    try:
        yield server.url(run), Expected(**json.loads(facts.read_text()))
    finally:
        server.drop([run])


async def _build(url: str, patients: int, notebook: int) -> Expected:
    """Writes the platform; returns what the extraction of YEAR must find in it."""
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
        TaskAssignee,
    )
    from dossier_service.models.circle import StructureMember
    from dossier_service.models.directory import Structure
    from dossier_service.models.types import new_id, table_of

    t0 = time.perf_counter()
    await upgrade(url)
    db = build_database(url)
    rng = random.Random(18)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    year_start = datetime(2025, 1, 1, tzinfo=UTC)  # 01:00 in Paris: inside the Paris year
    year_end = datetime(2024, 12, 31, 23, tzinfo=UTC) + timedelta(days=366)  # Paris midnight
    ids = [f"P-{i:06d}" for i in range(patients)]
    created = {pid: start + timedelta(days=rng.uniform(0, 700)) for pid in ids}
    counted = {"rows": 0}

    async def put(model: Any, rows: Any) -> None:
        """``rows``: any iterable of dicts, inserted BATCH at a time (bounded memory)."""
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == BATCH:
                await flush(model, batch)
                batch = []
        if batch:
            await flush(model, batch)

    async def flush(model: Any, batch: list[dict[str, Any]]) -> None:
        async with db.transaction() as session:
            connection = await session.connection()
            await connection.execute(insert(table_of(model)), batch)
        counted["rows"] += len(batch)

    await put(
        Structure,
        (
            {
                "finess": f,
                "legal_finess": f,
                "name": f"Structure {i}",
                "long_name": f"Structure {i}",
                "address": "",
                "postcode": "31000",
                "city": "Toulouse",
                "commune_code": "31555",
                "dept": "31",
                "phone": "",
                "category_code": "",
                "category": "",
                "aggregate": "",
                "siret": "",
                "x": None,
                "y": None,
                "sort_key": f"structure {i}",
                "content_hash": bytes(8),
                "seen_run": 1,
                "updated_at": "2024-01-01",
            }
            for i, f in enumerate(STRUCTURES)
        ),
    )
    await put(
        StructureMember,
        [
            {
                "id": new_id(),
                "finess": STRUCTURES[0],
                "matrix_user_id": REFERENT,
                "display_name": "Référente",
                "role": "referent",
                "source": "admin",
                "without_rpps": False,
                "added_by": ADMIN,
                "added_at": start,
            }
        ],
    )
    await put(
        Patient,
        (
            {
                "id": p,
                "label": f"Bench {p}",
                "created_by": "@c:b",
                "created_at": created[p],
                "updated_at": created[p],
                "registered_on": created[p].date(),
                "file_status": "actif",
                "birth_first_names": [],
                "phones": [],
                "birth_country": "France",
                "identity_status": "PROV",
            }
            for p in ids
        ),
    )
    await put(
        FileStatusChange,
        [
            {
                "id": new_id(),
                "patient_id": p,
                "status": "clos",
                "previous_status": "actif",
                "comment": "",
                "changed_by": "@c:b",
                "changed_at": created[p] + timedelta(days=200),
            }
            for p in ids
            if rng.random() < 0.15
        ],
    )
    in_structure: set[str] = set()  # patients whose circle holds STRUCTURES[0] in the year
    circle = []
    for n, p in enumerate(ids):
        for k in range(4):
            kind = "structure" if k == 3 else "professionnel"
            added = created[p] + timedelta(days=rng.uniform(0, 60))
            finess = rng.choice(STRUCTURES) if kind == "structure" else None
            if finess == STRUCTURES[0] and added < year_end:
                in_structure.add(p)
            circle.append(
                {
                    "id": new_id(),
                    "patient_id": p,
                    "kind": kind,
                    "display_name": f"m{k}",
                    "matrix_user_id": (
                        MEMBER
                        if k == 0 and n < READ_FILES
                        else (f"@u{rng.randrange(2000)}:b" if kind != "structure" else None)
                    ),
                    "directory_id": finess,
                    "profession": "",
                    "specialty": "",
                    "role": "intervenant",
                    "has_access": True,
                    "description": "",
                    "added_by": "@c:b",
                    "added_at": added,
                }
            )
    await put(CircleMember, circle)
    del circle

    def notes() -> Iterator[dict[str, Any]]:
        step = timedelta(days=700) / max(1, notebook)
        for i in range(notebook):
            yield {
                "id": new_id(),
                "patient_id": ids[i % patients],
                "kind": "note",
                "text": f"Transmission {i} : RAS, patient vu à domicile.",
                "author": "@c:b",
                "source": "web",
                "created_at": start + step * i,
            }

    await put(NotebookEntry, notes())
    platform: dict[str, int] = dict.fromkeys(
        (
            "Messages échangés",
            "Signalements",
            "dont urgences",
            "Tâches créées",
            "Exports",
            "Hospitalisations",
        ),
        0,
    )
    structure = dict(platform)

    def count(p: str, label: str, n: int = 1) -> None:
        platform[label] += n
        if p in in_structure:
            structure[label] += n

    events: list[dict[str, Any]] = []  # rows, as `put` takes them
    for p in ids:
        for d in rng.sample(range(365), 30):  # 30 days with messages in the year
            day = YEAR[0] + timedelta(days=d)
            n = rng.randint(1, 40)
            count(p, "Messages échangés", n)
            events.append(
                {
                    "id": new_id(),
                    "patient_id": p,
                    "kind": "messages",
                    "ref": f"!{p}|{day}",
                    "of_ref": None,
                    "flag_kind": "",
                    "at": datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12),
                    "day": day.isoformat(),
                    "count": n,
                }
            )
        for f in range(3):
            raised = year_start + timedelta(minutes=rng.randrange(525_000))
            ref = f"$flag-{p}-{f}"
            kind = rng.choice(["urgent", "demande"])
            count(p, "Signalements")
            count(p, "dont urgences", kind == "urgent")
            events.append(
                {
                    "id": new_id(),
                    "patient_id": p,
                    "kind": "signalement",
                    "ref": ref,
                    "of_ref": None,
                    "flag_kind": kind,
                    "at": raised,
                    "day": raised.date().isoformat(),
                    "count": 1,
                }
            )
            if rng.random() < 0.9:
                acked = raised + timedelta(minutes=rng.expovariate(1 / 20))
                events.append(
                    {
                        "id": new_id(),
                        "patient_id": p,
                        "kind": "prise_en_compte",
                        "ref": f"$ack-{p}-{f}",
                        "of_ref": ref,
                        "flag_kind": "",
                        "at": acked,
                        "day": acked.date().isoformat(),
                        "count": 1,
                    }
                )
        if rng.random() < 0.3:
            at = year_start + timedelta(minutes=rng.randrange(525_000))
            count(p, "Exports")
            events.append(
                {
                    "id": new_id(),
                    "patient_id": p,
                    "kind": "export",
                    "ref": f"$e-{p}",
                    "of_ref": None,
                    "flag_kind": "",
                    "at": at,
                    "day": at.date().isoformat(),
                    "count": 1,
                }
            )
    events.sort(key=lambda e: e["at"])  # written as they happened
    await put(ActivityEvent, events)
    n_events = len(events)
    del events
    tasks, assignees = [], []
    for n, p in enumerate(ids):
        for _ in range(5):
            made = year_start + timedelta(minutes=rng.randrange(525_000))
            done = made + timedelta(days=rng.uniform(0, 20)) if rng.random() < 0.7 else None
            count(p, "Tâches créées")
            task = new_id()
            tasks.append(
                {
                    "id": task,
                    "patient_id": p,
                    "type": "Soins",
                    "subtypes": [],
                    "level": "normale",
                    "label": "Passage infirmier",
                    "due_date": (made + timedelta(days=7)).date(),
                    "state": "fait" if done else "à faire",
                    "comment": "",
                    "form_id": None,
                    "document_ids": [],
                    "created_by": "@c:b",
                    "created_at": made,
                    "updated_at": made,
                    "closed_at": done,
                }
            )
            if n < READ_FILES:
                assignees.append({"task_id": task, "kind": "personne", "ref": MEMBER})
    await put(Task, tasks)
    await put(TaskAssignee, assignees)
    stays = []
    for p in ids:
        if rng.random() < 0.2:
            count(p, "Hospitalisations")
            stays.append(
                {
                    "id": new_id(),
                    "patient_id": p,
                    "structure": "CHU",
                    "service": "",
                    "admission_at": (
                        datetime(2025, 3, 1, tzinfo=UTC) + timedelta(days=rng.randrange(250))
                    ),
                    "discharge_at": None,
                    "comment": "",
                    "created_by": "@c:b",
                    "created_at": datetime(2025, 3, 1, tzinfo=UTC),
                }
            )
    await put(Hospitalisation, stays)
    await db.dispose()
    print(
        f"platform built in {time.perf_counter() - t0:.0f} s: {patients:,} patients, "
        f"{notebook:,} notebook entries, {n_events:,} activity events, {len(tasks):,} "
        f"tasks, {counted['rows']:,} rows in all"
    )
    return Expected(platform, structure, ids[:READ_FILES])
