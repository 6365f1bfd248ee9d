#!/usr/bin/env python3
"""Benchmark of the bot's door to the dossier: the durable outbox beside direct calls.

    .venv/bin/python bench/sync_outbox.py [--writes 500] [--workdir DIR]

Against the real dossier service (real app, fresh migrated SQLite, on a free port in this
process), writes ``--writes`` liaison-notebook entries with idempotency keys:
(a) directly with ``DossierClient`` (the limit: what any writer must pay), one after the
other; (b) through the outbox (``OutboxWorker.submit``: SQLite row (WAL),
then delivery), one after the other as commands arrive; (c) the outbox draining a backlog
(the dossier was down, ``--writes`` items queued, then it comes back). Then the feed: reading
the resulting events with ``FeedConsumer`` (cursor saved after each). Prints per-write
median / p95 and the ratio (b)/(a).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from bench.common.dossier import bench_config  # noqa: E402
from bench.common.measures import free_port, pct  # noqa: E402
from bots.dossier_client import DossierClient  # noqa: E402
from bots.dossier_link.feed import FeedConsumer  # noqa: E402
from bots.dossier_link.store import SyncStore  # noqa: E402
from bots.outbox import Outbox, OutboxItem, OutboxWorker, idempotency_key, open_outbox_database  # noqa: E402
from dossier_service.app import create_app  # noqa: E402
from dossier_service.migrate import upgrade  # noqa: E402

TOKEN = "bench-service-token-" + "z" * 20
COORD = "@coord:cercle.bench"


def quantiles(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), pct(samples, 95)


async def serve(workdir: Path) -> tuple[web.AppRunner, str]:
    db = workdir / "dossier.db"
    await upgrade(f"sqlite+aiosqlite:///{db}")
    port = free_port()
    config = bench_config(
        f"sqlite+aiosqlite:///{db}",
        workdir,
        server_name="cercle.bench",
        service_token=TOKEN,
        port=port,
        public_url=f"http://127.0.0.1:{port}",
    )
    runner = web.AppRunner(create_app(config, with_pages=False), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, config.public_url


async def main(writes: int, workdir: Path) -> None:
    runner, url = await serve(workdir)
    client = DossierClient(url, TOKEN)
    try:
        created = await client.create_patient(
            room_id=None, label="Bench", coordinator=COORD, key="bench"
        )
        pid = str(created["id"])
        for n in range(20):  # warm-up
            await client.add_notebook_entry(
                pid, kind="note", text=f"warm {n}", actor=COORD, key=f"w{n}"
            )

        direct: list[float] = []
        for n in range(writes):
            t0 = time.perf_counter()
            await client.add_notebook_entry(
                pid,
                kind="note",
                text=f"direct {n}",
                actor=COORD,
                key=idempotency_key(f"$d{n}", "note"),
                from_matrix=False,
            )  # written on the page: an event
            direct.append(time.perf_counter() - t0)

        box = Outbox(open_outbox_database(workdir / "outbox.sqlite3"), workdir / "blobs")

        async def deliver(item: OutboxItem) -> dict[str, Any]:
            return await client.add_notebook_entry(
                pid, kind="note", text=item.payload["text"], actor=COORD, key=item.key
            )

        worker = OutboxWorker(box, deliver, idle_seconds=1.0)
        task = asyncio.create_task(worker.run())
        through: list[float] = []
        for n in range(writes):
            t0 = time.perf_counter()
            item = await worker.submit(
                idempotency_key(f"$o{n}", "note"),
                "notebook.add",
                {"text": f"outbox {n}"},
                wait_seconds=10,
            )
            assert item.status == "done"
            through.append(time.perf_counter() - t0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

        for n in range(writes):  # a backlog: queued while the dossier was away
            box.enqueue(idempotency_key(f"$b{n}", "note"), "notebook.add", {"text": f"backlog {n}"})
        t0 = time.perf_counter()
        while box.pending_count():
            await worker.run_once()
        drain = time.perf_counter() - t0

        handled = 0

        async def count(event: Any) -> None:
            nonlocal handled
            handled += 1

        store = SyncStore(open_outbox_database(workdir / "sync.sqlite3"))
        t0 = time.perf_counter()
        feed = FeedConsumer(client, store, count, batch=500)
        await feed.run_once()
        feed_time = time.perf_counter() - t0

        d50, d95 = quantiles(direct)
        o50, o95 = quantiles(through)
        print(f"writes per series: {writes}")
        print(
            f"(a) direct DossierClient write  : median {d50 * 1000:.2f} ms  p95 {d95 * 1000:.2f} ms"
        )
        print(
            f"(b) through the durable outbox  : median {o50 * 1000:.2f} ms  p95 {o95 * 1000:.2f} ms"
        )
        print(f"    ratio (b)/(a)               : median {o50 / d50:.2f}x  p95 {o95 / d95:.2f}x")
        print(
            f"(c) backlog drained             : {writes} items in {drain:.2f} s ({writes / drain:.0f}/s)"
        )
        print(
            f"feed read (cursor per event)    : {handled} events in {feed_time:.2f} s "
            f"({handled / feed_time:.0f}/s)"
        )
    finally:
        await client.close()
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="cercle-bench-sync-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(main(args.writes, work))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
