"""Load benchmark of the dossier service (issue 5).

A file with 1,000 liaison entries, 100 documents and 50 tasks; 32 concurrent clients read
the patient's JSON file and the task dashboard, and write notes (each with its audit row).
In the same run, a minimal aiohttp handler reading the same rows with one SQL query gives
the limit. The service runs in its own process (one process, as deployed); clients here.

    python bench/dossier_load.py [--seconds 5] [--clients 32] [--database-url URL]
                                 [--designs service,public,inline-line] [--rounds 3]
                                 [--processes 2]

``--processes N`` (PostgreSQL only) runs N processes of the service on one database, as the
region profile does, each also serving the limit handlers; clients are spread over them and
the server CPU is the sum of theirs (issue 15: reads ≥ 100 % of the limit, p99 ≤ 1.2× its).

Goals: reads ≥ 50 % of the limit, p99 < 50 ms; ≥ 400 writes/s with their audit rows.

``--designs`` measures several ways of building the database layer in one run (the service's
own and alternatives on public APIs only, ``bench/alternatives/dossier_designs.py``): one
service per design, each on a freshly seeded database of its own, all running; each measure
is taken on every design in turn, seconds apart (A, B then B, A: the machine's other work
falls on both alike), round after round; the summary gives each design's median.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common.dossier import (
    MEMBER,
    SESSION_KEY,
    bench_config,
    line,
    load,
    seed_file,
    wait_healthy,
)
from bench.common.measures import free_port
from bench.common.postgres import Server

FILE_SECTIONS = (  # (table, extra condition, order, limit): what the file's JSON holds
    ("patients", "id = :pid", "", None),
    ("death_declarations", "patient_id = :pid AND cancelled_at IS NULL", "", None),
    ("file_status_changes", "patient_id = :pid", "changed_at DESC", None),
    ("identity_status_changes", "patient_id = :pid", "changed_at DESC", None),
    ("memos", "patient_id = :pid", "created_at DESC", None),
    ("hospitalisations", "patient_id = :pid", "admission_at DESC", None),
    ("circle_members", "patient_id = :pid AND ended_at IS NULL", "added_at", None),
    ("lifeline_episodes", "patient_id = :pid", "starts_on", None),
    ("documents", "patient_id = :pid", "uploaded_at DESC", None),
    ("notebook_entries", "patient_id = :pid", "created_at DESC", 50),
    ("form_answers", "patient_id = :pid", "version", None),
    ("tasks", "patient_id = :pid", "due_date", None),
    ("task_assignees", "task_id IN (SELECT id FROM tasks WHERE patient_id = :pid)", "", None),
)


def limit_sql(dialect: str) -> tuple[str, str]:
    """One SQL query returning every row of the file (all columns, as JSON text), and one
    for the dashboard (every task column and its assignees): the "limit" handlers."""
    import dossier_service.models as models

    def as_json(table: str) -> str:
        cols = [c.name for c in models.metadata.tables[table].columns]
        pairs = ", ".join(f"'{c}', {c}" for c in cols)
        return (
            f"json_build_object({pairs})::text"
            if dialect == "postgresql"
            else f"json_object({pairs})"
        )

    parts = []
    for table, where, order, limit in FILE_SECTIONS:
        inner = f"SELECT * FROM {table} WHERE {where}"
        if order:
            inner += f" ORDER BY {order}"
        if limit:
            inner += f" LIMIT {limit}"
        parts.append(
            f"SELECT '{table}' AS section, {as_json(table)} AS row FROM ({inner}) AS s_{table}"
        )
    task_cols = ", ".join(f"t.{c.name}" for c in models.metadata.tables["tasks"].columns)
    tasks_sql = (
        f"SELECT {task_cols}, a.kind, a.ref FROM tasks t LEFT JOIN task_assignees a ON a.task_id = t.id "
        "ORDER BY t.due_date IS NULL, t.due_date, t.created_at LIMIT 100"
    )
    return " UNION ALL ".join(parts), tasks_sql


# ----------------------------------------------------------------------------- server side
def serve(database_url: str, root: Path, port: int, *, design: str, caches: bool = True) -> None:
    """Run the real app plus the minimal "limit" handlers, in this (child) process, its
    database layer built the ``design`` way. Without ``caches`` every file read loads its
    sections, and every dashboard its tasks, from the database."""
    from aiohttp import web
    from sqlalchemy import text

    from bench.alternatives.dossier_designs import build
    from dossier_service import appkeys, memory
    from dossier_service.app import create_app

    app = create_app(bench_config(database_url, root), with_pages=False)
    unused = app[appkeys.DATABASE]  # never connected: only its checkpoint thread runs
    if unused.checkpointer is not None:
        unused.checkpointer.stop()
    app[appkeys.DATABASE] = build(database_url, design)
    if not caches:
        del app[appkeys.FILE_CACHE]
        del app[appkeys.DASHBOARD_CACHE]
    file_sql, tasks_sql = limit_sql(
        "postgresql" if database_url.startswith("postgresql") else "sqlite"
    )
    file_query, tasks_query = text(file_sql), text(tasks_sql)

    # through the service's own transactions: their line, their pool, no ORM
    async def limit_file(request: web.Request) -> web.Response:
        async with app[appkeys.DATABASE].transaction() as session:
            conn = await session.connection()
            rows = (await conn.execute(file_query, {"pid": request.match_info["pid"]})).all()
        return web.Response(
            text="[" + ",".join(row[1] for row in rows) + "]", content_type="application/json"
        )

    async def limit_tasks(request: web.Request) -> web.Response:
        async with app[appkeys.DATABASE].transaction() as session:
            conn = await session.connection()
            rows = (await conn.execute(tasks_query)).all()
        return web.json_response(
            [[v if isinstance(v, (str, int, type(None))) else str(v) for v in row] for row in rows]
        )

    app.router.add_get("/limit/file/{pid}", limit_file)
    app.router.add_get("/limit/tasks", limit_tasks)
    memory.settle_after_startup()  # as `python -m dossier_service` does
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# ----------------------------------------------------------------------------- seeding
async def seed(database_url: str, root: Path) -> str:
    from dossier_service.db import build_database
    from dossier_service.documents_store import DocumentStore
    from dossier_service.migrate import upgrade

    await upgrade(database_url)
    db = build_database(database_url)
    store = DocumentStore(root / "documents", 1024 * 1024)
    pid = await seed_file(db, store, bench_config(database_url, root), date.today())
    await db.dispose()
    return pid


async def count(database_url: str, table: str) -> int:
    from sqlalchemy import text

    from dossier_service.db import build_database

    db = build_database(database_url)
    async with db.sessions() as session:
        n = int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
    await db.dispose()
    return n


@contextlib.contextmanager
def fresh_database(base_url: str | None, root: Path, run: int) -> Iterator[str]:
    """A database of its own for one run: a file under ``root``, or a PostgreSQL database
    ``<name>_<run>`` created next to ``base_url``'s and dropped afterwards."""
    if base_url is None or not base_url.startswith("postgresql"):
        yield base_url or f"sqlite+aiosqlite:///{root / 'dossier.db'}"
        return
    server = Server(base_url)
    name = f"{server.base.database}_{run}"
    server.execute(f'DROP DATABASE IF EXISTS "{name}"')
    server.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.url(name)
    finally:
        server.drop([name])


