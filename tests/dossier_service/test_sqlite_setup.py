"""The dossier's SQLite setup: a fair pool, statements in the loop's thread, checkpoints aside."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util.concurrency import greenlet_spawn
from sqlalchemy.util.queue import AsyncAdaptedQueue

from dossier_service.db import build_database
from dossier_service.fair_pool import FairAsyncPool, FairQueue
from dossier_service.sqlite_checkpoint import WalCheckpointer
from tests.support import eventually


def _engine(tmp_path: Path, poolclass: type, **kw: Any) -> AsyncEngine:
    return create_async_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        poolclass=poolclass,
        pool_size=1,
        max_overflow=0,
        **kw,
    )


async def _connect(engine: AsyncEngine) -> AsyncConnection:
    return await engine.connect()


@pytest.mark.parametrize("queue_class", [FairQueue, AsyncAdaptedQueue])
async def test_a_waiting_request_is_not_overtaken_by_a_newcomer(queue_class: type) -> None:
    """The pool's line itself: A waits for the busy connection; B is ready to run when
    the connection is given back. The connection must go to A."""
    line = queue_class(maxsize=1)
    line.put_nowait("connection")
    held = line.get_nowait()
    first = asyncio.create_task(greenlet_spawn(line.get, True, None), name="A")
    # A is in line: a moment for the loop to run it there (neither queue shows its waiters
    # but through private attributes, so there is no event to wait on)
    await asyncio.sleep(0.01)
    newcomer = asyncio.create_task(greenlet_spawn(line.get, True, None), name="B")
    line.put_nowait(held)  # given back before B has run
    done, _ = await asyncio.wait({first, newcomer}, return_when=asyncio.FIRST_COMPLETED)
    winner = done.pop()
    line.put_nowait(winner.result())
    await asyncio.gather(first, newcomer)
    if queue_class is FairQueue:
        assert winner.get_name() == "A"
    else:  # SQLAlchemy's own pool lets the newcomer overtake: why fair_pool exists
        assert winner.get_name() == "B"


async def test_a_request_that_gives_up_leaves_the_line(tmp_path: Path) -> None:
    engine = _engine(tmp_path, FairAsyncPool, pool_timeout=0.05)
    try:
        holder = await engine.connect()
        with pytest.raises(PoolTimeout):
            await engine.connect()  # waits 50 ms in line, then gives up
        waiting = asyncio.create_task(_connect(engine))
        await asyncio.sleep(0.01)  # in line, as above (well within its 50 ms pool timeout)
        waiting.cancel()  # cancelled while in line
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await holder.close()
        async with engine.connect() as conn:  # the connection was not lost to either
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_service_database_runs_statements_and_rolls_back(tmp_path: Path) -> None:
    """The service's SQLite setup (fair pool, statements in the loop's thread): errors come
    back as the driver's, and a failed transaction leaves nothing."""
    db = build_database(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (k TEXT PRIMARY KEY)"))
        with pytest.raises(Exception, match="UNIQUE"):
            async with db.engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES ('a')"))
                await conn.execute(text("INSERT INTO t VALUES ('a')"))
        results = await asyncio.gather(*(_insert(db.engine, f"k{i}") for i in range(20)))
        assert results == [1] * 20
        async with db.engine.connect() as conn:
            keys = (await conn.execute(text("SELECT k FROM t ORDER BY k"))).scalars().all()
        assert "a" not in keys and len(keys) == 20
    finally:
        await db.dispose()


async def _insert(engine: object, key: str) -> int:
    async with engine.begin() as conn:  # type: ignore[attr-defined]
        result = await conn.execute(text("INSERT INTO t VALUES (:k)"), {"k": key})
        await asyncio.sleep(0)  # holds its transaction across a wait
        return int(result.rowcount)


async def test_wal_checkpoints_happen_outside_the_requests(tmp_path: Path) -> None:
    """The service's connection never checkpoints (no fsync inside a request); the
    checkpointer's thread does, and the log stays small while writes go on."""
    path = tmp_path / "d.db"
    db = build_database(f"sqlite+aiosqlite:///{path}")
    assert db.checkpointer is not None
    db.checkpointer.interval = 0.05
    try:
        async with db.engine.begin() as conn:
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one() == 0
            await conn.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))
        payload = "x" * 3000  # about a page per row
        for i in range(3000):  # ~12 MB through the log: far past SQLite's 1,000-page trigger
            async with db.engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (:k, :v)"), {"k": i, "v": payload})
            if i % 100 == 0:
                await asyncio.sleep(0.06)  # requests come and go; the thread works meanwhile
        assert db.checkpointer.checkpoints > 10
        checkpointer = db.checkpointer
        # the log is copied back by a checkpoint begun after the last write (+1: one may
        # have been under way)...
        writes_done = checkpointer.checkpoints
        await eventually(
            _probe(checkpointer),
            lambda seen: seen[0] > writes_done + 1 and _all_copied(seen),
            timeout=10,
            what="copie du journal",
            interval=0.02,
        )
        before = checkpointer.checkpoints
        async with db.engine.begin() as conn:  # ...and restarted by the next writer
            await conn.execute(text("INSERT INTO t VALUES (-1, 'x')"))
        # a checkpoint begun after that write: a few pages, all copied back
        await eventually(
            _probe(checkpointer),
            lambda seen: seen[0] > before + 1 and seen[1][1] < 20 and _all_copied(seen),
            timeout=10,
            what="journal court",
            interval=0.02,
        )
    finally:
        await db.dispose()
    assert db.checkpointer._thread is None  # stopped with the database


def _probe(checkpointer: WalCheckpointer) -> Callable[[], Awaitable[tuple[int, Any]]]:
    async def probe() -> tuple[int, Any]:
        return checkpointer.checkpoints, checkpointer.last

    return probe


def _all_copied(seen: tuple[int, Any]) -> bool:
    last = seen[1]
    return last is not None and last[2] == last[1]  # every frame in the log copied back
