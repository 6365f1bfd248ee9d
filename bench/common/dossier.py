"""The dossier service under a bench: its configuration on a temporary directory, a patient's
file as the issue sizes it (1,000 liaison entries, 100 documents, 50 tasks), and closed-loop
HTTP clients that time its answers."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from .measures import cpu_seconds, pct

ROOT = Path(__file__).resolve().parents[2]
SERVICE_TOKEN = "bench-service-token-0123456789abcdef"
SESSION_KEY = "bench-session-key"
COORD = "@coord:bench.local"
MEMBER = "@member:bench.local"
PDF = b"%PDF-1.4\n%%EOF\n"


def bench_config(database_url: str, root: Path, **settings: Any) -> Any:
    """A ``DossierConfig`` on ``database_url``, its documents under ``root``, the homeserver
    nowhere (nothing here checks an OpenID token), the deployment's forms."""
    from dossier_service.config import DossierConfig

    defaults: dict[str, Any] = {
        "homeserver_url": "http://127.0.0.1:9",
        "server_name": "bench.local",
        "session_key": SESSION_KEY,
        "service_token": SERVICE_TOKEN,
        "forms_dir": ROOT / "config" / "forms",
    }
    return DossierConfig(
        database_url=database_url, documents_dir=root / "documents", **(defaults | settings)
    )


async def seed_file(
    db: Any, store: Any, config: Any, today: date, *, lifeline: bool = False
) -> str:
    """A coordinator's patient with a member, 1,000 liaison entries, 100 documents and 50
    tasks (and an episode per life-line theme with ``lifeline``), through the services;
    returns the patient's id."""
    from dossier_service.policy import Principal
    from dossier_service.schemas import AssigneeIn, CircleMemberIn, EpisodeIn, PatientCreate, TaskIn
    from dossier_service.services import circle, documents, notebook, patients, tasks
    from dossier_service.services import lifeline as lifelines

    who = Principal(COORD)
    async with db.transaction() as s:
        patient = await patients.create_patient(
            s,
            principal=who,
            today=today,
            data=PatientCreate(label="Bench", birth_name="DURAND", birth_first_names=["Marie"]),
        )
        member = CircleMemberIn(
            kind="professionnel",
            display_name="Inès",
            matrix_user_id=MEMBER,
            role="intervenant",
            has_access=True,
        )
        await circle.add_member(s, principal=who, patient=patient, data=member)
        for i in range(1000):
            text = f"Transmission {i} : passage, constantes notées."
            await notebook.add_entry(s, principal=who, patient=patient, kind="note", text=text)
        for i in range(100):
            await documents.add_document(
                s,
                principal=who,
                patient=patient,
                blob=await store.put(PDF + str(i).encode()),
                filename=f"cr-{i}.pdf",
                category="compte rendu",
                categories=config.document_categories,
            )
        for i in range(50):
            task = TaskIn(
                type="Soins",
                subtypes=["Pansement"],
                label=f"Tâche {i}",
                due_date=today + timedelta(days=i - 10),
                assignees=[AssigneeIn(kind="personne", ref=MEMBER)],
            )
            await tasks.create_task(
                s, principal=who, patient=patient, task_types=config.task_types, data=task
            )
        for i, theme in enumerate(config.lifeline_themes if lifeline else ()):
            episode = EpisodeIn(
                theme=theme,
                starts_on=today - timedelta(days=200 - 30 * i),
                ends_on=today - timedelta(days=180 - 30 * i),
            )
            await lifelines.add_episode(
                s,
                principal=who,
                patient=patient,
                themes=config.lifeline_themes,
                form_ids=[],
                data=episode,
            )
        return str(patient.id)


async def wait_healthy(base: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"{base}/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("le service ne démarre pas")


async def load(
    base: str | Sequence[str],
    path: str,
    *,
    clients: int,
    seconds: float,
    headers: dict[str, str],
    method: str = "GET",
    body: Any = None,
    server_pid: int | Sequence[int] | None = None,
    warmup: float = 0.5,
    stop: asyncio.Event | None = None,
) -> dict[str, float]:
    """``clients`` closed-loop clients for ``warmup`` + ``seconds`` (or until ``stop`` is set);
    only requests started after the warm-up count (connections opened, caches and statements
    warm). Several ``base`` URLs (processes of one service): client n calls the n-th in turn;
    the server CPU is then the sum of every ``server_pid``'s."""
    import aiohttp

    bases = [base] if isinstance(base, str) else list(base)
    pids = [server_pid] if isinstance(server_pid, int) else list(server_pid or ())

    latencies: list[float] = []
    errors = 0
    succeeded = 0  # warm-up included: what the server did (rows written)
    measure_from = time.perf_counter() + warmup
    deadline = measure_from + seconds
    async with contextlib.AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(
                aiohttp.ClientSession(
                    one, connector=aiohttp.TCPConnector(limit=clients), headers=headers
                )
            )
            for one in bases
        ]

        async def worker(n: int) -> None:
            nonlocal errors, succeeded
            http = sessions[n % len(sessions)]
            i = 0
            while (start := time.perf_counter()) < deadline and not (stop and stop.is_set()):
                i += 1
                payload = body(n, i) if callable(body) else body
                async with http.request(method, path, json=payload) as resp:
                    await resp.read()
                    failed = resp.status >= 400
                succeeded += not failed
                if start >= measure_from:
                    errors += failed
                    latencies.append(time.perf_counter() - start)

        async def server_cpu_while_measured() -> float:
            if not pids:
                return 0.0
            await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
            before = sum(map(cpu_seconds, pids))
            await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
            return sum(map(cpu_seconds, pids)) - before

        cpu_probe = asyncio.ensure_future(server_cpu_while_measured())
        await asyncio.gather(*(worker(n) for n in range(clients)))
        ended = time.perf_counter()
        cpu = await cpu_probe if not (stop and stop.is_set()) else 0.0
        cpu_probe.cancel()
        elapsed = max(1e-9, min(deadline, ended) - measure_from)
    return {
        "requests": len(latencies),
        "errors": errors,
        "succeeded_with_warmup": succeeded,
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * pct(latencies, 99),
        # requests per second of the server's own CPU: what one dedicated core would serve,
        # whatever else the (shared) machine is doing
        "per_cpu_second": len(latencies) / cpu if cpu > 0 else 0.0,
        "server_cpu_share": cpu / elapsed,
    }


def line(name: str, r: dict[str, float]) -> str:
    return (
        f"{name:<30} {r['rps']:>6.0f} req/s  p50 {r['p50_ms']:>6.1f} ms  p99 {r['p99_ms']:>6.1f} ms"
        f"  | {r['per_cpu_second']:>5.0f} req/s-CPU (CPU serveur {r['server_cpu_share']:.0%})"
        f"  ({int(r['requests'])} req, {int(r['errors'])} err.)"
    )