@dataclass
class Service:
    """One design's service, on a database of its own: ``--processes`` of it, clients spread
    over them (several only on PostgreSQL, as the region profile deploys them)."""

    design: str
    url: str
    pid: str  # the seeded patient
    bases: list[str]
    processes: list[subprocess.Popen[bytes]]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]


async def start_services(args: argparse.Namespace, stack: contextlib.ExitStack) -> list[Service]:
    services = []
    for index, design in enumerate(args.designs):
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dossier-bench-")))
        url = stack.enter_context(fresh_database(args.database_url, root, index))
        pid = await seed(url, root)
        bases, processes = [], []
        for _ in range(args.processes):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, __file__, "--serve", url, str(root), str(port), design]
                + (["--no-cache"] if args.no_cache else []),
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            )
            stack.callback(_stop, process)
            bases.append(f"http://127.0.0.1:{port}")
            processes.append(process)
        services.append(Service(design, url, pid, bases, processes))
    for service in services:
        for base in service.bases:
            await wait_healthy(base)
    return services


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=10)


async def measure_round(
    args: argparse.Namespace, services: list[Service]
) -> dict[str, dict[str, dict[str, float]]]:
    """Each measure taken on every design in turn (A, B, A, B…), seconds apart."""
    from dossier_service import auth

    member = {"Authorization": f"Bearer {auth.issue_session(SESSION_KEY, MEMBER, lifetime=3600)}"}
    results: dict[str, dict[str, dict[str, float]]] = {s.design: {} for s in services}
    reads: tuple[tuple[str, Callable[[Service], str]], ...] = (
        ("file", lambda s: f"/api/v1/patients/{s.pid}"),
        ("file_limit", lambda s: f"/limit/file/{s.pid}"),
        ("dashboard", lambda s: "/api/v1/tasks"),
        ("dashboard_limit", lambda s: "/limit/tasks"),
    )
    for name, path in reads:
        for s in services:
            results[s.design][name] = await load(
                s.bases,
                path(s),
                clients=args.clients,
                seconds=args.seconds,
                headers=member,
                server_pid=s.pids,
            )
    for s in services:
        audit_before = await count(s.url, "audit_log")
        notes_before = await count(s.url, "notebook_entries")
        writes = await load(
            s.bases,
            f"/api/v1/patients/{s.pid}/notebook",
            method="POST",
            body=lambda n, i: {"kind": "note", "text": f"Note {n}-{i}"},
            clients=args.clients,
            seconds=args.seconds,
            headers=member,
            server_pid=s.pids,
        )
        writes["audit_added"] = await count(s.url, "audit_log") - audit_before
        writes["notes_added"] = await count(s.url, "notebook_entries") - notes_before
        results[s.design]["writes"] = writes
    return results


