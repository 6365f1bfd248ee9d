"""Activity extraction benchmark (issue 18).

A platform with 10,000 patients and 1,000,000 notebook entries, plus a year of activity
(messages per room and day, flags and their acknowledgements, tasks, circle changes, exports,
hospitalisations, file closures; ``common/extraction_platform.py``, cached on disk by its parameters:
a re-run copies it instead of building it). The real service runs in its own process, its
pages included. Extractions of the year are asked through the HTTP API, as an admin (whole
platform) and as a structure's referent (his structure), and produced by the service's own
worker (facts read in the service, the workbook written by its render child).

1. Alone: each extraction once, with nothing else running — wall time (asked → ready), CPU
   time and peak RSS of the service plus its render child, the documents' sizes; the
   workbook's summary checked against the figures the platform was built with.
2. Under load: ``--clients`` closed-loop clients read, as a care-circle member, a patient's
   file page (``/patients/{id}``) and the task dashboard (``/taches``) the whole time, each
   client both pages in turn (client n starting with page n % 2, so that one client reads
   both and any number reads them evenly; until 2026-12-03 client n read page n % 2 only,
   which left the dashboard unread with one client: the figures below are from then), while
   quiet windows and extractions alternate (quiet, platform, quiet, structure, quiet, … for
   ``--rounds``); each read is counted in the window it started in, so the p50/p99 with and
   without an extraction come from the same run, interleaved. A page without reads in a
   window is said so, not measured.

    python bench/extraction.py [--patients 10000] [--notebook 1000000] [--rounds 2]
                               [--quiet 8] [--clients 8] [--database-url URL]
                               [--cache-dir ~/.cache/cercle-bench]

Goals: the year's extraction ≤ 30 s and ≤ 300 MB (the service's growth plus the render
process); the others' p99 during it within ±20 % of the p99 without it.

Figures (2026-12-02, the shared 2-core machine; load average beside each: at 7–13, other
engineers' tests, wall times are 4–8× the CPU times and the render child, at nice 10, gets
what the others leave, so CPU times are the comparable figures there).
10,000 patients, 1,000,000 notebook entries, 360,010 activity events, 50,000 tasks (1.46 M
rows; built in 194 s on SQLite, 111 s on PostgreSQL; a re-run copies it in ~1 s).

  year of the whole platform, alone   load   wall     CPU service + render  peak    xlsx/csv.zip
  SQLite, before this work            8–10   71.5 s    4.0 s + 18.7 s     +306 MB  3.62/1.05 MB
  SQLite, after                        0.9    9.0 s    0.2 s +  8.5 s     +196 MB  3.62/1.05 MB
  SQLite, after, machine loaded       7–10   49–71 s   1.1 s +  8.9 s     +199 MB
  PostgreSQL, before                    9   706.6 s      —   +  8.2 s     +207 MB
  PostgreSQL, after                    1.0   10.1 s    0.2 s +  6.6 s     +201 MB  3.62/1.05 MB
  a structure's year (~100 files)    0.9–1   1.9 s    0.0 s +  1.6 s      +77 MB  0.06/0.02 MB
                             (PostgreSQL     2.8 s    0.1 s +  1.0 s      +77 MB)
  1,000 patients / 50,000 notes        4.4    4.6 s under the readers' load (baseline: 8.4 s)

"Before": the service read the facts (PostgreSQL: a flag's first acknowledgement by a join
with the aggregate of all of them, and per-500-files lists over the year's index range, took
minutes), openpyxl wrote the workbook cell by cell; "service" CPU there is mostly the
benchmark's status polls (then every 50 ms). PostgreSQL's own CPU is not counted above. The
render child's work alone at nice 0 (load 8): 7.1 s CPU — reading 4.5 s, figures 1.2 s,
documents 1.3 s — 208 MB at most. The workbook's summary matched the built scenario in every
run (messages, flags, urgencies, tasks, exports, hospitalisations; platform and structure).

Other users' reads during the extraction (8 clients, same run, interleaved windows):
  SQLite, full size, load 3.6 → 2.2: file page p50 287 → 292 ms, p99 809 → 414 ms; dashboard
    p50 286 → 295 ms, p99 832 → 433 ms (the quiet windows caught the machine's spikes).
  SQLite, full size, load 0.9 → 1.1, next run: p50 285 → 286 ms, p99 453 → 1073 ms (one ~1 s
    stall of every reader 2.8 s into the extraction: the machine or the service, not found).
  SQLite, small size, load 4.4: p99 376 → 410 ms and 370 → 404 ms (ratio 1.09).
  PostgreSQL, full size, load 1.0 → 5.3: p50 569 → 858 ms, p99 1389 → 2626 ms (ratio 1.9): the
    server's backend runs the child's queries at the service's priority (nice 10 is the
    child's only), and one 2.5 s stall of every reader 21 s in. Not met there.
  Before the child lowered its priority ahead of its imports, the ratio was 1.8–3.5 on SQLite,
  the slowest reads all starting ~1.7 s after the ask.

What changed after these runs, and the runs that followed (2026-12-02 evening, same machine):
- The stalls of every reader (1 s on SQLite, 2.5 s on PostgreSQL) were not the extraction: the
  pages read every care circle of the platform (40,000 rows here) into memory every 30 s and
  after any change, inside a request (on SQLite in the event loop's thread): 0.6–1.2 s each
  at load 10. The pages now read the names of the people they show only (web/people.py).
- The render process runs in the idle scheduling class (nice 10 still took CPU from the
  service); on PostgreSQL its backend has no parallel workers and no JIT; its reads give way
  when no processor is idle (extraction/pace.py: a wait of 3× each read, at most 1 s).
- Runs at load 0.0–1.3, nothing else running (bench/extraction.py --rounds 2):

    alone, year of the platform    wall     CPU service + render   peak
    PostgreSQL                     14.7 s     0.5 s + 11.5 s      +204 MB
    SQLite                         15.4 s     0.5 s + 14.6 s      +202 MB
    a structure's year             4.2 s (PostgreSQL), 3.1 s (SQLite)

    under the 8 readers            extraction   file page p99 (ratio)      dashboard p99 (ratio)
    PostgreSQL, before the pacing   18.9 s      812 → 1061 ms (1.31)       623 → 846 ms (1.36)
    PostgreSQL                      36.2 s      862 → 971 ms  (1.13)       654 → 737 ms (1.13)
    SQLite                          33.1 s      863 → 904 ms  (1.05)       985 → 867 ms (0.88)

  (median of 2 platform runs under load; quiet p50 517–577 ms, during 457–566 ms.) An
  earlier SQLite run with another idle-class process on the machine (another engineer's
  Synapse) gave 1.02 / 1.01, the extraction taking 237 s: idle-class work shares what is idle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import extraction_platform as bench_platform  # noqa: E402
from bench.common.dossier import SESSION_KEY, bench_config, wait_healthy  # noqa: E402
from bench.common.measures import free_port  # noqa: E402

YEAR = bench_platform.YEAR


def serve(database_url: str, root: Path, port: int) -> None:
    """The real app, pages included, in this (child) process."""
    from aiohttp import web

    from dossier_service import memory
    from dossier_service.app import create_app

    config = bench_config(database_url, root, admins=frozenset({bench_platform.ADMIN}))
    app = create_app(config)
    memory.settle_after_startup()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# ----------------------------------------------------------------------------- the service's process tree
@dataclass
class Tree:
    """CPU and memory of the service and its children (the render process), sampled."""

    pid: int
    peak_total: int = 0
    peak_child: int = 0
    children_seen: int = 0

    def cpu(self) -> tuple[float, float]:
        """(service's own CPU s, its finished children's CPU s)."""
        import psutil

        t = psutil.Process(self.pid).cpu_times()
        return t.user + t.system, t.children_user + t.children_system

    def rss(self) -> int:
        import psutil

        return int(psutil.Process(self.pid).memory_info().rss)

    def sample(self) -> None:
        import psutil

        try:
            service = psutil.Process(self.pid)
            total = service.memory_info().rss
            for child in service.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    child_rss = child.memory_info().rss
                    self.peak_child = max(self.peak_child, child_rss)
                    total += child_rss
                    self.children_seen += 1
            self.peak_total = max(self.peak_total, total)
        except psutil.NoSuchProcess:
            pass


# ----------------------------------------------------------------------------- extractions
@dataclass
class Run:
    scope: str
    wall_s: float
    xlsx_bytes: int
    csv_bytes: int
    summary: dict[str, Any]
    service_cpu_s: float = 0.0
    child_cpu_s: float = 0.0
    peak_growth_mb: float = 0.0
    peak_child_mb: float = 0.0


async def extract(http: Any, base: str, token: str, scope: str, tree: Tree | None) -> Run:
    """Ask for the year's extraction of ``scope`` through the API; wait for it; fetch it."""
    headers = {"Authorization": f"Bearer {token}"}
    body = {"scope": scope, "start": YEAR[0].isoformat(), "end": YEAR[1].isoformat()}
    if tree is not None:
        own0, children0 = tree.cpu()
        rss0 = tree.rss()
        tree.peak_total = tree.peak_child = 0
    t0 = time.perf_counter()
    async with http.post(f"{base}/api/v1/extractions", json=body, headers=headers) as resp:
        assert resp.status == 202, (resp.status, await resp.text())
        report = await resp.json()
    asked = t0
    while report["status"] == "en cours":
        if tree is not None:
            tree.sample()  # every 50 ms; the status asked through the API every 250 ms
        await asyncio.sleep(0.05)
        if time.perf_counter() - t0 > 900:
            raise SystemExit("extraction : pas prête en 15 min")
        if time.perf_counter() - asked >= 0.25:
            asked = time.perf_counter()
            async with http.get(f"{base}/api/v1/extractions/{report['id']}", headers=headers) as r:
                report = await r.json()
    wall = time.perf_counter() - t0
    assert report["status"] == "prête", report
    run = Run(scope, wall, 0, 0, {})
    if tree is not None:
        own1, children1 = tree.cpu()
        run.service_cpu_s, run.child_cpu_s = own1 - own0, children1 - children0
        run.peak_growth_mb = (tree.peak_total - rss0) / 2**20
        run.peak_child_mb = tree.peak_child / 2**20
    if tree is None:  # under load: parsing the workbook here would hold the readers' loop
        return run
    async with http.get(base + report["xlsx"], headers=headers) as r:
        xlsx = await r.read()
    async with http.get(base + report["csv"], headers=headers) as r:
        run.csv_bytes = len(await r.read())
    run.xlsx_bytes = len(xlsx)
    run.summary = summary_of(xlsx)
    return run


