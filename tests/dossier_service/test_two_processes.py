"""The dossier as two real processes on one PostgreSQL database (the region profile): a
write on one is seen by a read on the other at once — the file (its cache keyed by the
revision read from the database), the task dashboard, the care circle — and the outbox feed
keeps its order when both write together. Changes reach every process's memory through
PostgreSQL NOTIFY (the pages' names of people)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import free_port

from bots.dossier_client import DossierClient
from deployment.secrets import Secrets
from dossier_service.db import build_database
from dossier_service.file_revisions import listen, mark_changed
from tests.dossier_link.dossier_support import coordination_task
from tests.dossier_service.conftest import _pg

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

COORD = "@coord:cercle.localhost"


@pytest.fixture
def database(pg_template: str) -> Iterator[str]:
    name = f"cercle_dossier_2p_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "le dossier s'est arrêté au démarrage"
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} ne répond pas")


@pytest.fixture
async def two(database: str, tmp_path: Path) -> AsyncIterator[tuple[DossierClient, DossierClient]]:
    var = tmp_path / "var"
    secrets = Secrets.load_or_create(var)  # before the processes: one set, shared
    token = secrets.dossier_service_token
    procs, clients = [], []
    try:
        for i in range(2):
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("CERCLE")}
            env.update(
                {
                    "CERCLE__VAR_DIR": str(var),
                    "CERCLE__DOSSIER__PORT": str(port),
                    "CERCLE__DOSSIER__PUBLIC_URL": "http://127.0.0.1:9",
                    "CERCLE__DOSSIER__DATABASE_URL": database,
                }
            )
            log = open(tmp_path / f"dossier{i}.log", "wb")  # noqa: SIM115
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "dossier_service"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
            url = f"http://127.0.0.1:{port}"
            await asyncio.to_thread(_wait_healthy, url, procs[-1])
            clients.append(DossierClient(url, token))
        yield clients[0], clients[1]
    finally:
        for client in clients:
            await client.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [str(item["id"]) for item in items]


async def shown_within_a_notice(
    read: Callable[[], Awaitable[Any]], shows: Callable[[Any], bool]
) -> None:
    """A file or a dashboard kept in memory follows another process's change once its notice
    is heard: nearly always before the next request arrives, asked again for at most 2 s."""
    deadline = time.monotonic() + 2
    while not shows(await read()):
        assert time.monotonic() < deadline, "le changement n'est pas arrivé"
        await asyncio.sleep(0.01)


async def open_file(client: DossierClient, label: str) -> str:
    """A file without a room, coordinated by COORD: its id."""
    patient = await client.create_patient(
        room_id=None, label=label, coordinator=COORD, key=uuid.uuid4().hex
    )
    return str(patient["id"])


async def test_a_write_on_one_process_is_read_at_once_on_the_other(
    two: tuple[DossierClient, DossierClient],
) -> None:
    a, b = two
    pid = await open_file(a, "Suivi deux")
    for i in range(15):
        writer, reader = (a, b) if i % 2 == 0 else (b, a)
        before = await reader.get_file(pid)  # fills the reader's cache
        assert before is not None
        await writer.add_notebook_entry(
            pid, kind="note", text=f"note {i}", actor=COORD, key=uuid.uuid4().hex, from_matrix=False
        )
        await shown_within_a_notice(
            lambda r=reader: r.get_file(pid),
            lambda file, i=i: f"note {i}" in [e["text"] for e in file["notebook"]],
        )
    # the task dashboard
    await b.open_tasks(pid)
    task = await coordination_task(a, pid, "Pansement", assignee=COORD, key=uuid.uuid4().hex)
    await shown_within_a_notice(lambda: b.open_tasks(pid), lambda ts: task["id"] in ids(ts))
    # the care circle
    await b.circle(pid)
    gp = "@gp:cercle.localhost"
    await a.add_circle_member(
        pid,
        {
            "kind": "professionnel",
            "display_name": "Dr GP",
            "matrix_user_id": gp,
            "role": "medecin_traitant",
        },
        actor=COORD,
        key=uuid.uuid4().hex,
    )
    assert gp in [m.get("matrix_user_id") for m in await b.circle(pid)]


async def test_the_feed_keeps_its_order_when_both_processes_write(
    two: tuple[DossierClient, DossierClient],
) -> None:
    a, b = two
    pid = await open_file(a, "Suivi fil")
    start = max([e["seq"] for e in await a.events(0, limit=1000)] or [0])
    seen: list[int] = []
    done = asyncio.Event()

    async def follow() -> None:  # a reader resuming "after N" the whole time
        after = start
        while not done.is_set() or after < start + 40:
            for event in await b.events(after):
                seen.append(int(event["seq"]))
                after = int(event["seq"])
            await asyncio.sleep(0.01)

    reader = asyncio.create_task(follow())

    async def write(client: DossierClient, n: int) -> None:
        for i in range(n):
            await client.add_notebook_entry(
                pid, kind="note", text=f"{i}", actor=COORD, key=uuid.uuid4().hex, from_matrix=False
            )

    await asyncio.gather(write(a, 20), write(b, 20))
    done.set()
    await asyncio.wait_for(reader, 60)
    everything = [int(e["seq"]) for e in await a.events(start, limit=1000)]
    assert len(everything) >= 40
    assert seen == sorted(seen) and seen == everything  # nothing skipped, nothing twice


async def test_a_commit_is_notified_to_the_other_processes(database: str) -> None:
    writer, other = build_database(database), build_database(database)
    assert writer.notices is not None and other.notices is not None
    heard: list[str] = []
    got = asyncio.Event()

    def hear(payload: str) -> None:
        heard.append(payload)
        if payload != "*":
            got.set()

    other.notices.subscribe(hear)
    ready = asyncio.Event()
    dsn = database.replace("postgresql+asyncpg://", "postgresql://")
    listener = asyncio.create_task(listen(dsn, other.notices, ready))
    try:
        await asyncio.wait_for(ready.wait(), 20)
        from sqlalchemy import text

        with pytest.raises(RuntimeError):  # rolled back: nothing is told
            async with writer.transaction() as session:
                await session.execute(text("SELECT 1"))
                mark_changed(session, "p-rolled-back")
                raise RuntimeError
        async with writer.transaction() as session:
            await session.execute(text("SELECT 1"))
            mark_changed(session, "p-1")
        await asyncio.wait_for(got.wait(), 10)
        assert heard[0] == "*" and heard[1:] == ["p-1"]
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await writer.dispose()
        await other.dispose()


async def _until(predicate: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "attendu en vain"
        await asyncio.sleep(0.01)


async def test_the_keys_in_memory_move_with_every_change_and_are_none_while_deaf(
    database: str,
) -> None:
    """What the task dashboards are kept under on PostgreSQL: this process's own commit moves
    it at once, another's once its notice is heard; while the listener is away (never
    connected yet, or its connection cut by the server) nothing may be served from memory."""
    writer, here = build_database(database), build_database(database)
    assert here.notices is not None
    heard: list[str] = []
    here.notices.subscribe(heard.append)
    assert here.change_epoch() is None  # not listening yet
    ready = asyncio.Event()
    dsn = database.replace("postgresql+asyncpg://", "postgresql://")
    listener = asyncio.create_task(listen(dsn, here.notices, ready))
    from sqlalchemy import text

    try:
        await asyncio.wait_for(ready.wait(), 20)
        first = here.change_epoch()
        assert first is not None
        async with here.transaction() as session:  # no change: the key stays
            await session.execute(text("SELECT 1"))
        assert here.change_epoch() == first
        async with here.transaction() as session:
            await session.execute(text("SELECT 1"))
            mark_changed(session, "p-own")
        own = here.change_epoch()
        assert own is not None and own > first  # at once, before any notice
        own_file = here.file_revision("p-own")
        assert own_file is not None and own_file != here.file_revision("p-never")
        before_other = here.file_revision("p-other")
        async with writer.transaction() as session:
            await session.execute(text("SELECT 1"))
            mark_changed(session, "p-other")
        await _until(lambda: "p-other" in heard)
        assert (here.change_epoch() or 0) > own
        assert here.file_revision("p-other") not in (None, before_other)

        # the server cuts the listener's connection: reconnected, told "anything changed"
        before = here.change_epoch()
        name = database.rsplit("/", 1)[1]
        await _pg(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND query LIKE 'LISTEN%'"
        )
        await _until(lambda: heard.count("*") == 2)
        after = here.change_epoch()
        assert after is not None and before is not None and after > before
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await writer.dispose()
        await here.dispose()
    assert here.change_epoch() is None  # stopped listening: nothing from memory
    assert here.file_revision("p-own") is None  # the file's key is read from the database


async def test_dashboards_on_two_processes_follow_each_others_changes(
    two: tuple[DossierClient, DossierClient],
) -> None:
    """Each process keeps dashboards in memory (PostgreSQL notices move their key): a task
    created or changed on one shows on the other's next dashboard, round after round."""
    a, b = two
    pid = await open_file(a, "Tableau deux")
    labels: list[str] = []
    for i in range(8):
        writer, reader = (a, b) if i % 2 == 0 else (b, a)
        assert [t["label"] for t in await reader.open_tasks(pid)] == labels  # in memory now
        assert [t["label"] for t in await reader.open_tasks(pid)] == labels
        task = await coordination_task(
            writer, pid, f"Soin {i}", assignee=COORD, key=uuid.uuid4().hex
        )
        labels.append(task["label"])
        await shown_within_a_notice(
            lambda r=reader: r.open_tasks(pid),
            lambda ts: sorted(t["label"] for t in ts) == sorted(labels),
        )


