"""The dossier's pages of two trees of Cercle under one harness, side by side in one run.

``bench/compare_trees.py`` runs each tree's own benches: when a bench's harness itself
changed between the trees (``bench/dossier_pages.py`` moved to ``bench/common/dossier.py``:
another client, a warm-up, headers instead of a cookie jar), its figures compare harnesses
as much as code. Here the client is this file's, in both trees: each run starts this script
with the tree's own Python and code, which builds the tree's app (SQLite, in a temporary
directory, the same file as ``dossier_pages``: 1,000 liaison entries, 100 documents,
50 tasks, an episode per life-line theme), then loads one page with ``--clients`` closed-loop
clients for ``--seconds`` after a warm-up. Runs alternate old, new, new, old per round.

    python bench/pages_two_trees.py --old DIR [--new DIR] [--rounds 2] [--seconds 5]
                                    [--clients 16] [--profile OUT_DIR]

``--profile`` also writes one cProfile of 50 sequential requests per tree and page (calls
per request compare exactly where timings are noisy). Trees from 242a3b1 (the code before
issue 14's step: its seeding lives in ``bench/dossier_pages.py``) on.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

PAGES = ("fiche", "taches")


async def _app_and_file(tree: Path, root: Path) -> tuple[Any, str, str, str]:
    """The tree's app, its seeded file's id, and who reads it (user, session key)."""
    from dossier_service.app import create_app
    from dossier_service.migrate import upgrade

    url = f"sqlite+aiosqlite:///{root / 'dossier.db'}"
    if (tree / "bench" / "common" / "dossier.py").exists():
        from bench.common.dossier import COORD, SESSION_KEY, bench_config, seed_file
        from dossier_service import appkeys

        config = bench_config(url, root)
        await upgrade(config.database_url)
        app = create_app(config)
        db, store = app[appkeys.DATABASE], app[appkeys.STORE]
        return (
            app,
            await seed_file(db, store, config, date.today(), lifeline=True),
            COORD,
            SESSION_KEY,
        )
    # the tree before: its own bench held the seeding, its config was a dataclass
    before: Any = importlib.import_module("bench.dossier_pages")
    DossierConfig: Any = importlib.import_module("dossier_service.config").DossierConfig

    config = DossierConfig(
        database_url=url,
        documents_dir=root / "docs",
        homeserver_url="http://127.0.0.1:9",
        server_name="bench.local",
        session_key=before.SESSION_KEY,
        service_token="bench-pages-service-token-0123456789",
        forms_dir=tree / "config" / "forms",
    )
    await upgrade(config.database_url)
    app = create_app(config)
    return app, await before.seed(app, date.today()), before.COORD, before.SESSION_KEY


async def _measure(
    tree: Path, page: str, seconds: float, clients: int, profile: Path | None
) -> None:
    import aiohttp
    from aiohttp import web

    from dossier_service import auth

    with tempfile.TemporaryDirectory() as tmp:
        app, pid, user, key = await _app_and_file(tree, Path(tmp))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}" + ("/taches" if page == "taches" else f"/patients/{pid}")
        cookie = f"{auth.SESSION_COOKIE}={auth.issue_session(key, user, lifetime=3600)}"
        try:
            async with aiohttp.ClientSession(
                headers={"Cookie": cookie}, connector=aiohttp.TCPConnector(limit=clients)
            ) as http:

                async def one() -> int:
                    async with http.get(url) as resp:
                        body = await resp.read()
                        if resp.status != 200:
                            raise SystemExit(f"{url} : HTTP {resp.status}")
                        return len(body)

                size = 0
                for _ in range(20):  # warm: connections, caches, statements
                    size = await one()
                if profile is not None:
                    import cProfile

                    prof = cProfile.Profile()
                    prof.enable()
                    for _ in range(50):
                        await one()
                    prof.disable()
                    prof.dump_stats(str(profile / f"{tree.name}.{page}.prof"))
                latencies: list[float] = []
                end = time.perf_counter() + seconds

                async def client() -> None:
                    while (start := time.perf_counter()) < end:
                        await one()
                        latencies.append(time.perf_counter() - start)

                begun = time.perf_counter()
                await asyncio.gather(*(client() for _ in range(clients)))
                elapsed = time.perf_counter() - begun
            latencies.sort()
            print(
                f"{len(latencies) / elapsed:.1f} {statistics.median(latencies) * 1000:.1f} "
                f"{latencies[int(len(latencies) * 0.99) - 1] * 1000:.1f} {size}"
            )
        finally:
            await runner.cleanup()


def _run(tree: Path, page: str, args: argparse.Namespace) -> tuple[float, float, float, int]:
    python = tree / ".venv" / "bin" / "python"
    command = [str(python), str(Path(__file__).resolve()), "--measure", str(tree), page]
    command += ["--seconds", str(args.seconds), "--clients", str(args.clients)]
    if args.profile:
        command += ["--profile", str(args.profile)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tree} {page} : échec\n{done.stderr[-2000:]}")
    rate, p50, p99, size = done.stdout.split()[-4:]
    return float(rate), float(p50), float(p99), int(size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, help="l'arbre d'avant (avec son .venv)")
    parser.add_argument("--new", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--measure", nargs=2, metavar=("TREE", "PAGE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        tree = Path(args.measure[0]).resolve()
        sys.path.insert(0, str(tree))
        asyncio.run(_measure(tree, args.measure[1], args.seconds, args.clients, args.profile))
        return
    if args.old is None:
        parser.error("--old DIR est requis (un arbre de Cercle avec son .venv)")
    trees = {"avant": args.old.resolve(), "après": args.new.resolve()}
    for name, tree in trees.items():
        if not (tree / ".venv" / "bin" / "python").exists():
            raise SystemExit(f"{tree} : pas de .venv (l'arbre « {name} » doit être installé)")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    figures: dict[tuple[str, str], list[tuple[float, float, float, int]]] = {}
    for page in PAGES:
        for _ in range(args.rounds):
            for name in ("avant", "après", "après", "avant"):
                figures.setdefault((name, page), []).append(_run(trees[name], page, args))
    print(f"{args.clients} clients, {args.seconds:g} s par mesure, {2 * args.rounds} par arbre")
    for page in PAGES:
        for name in ("avant", "après"):
            runs = figures[(name, page)]
            rates = ", ".join(f"{r[0]:.1f}" for r in runs)
            print(
                f"{page:7s} {name:6s} req/s médiane {statistics.median(r[0] for r in runs):6.1f} "
                f"({rates})  p50 {statistics.median(r[1] for r in runs):6.1f} ms  "
                f"p99 {statistics.median(r[2] for r in runs):6.1f} ms  {runs[0][3] // 1024} Ko"
            )
        before = statistics.median(r[0] for r in figures[("avant", page)])
        after = statistics.median(r[0] for r in figures[("après", page)])
        print(f"{page:7s} après / avant : {after / before:.2f}×")


if __name__ == "__main__":
    main()