def summary_of(xlsx: bytes) -> dict[str, Any]:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(xlsx), read_only=True)
    out = {}
    for row in book["Synthèse"].iter_rows(min_row=4, max_col=2, values_only=True):
        if row[0] is None:
            break
        out[str(row[0])] = row[1]
    return out


def check(run: Run, expected: dict[str, int]) -> str:
    wrong = {k: (run.summary.get(k), v) for k, v in expected.items() if run.summary.get(k) != v}
    if wrong:
        raise SystemExit(f"{run.scope}: figures différentes du scénario (trouvé, attendu) {wrong}")
    return f"figures as built ({len(expected)} checked)"


# ----------------------------------------------------------------------------- other users' reads
@dataclass
class Reads:
    """Latencies of the readers, each under the window its request started in."""

    windows: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    errors: int = 0
    current: str = "warm-up"
    slow: list[tuple[float, float, str]] = field(default_factory=list)  # (seconds, start, page)

    def add(self, page: str, window: str, seconds: float, start: float = 0.0) -> None:
        self.windows.setdefault(window, {}).setdefault(page, []).append(seconds)
        if window == "during":
            self.slow.append((seconds, start, page))


async def readers(
    base: str,
    pages: dict[str, str],
    cookie: dict[str, str],
    clients: int,
    reads: Reads,
    stop: asyncio.Event,
) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(base, connector=connector, cookies=cookie) as http:

        async def reader(n: int) -> None:
            order = list(pages.items())
            turn = n  # every page in turn, from page n: one client reads them all
            while not stop.is_set():
                page, path = order[turn % len(order)]
                turn += 1
                window, t0 = reads.current, time.perf_counter()
                async with http.get(path, allow_redirects=False) as resp:
                    await resp.read()
                    if resp.status != 200:
                        reads.errors += 1
                reads.add(page, window, time.perf_counter() - t0, t0)

        await asyncio.gather(*(reader(n) for n in range(clients)))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * q))]