def report(design: str, round_: int, r: dict[str, dict[str, float]]) -> None:
    file_, limit_file, writes = r["file"], r["file_limit"], r["writes"]
    board, limit_board = r["dashboard"], r["dashboard_limit"]
    print(f"--- conception « {design} », tour {round_ + 1}")
    print(line("lecture du dossier JSON", file_))
    print(line("  limite (1 requête SQL)", limit_file))
    print(line("tableau de bord des tâches", board))
    print(line("  limite (1 requête SQL)", limit_board))
    print(line("écriture de notes (+ audit)", writes))
    print(
        f"ratio dossier / limite : {file_['rps'] / limit_file['rps']:.0%} (débit), "
        f"p99 {file_['p99_ms'] / limit_file['p99_ms']:.2f}×, "
        f"{file_['per_cpu_second'] / limit_file['per_cpu_second']:.0%} (par seconde CPU)   "
        f"ratio tableau de bord / limite : {board['rps'] / limit_board['rps']:.0%} (débit), "
        f"p99 {board['p99_ms'] / limit_board['p99_ms']:.2f}×, "
        f"{board['per_cpu_second'] / limit_board['per_cpu_second']:.0%} (par seconde CPU)"
    )
    reads = ((file_, limit_file), (board, limit_board))
    print(
        "objectifs : lectures ≥ 50 % de la limite "
        f"{verdict(all(x['rps'] >= 0.5 * lim['rps'] for x, lim in reads))}; "
        f"p99 des lectures < 50 ms {verdict(all(x['p99_ms'] < 50 for x, _ in reads))}; "
        f"≥ 400 écritures/s avec audit {verdict(writes['rps'] >= 400)}"
    )
    one_each = writes["audit_added"] == writes["notes_added"] == writes["succeeded_with_warmup"]
    print(
        f"notes écrites : {writes['notes_added']:.0f}, lignes d'audit écrites : "
        f"{writes['audit_added']:.0f} ({'une par note' if one_each else 'ÉCART'})",
        flush=True,
    )


