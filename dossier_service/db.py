"""The async engine and session factory, built by ``create_app`` (no globals)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import sqlite_driver
from dossier_service.fair_pool import FairAsyncPool


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on any exception."""
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def build_database(url: str, *, echo: bool = False) -> Database:
    kwargs: dict[str, Any] = {"echo": echo}
    if url.startswith("sqlite"):
        # one writer at a time: SQLite serialises writes anyway, a single connection avoids
        # "database is locked" between pooled connections.
        kwargs["pool_size"] = 1
        kwargs["max_overflow"] = 0
        kwargs["pool_timeout"] = 60
        # requests wait for that connection in the order they came (see fair_pool)
        kwargs["poolclass"] = FairAsyncPool
        # sessions and connections always end their transaction (commit, or rollback on
        # close), so the pool's extra rollback of every returned connection is only a
        # wasted trip to SQLite's thread
        kwargs["pool_reset_on_return"] = None
        if url.startswith("sqlite+aiosqlite") and sqlite_driver.available():
            # one call per statement instead of three or four, in the loop's own thread
            # (one pooled connection: nothing to wait for inside the process)
            kwargs["module"] = sqlite_driver.InlineDBAPI()
    else:
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 10
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    return Database(engine=engine, sessions=sessions)


async def connection_of(session: AsyncSession) -> AsyncConnection:
    """The session's connection, for Core statements on hot paths (same transaction, no
    ORM machinery). Pending ORM changes are flushed first, as the session's autoflush would
    before one of its own statements."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    return await session.connection()