# ----------------------------------------------------------------------------- main
@contextlib.asynccontextmanager
async def service(url: str, root: Path) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
        f"from bench.extraction import serve; serve({url!r}, "
        f"__import__('pathlib').Path({str(root)!r}), {port})"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_healthy(base)
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def show(run: Run) -> str:
    ok = run.wall_s <= 30 and run.peak_growth_mb <= 300
    return (
        f"{run.scope:<10} {run.wall_s:6.1f} s wall  CPU {run.service_cpu_s:5.1f} s service + "
        f"{run.child_cpu_s:5.1f} s render  peak +{run.peak_growth_mb:5.0f} MB (render "
        f"{run.peak_child_mb:4.0f} MB)  xlsx {run.xlsx_bytes / 1e6:5.2f} MB, csv.zip "
        f"{run.csv_bytes / 1e6:5.2f} MB  {'OK' if ok else 'NOT MET'} (≤ 30 s, ≤ 300 MB)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--notebook", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quiet", type=float, default=8.0, help="seconds of each quiet window")
    parser.add_argument(
        "--clients", type=int, default=8, help="readers, each reading both pages in turn"
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cercle-bench",
    )
    args = parser.parse_args()
    # killed: the finally blocks still stop the service and drop the run's database
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    import aiohttp

    from dossier_service import auth

    print(f"load average at start: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    tokens = {
        scope: auth.issue_session(SESSION_KEY, who, lifetime=7200)
        for scope, who in (
            ("plateforme", bench_platform.ADMIN),
            (bench_platform.STRUCTURES[0], bench_platform.REFERENT),
        )
    }
    with tempfile.TemporaryDirectory(prefix="cercle-bench-extraction-") as tmp:
        root = Path(tmp)
        async with (
            bench_platform.platform(
                args.database_url, args.cache_dir, root, args.patients, args.notebook
            ) as (url, expected),
            service(url, root) as (base, process),
            aiohttp.ClientSession() as http,
        ):
            tree = Tree(process.pid)
            print(f"service: {tree.rss() / 2**20:.0f} MB RSS at rest")
            alone = []
            for scope, wanted in (
                ("plateforme", expected.platform),
                (bench_platform.STRUCTURES[0], expected.structure),
            ):
                run = await extract(http, base, tokens[scope], scope, tree)
                run.scope = "platform" if scope == "plateforme" else "structure"
                print(show(run), "|", check(run, wanted))
                alone.append(run)

            member = {
                auth.SESSION_COOKIE: auth.issue_session(
                    SESSION_KEY, bench_platform.MEMBER, lifetime=7200
                )
            }
            pages = {"file page": f"/patients/{expected.read_files[0]}", "dashboard": "/taches"}
            reads, stop = Reads(), asyncio.Event()
            load = asyncio.ensure_future(readers(base, pages, member, args.clients, reads, stop))
            try:
                await asyncio.sleep(2)  # warm-up: connections, caches
                loaded: list[Run] = []
                spans: list[tuple[str, float, float]] = []  # (scope, asked, ready)
                for _ in range(args.rounds):
                    for scope in ("plateforme", bench_platform.STRUCTURES[0]):
                        reads.current = "quiet"
                        await asyncio.sleep(args.quiet)
                        reads.current = "during"
                        t0 = time.perf_counter()
                        while True:  # a structure's extraction is short: repeat it
                            asked = time.perf_counter()
                            run = await extract(http, base, tokens[scope], scope, None)
                            loaded.append(run)
                            spans.append((scope, asked, asked + run.wall_s))
                            if time.perf_counter() - t0 >= min(args.quiet, 4):
                                break
                reads.current = "quiet"
                await asyncio.sleep(args.quiet)
            finally:
                stop.set()
                await load
    print(f"load average at end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    print("\nextractions under load (wall, asked → ready):")
    for scope in ("plateforme", bench_platform.STRUCTURES[0]):
        walls = [r.wall_s for r in loaded if r.scope == scope]
        print(
            f"  {scope:<10} {len(walls)} runs, median {statistics.median(walls):.1f} s, "
            f"max {max(walls):.1f} s"
            if walls
            else f"  {scope:<10} no run (--rounds 0)"
        )
    print(f"\nother users' reads ({args.clients} clients, {reads.errors} errors):")
    for page in pages:
        quiet = reads.windows.get("quiet", {}).get(page, [])
        during = reads.windows.get("during", {}).get(page, [])
        if not quiet or not during:
            print(
                f"  {page:<10} not measured: {len(quiet)} reads without an extraction, "
                f"{len(during)} during one (no extraction under load, or a window too short)"
            )
            continue
        ratio = pct(during, 0.99) / pct(quiet, 0.99)
        print(
            f"  {page:<10} without: {len(quiet):5} reads p50 {pct(quiet, 0.5):6.1f} ms p99 "
            f"{pct(quiet, 0.99):6.1f} ms | during: {len(during):5} reads p50 "
            f"{pct(during, 0.5):6.1f} ms p99 {pct(during, 0.99):6.1f} ms | p99 ratio "
            f"{ratio:.2f} {'OK' if ratio <= 1.2 else 'NOT MET'} (≤ 1.20; under 0.80, the "
            "machine's noise fell on the quiet windows)"
        )

    print("slowest reads during the extractions (where in the extraction they started):")
    for seconds, start, page in sorted(reads.slow, reverse=True)[:5]:
        span = next((x for x in spans if x[1] <= start <= x[2]), None)
        where = (
            f"{start - span[1]:5.1f} s after asking {span[0]} (ready after {span[2] - span[1]:.1f} s)"
            if span
            else "while the documents were downloaded"
        )
        print(f"  {page:<10} {1000 * seconds:6.0f} ms, started {where}")


if __name__ == "__main__":
    asyncio.run(main())