async def test_a_session_ended_on_one_process_is_refused_by_the_other(
    two: tuple[DossierClient, DossierClient], tmp_path: Path
) -> None:
    """Both processes answer "was this session ended?" from memory; a logout on one, and an
    account's every session ended on the other, are refused by both (within a notice's delay:
    asked again for at most 2 s)."""
    import aiohttp

    from dossier_service import auth

    a, b = two
    key = Secrets.load_or_create(tmp_path / "var").dossier_session_key

    def bearer(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {auth.issue_session(key, user, lifetime=3600)}"}

    async def status(http: aiohttp.ClientSession, base: str, headers: dict[str, str]) -> int:
        async with http.get(f"{base}/api/v1/me", headers=headers) as resp:
            return resp.status

    async def refused_by(http: aiohttp.ClientSession, base: str, headers: dict[str, str]) -> None:
        deadline = time.monotonic() + 2
        while await status(http, base, headers) != 401:
            assert time.monotonic() < deadline, f"{base} accepte encore la session terminée"
            await asyncio.sleep(0.01)

    async with aiohttp.ClientSession() as http:
        gone, kept = bearer(COORD), bearer(COORD)
        for base in (a.base_url, b.base_url):  # both have read the table now
            assert await status(http, base, gone) == 200
        async with http.post(f"{a.base_url}/api/v1/logout", headers=gone) as resp:
            assert resp.status == 200
        await refused_by(http, b.base_url, gone)
        assert await status(http, a.base_url, gone) == 401  # its own: at once
        for base in (a.base_url, b.base_url):
            assert await status(http, base, kept) == 200  # the other device goes on

        await b.request("POST", "/sessions/revoke", json_body={"user_id": COORD})
        await refused_by(http, a.base_url, kept)
        assert await status(http, b.base_url, kept) == 401
        fresh = bearer(COORD)  # a new login works again, on both
        await asyncio.sleep(0.01)
        for base in (a.base_url, b.base_url):
            assert await status(http, base, fresh) == 200