def verdict(ok: bool) -> str:
    return "atteint" if ok else "NON atteint"


def summary(design: str, runs: list[dict[str, dict[str, float]]]) -> str:
    """The design's median over its rounds, per measure: req/s and p99."""

    def median(measure: str, figure: str) -> float:
        return statistics.median(run[measure][figure] for run in runs)

    parts = [
        f"{measure} {median(measure, 'rps'):.0f} req/s p99 {median(measure, 'p99_ms'):.1f} ms "
        f"({median(measure, 'per_cpu_second'):.0f}/s-CPU)"
        for measure in ("file", "dashboard", "writes")
    ]
    return f"{design:<12} " + " | ".join(parts)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="sans les caches du dossier et du tableau de bord (chaque lecture relit la base)",
    )
    parser.add_argument(
        "--designs",
        type=lambda value: value.split(","),
        default=["service"],
        help="conceptions de la couche base à comparer (bench/alternatives/dossier_designs.py), séparées "
        "par des virgules",
    )
    parser.add_argument("--rounds", type=int, default=1, help="tours (A, B, A, B…)")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="processus du service (et de la limite), clients répartis ; > 1 : PostgreSQL",
    )
    args = parser.parse_args()
    postgres = (args.database_url or "").startswith("postgresql")
    if args.processes < 1 or (args.processes > 1 and not postgres):
        parser.error(
            "--processes > 1 demande PostgreSQL (--database-url postgresql+asyncpg://…) : "
            "un fichier SQLite n'a qu'un processus pour écrire"
        )
    print(
        f"dossier: 1000 entrées, 100 documents, 50 tâches; {args.clients} clients; "
        f"{'PostgreSQL' if postgres else 'SQLite'}; {args.processes} processus; "
        f"{args.seconds:.0f} s par mesure"
        f"{'; sans cache (dossier ni tableau de bord)' if args.no_cache else ''}; "
        f"conceptions {', '.join(args.designs)} × {args.rounds} tour(s)",
        flush=True,
    )
    results: dict[str, list[dict[str, dict[str, float]]]] = {d: [] for d in args.designs}
    loads = []
    with contextlib.ExitStack() as stack:
        services = await start_services(args, stack)
        for round_ in range(args.rounds):
            # A, B then B, A: neither design always measured first
            measured = await measure_round(args, services[:: 1 if round_ % 2 == 0 else -1])
            loads.append(os.getloadavg()[0])
            for design, r in sorted(measured.items(), key=lambda i: args.designs.index(i[0])):
                report(design, round_, r)
                results[design].append(r)
            print(f"charge de la machine (1 min) : {loads[-1]:.1f} sur {os.cpu_count()} cœurs")
    print(
        f"médianes sur {args.rounds} tour(s); charge (1 min) de {min(loads):.1f} à "
        f"{max(loads):.1f} sur {os.cpu_count()} cœurs"
    )
    for design, runs in results.items():
        print(summary(design, runs))
    print(json.dumps(results))


if __name__ == "__main__":
    if len(sys.argv) in (6, 7) and sys.argv[1] == "--serve":
        serve(
            sys.argv[2],
            Path(sys.argv[3]),
            int(sys.argv[4]),
            design=sys.argv[5],
            caches=sys.argv[6:] != ["--no-cache"],
        )
    else:
        asyncio.run(main())
