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
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COORD = "@coord:bench.local"
NURSE = "@ide:bench.local"
SESSION_KEY = "bench-pages-session-key"
PDF = b"%PDF-1.4\n%%EOF\n"


async def seed(app, today: date) -> str:  # type: ignore[no-untyped-def]
    from dossier_service import appkeys
    from dossier_service.policy import Principal
    from dossier_service.schemas import AssigneeIn, CircleMemberIn, EpisodeIn, PatientCreate, TaskIn
    from dossier_service.services import circle, documents, lifeline, notebook, patients, tasks

    db, store, config = app[appkeys.DATABASE], app[appkeys.STORE], app[appkeys.CONFIG]
    who = Principal(COORD)
    async with db.transaction() as s:
        patient = await patients.create_patient(
            s,
            principal=who,
            today=today,
            data=PatientCreate(label="Bench", birth_name="DURAND", birth_first_names=["Marie"]),
        )
        await circle.add_member(
            s,
            principal=who,
            patient=patient,
            data=CircleMemberIn(
                kind="professionnel",
                display_name="Inès",
                matrix_user_id=NURSE,
                role="intervenant",
                has_access=True,
            ),
        )
        for i in range(1000):
            await notebook.add_entry(
                s,
                principal=who,
                patient=patient,
                kind="note",
                text=f"Transmission {i} : passage, constantes notées.",
            )
        for i in range(100):
            blob = await store.put(PDF + str(i).encode())
            await documents.add_document(
                s,
                principal=who,
                patient=patient,
                blob=blob,
                filename=f"cr-{i}.pdf",
                category="compte rendu",
                categories=config.document_categories,
            )
        for i in range(50):
            await tasks.create_task(
                s,
                principal=who,
                patient=patient,
                task_types=config.task_types,
                data=TaskIn(
                    type="Soins",
                    subtypes=["Pansement"],
                    label=f"Tâche {i}",
                    due_date=today + timedelta(days=i - 10),
                    assignees=[AssigneeIn(kind="personne", ref=NURSE)],
                ),
            )
        for i, theme in enumerate(config.lifeline_themes):
            await lifeline.add_episode(
                s,
                principal=who,
                patient=patient,
                themes=config.lifeline_themes,
                form_ids=[],
                data=EpisodeIn(
                    theme=theme,
                    starts_on=today - timedelta(days=200 - 30 * i),
                    ends_on=today - timedelta(days=180 - 30 * i),
                ),
            )
        return patient.id


async def run(seconds: float, clients: int) -> None:
    import aiohttp
    from aiohttp import web

    from dossier_service import auth
    from dossier_service.app import create_app
    from dossier_service.config import DossierConfig
    from dossier_service.migrate import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = DossierConfig(
            database_url=f"sqlite+aiosqlite:///{root / 'dossier.db'}",
            documents_dir=root / "docs",
            homeserver_url="http://127.0.0.1:9",
            server_name="bench.local",
            session_key=SESSION_KEY,
            service_token="bench-pages-service-token-0123456789",
            forms_dir=Path(__file__).resolve().parents[1] / "config" / "forms",
        )
        await upgrade(config.database_url)
        app = create_app(config)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        pid = await seed(app, date.today())
        cookie = {auth.SESSION_COOKIE: auth.issue_session(SESSION_KEY, COORD, lifetime=3600)}
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession(cookies=cookie) as http:
                for name, path in (
                    ("fiche patient", f"/patients/{pid}"),
                    ("tableau des tâches", "/taches"),
                ):
                    async with http.get(base + path) as resp:
                        size = len(await resp.read())
                        assert resp.status == 200, resp.status
                    latencies: list[float] = []
                    end = time.perf_counter() + seconds

                    async def client(url: str, end: float, latencies: list[float]) -> None:
                        while time.perf_counter() < end:
                            t0 = time.perf_counter()
                            async with http.get(url) as r:
                                await r.read()
                                assert r.status == 200
                            latencies.append(time.perf_counter() - t0)

                    t0 = time.perf_counter()
                    await asyncio.gather(
                        *(client(base + path, end, latencies) for _ in range(clients))
                    )
                    elapsed = time.perf_counter() - t0
                    latencies.sort()
                    p99 = latencies[int(len(latencies) * 0.99) - 1]
                    print(
                        f"{name:20s} {len(latencies) / elapsed:7.1f} req/s  "
                        f"p50 {statistics.median(latencies) * 1000:6.1f} ms  "
                        f"p99 {p99 * 1000:6.1f} ms  ({size // 1024} Ko, {clients} clients)"
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
