"""Benchmark of the dossier's pages (issue 5, web side).

A file with 1,000 liaison entries, 100 documents, 50 tasks and 5 episodes; concurrent
clients fetch the patient's page (every section rendered with jinja2, the life line drawn
as SVG) and the task dashboard, as a signed-in coordinator. One process (the app runs in
this process, on SQLite under a temporary directory). Prints req/s, p50 and p99 per page.

    python bench/dossier_pages.py [--seconds 5] [--clients 16]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common.dossier import COORD, SESSION_KEY, bench_config, load, seed_file


async def run(seconds: float, clients: int) -> None:
    import aiohttp
    from aiohttp import web

    from dossier_service import appkeys, auth
    from dossier_service.app import create_app
    from dossier_service.migrate import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = bench_config(f"sqlite+aiosqlite:///{root / 'dossier.db'}", root)
        await upgrade(config.database_url)
        app = create_app(config)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        pid = await seed_file(
            app[appkeys.DATABASE], app[appkeys.STORE], config, date.today(), lifeline=True
        )
        session = auth.issue_session(SESSION_KEY, COORD, lifetime=3600)
        signed_in = {"Cookie": f"{auth.SESSION_COOKIE}={session}"}
        base = f"http://127.0.0.1:{port}"
        try:
            for name, path in (
                ("fiche patient", f"/patients/{pid}"),
                ("tableau des tâches", "/taches"),
            ):
                async with (
                    aiohttp.ClientSession(headers=signed_in) as http,
                    http.get(base + path) as resp,
                ):
                    size = len(await resp.read())
                    assert resp.status == 200, resp.status
                r = await load(
                    base, path, clients=clients, seconds=seconds, headers=signed_in, warmup=0
                )
                assert r["errors"] == 0, r
                print(
                    f"{name:20s} {r['rps']:7.1f} req/s  p50 {r['p50_ms']:6.1f} ms  "
                    f"p99 {r['p99_ms']:6.1f} ms  ({size // 1024} Ko, {clients} clients)"
                )
        finally:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.clients))


if __name__ == "__main__":
    main()
