"""The async engine and session factory, built by ``create_app`` (no globals)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from deployment.conventions import sqlite_pragmas
from dossier_service import sqlite_driver
from dossier_service.fair_pool import FairAsyncPool
from dossier_service.file_revisions import ChangeNotices, FileRevisions
from dossier_service.revoked_sessions import RevokedSessions
from dossier_service.revoked_sessions import words as revoked_words
from dossier_service.services.sessions import ENDED
from dossier_service.sqlite_checkpoint import WalCheckpointer

WAL_SIZE_LIMIT = 64 * 1024 * 1024  # the log file is cut back to this after a checkpoint


def _sqlite_pragmas(*, checkpoints_elsewhere: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        sqlite_pragmas(cursor, busy_timeout_ms=10000, foreign_keys=True)
        cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        if checkpoints_elsewhere:  # see sqlite_checkpoint: no fsync inside a request
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    return on_connect


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    checkpointer: WalCheckpointer | None = None
    # this process's count of committed changes per file, where it is the only writer
    revisions: FileRevisions | None = None
    # PostgreSQL: changes committed by any process, NOTIFYed (file_revisions.ChangeNotices)
    notices: ChangeNotices | None = None
    # the sessions ended before their time, in memory (PostgreSQL: while hearing the others)
    revoked: RevokedSessions | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def file_revision(self, patient_id: str) -> Hashable | None:
        """The key of one file's sections in memory, as :meth:`change_epoch` for one file;
        ``None``: read it from the database (``read_models.revision``)."""
        if self.revisions is not None:
            return self.revisions.of(patient_id)
        if self.notices is not None:
            return self.notices.revision_of(patient_id)
        return None

    def change_epoch(self) -> Hashable | None:
        """The key of what is kept in memory across files (the task dashboards): a number
        that moves with every committed change this process knows of — its own count where it
        is the only writer, the others' notices too on PostgreSQL; ``None`` when it cannot
        know (PostgreSQL, the listener away), and nothing may then be served from memory."""
        if self.revisions is not None:
            return self.revisions.total
        if self.notices is not None:
            return self.notices.epoch()
        return None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on any exception."""
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.checkpointer is not None:
            self.checkpointer.stop()


def engine_options(url: str) -> dict[str, Any]:
    """The pool and the driver, as measured (``bench/dossier_load.py --designs``)."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # one writer at a time: SQLite serialises writes anyway, a single connection avoids
        # "database is locked" between pooled connections.
        kwargs["pool_size"] = 1
        kwargs["max_overflow"] = 0
        kwargs["pool_timeout"] = 60
        # sessions and connections always end their transaction (commit, or rollback on
        # close), so the pool's extra rollback of every returned connection is only a
        # wasted trip to SQLite's thread
        kwargs["pool_reset_on_return"] = None
        if url.startswith("sqlite+aiosqlite"):
            # one call per statement instead of three or four, in the loop's own thread
            # (one pooled connection: nothing to wait for inside the process)
            kwargs["module"] = sqlite_driver.InlineDBAPI()
    else:
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 10
        # no JIT compilation for short queries (a plan overestimated before the statistics
        # are gathered is compiled at every run, as Synapse's were: homeserver.yaml.j2)
        kwargs["connect_args"] = {"server_settings": {"jit": "off"}}
    # requests wait for a connection in the order they came (see fair_pool)
    kwargs["poolclass"] = FairAsyncPool
    return kwargs


def build_database(
    url: str, *, echo: bool = False, options: dict[str, Any] | None = None
) -> Database:
    """``options``: the engine's, when not `engine_options(url)` (the benchmark's designs)."""
    engine = create_async_engine(
        url, echo=echo, **(engine_options(url) if options is None else options)
    )
    checkpointer = None
    revisions = None
    revoked = None
    session_class: type[Session] = Session
    if engine.dialect.name == "sqlite":
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            checkpointer = WalCheckpointer(path)
        event.listen(
            engine.sync_engine,
            "connect",
            _sqlite_pragmas(checkpoints_elsewhere=checkpointer is not None),
        )
        if checkpointer is not None:
            checkpointer.start()
        # one service process, one connection: sole writer
        revisions = FileRevisions()
        revoked = RevokedSessions()
        session_class = type("DossierSession", (Session,), {})  # listeners for this db only
        revisions.watch(session_class)
        revoked.watch(session_class)
    notices = None
    if engine.dialect.name == "postgresql":
        notices = ChangeNotices()
        session_class = type("DossierSession", (Session,), {})
        notices.watch(session_class)
        # the ended sessions in memory too, while this process hears the others' notices
        revoked = RevokedSessions(trusted=lambda: notices is not None and notices.hearing)
        notices.also_tell(ENDED, revoked_words)
        notices.subscribe(revoked.heard)
        revoked.watch(session_class)
    sessions = async_sessionmaker(
        engine, class_=AsyncSession, sync_session_class=session_class, expire_on_commit=False
    )
    return Database(
        engine=engine,
        sessions=sessions,
        checkpointer=checkpointer,
        revisions=revisions,
        notices=notices,
        revoked=revoked,
    )


READER_SETTINGS = (
    ("default_transaction_read_only", "on"),
    ("max_parallel_workers_per_gather", "0"),
    ("jit", "off"),
)


def build_reader(url: str) -> Database:
    """A read-only handle on ``url`` for another process than the service (an extraction's
    child): one connection, kept for all its short transactions (not one per transaction: a
    thread each on SQLite, a login each on PostgreSQL), no checkpoints (the service does
    them), and read-only in the database's own terms — this process never writes.

    On PostgreSQL its backend runs at the same priority as the service's (the server has no
    other), so the reader also asks it to stay within one process: no parallel workers (a
    year's aggregate would otherwise take two more backends, three cores' worth of the
    machine the readers of the dossier share) and no JIT compilation (bursts of CPU for
    queries that run once)."""
    connect_args: dict[str, Any] = {}
    if make_url(url).get_backend_name() == "postgresql":  # asyncpg (config.py's URLs)
        connect_args["server_settings"] = dict(READER_SETTINGS)
    engine = create_async_engine(url, pool_size=1, max_overflow=0, connect_args=connect_args)
    if engine.dialect.name == "sqlite":

        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA query_only=ON")
            cursor.close()

        event.listen(engine.sync_engine, "connect", on_connect)
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    return Database(engine=engine, sessions=sessions)


async def connection_of(session: AsyncSession) -> AsyncConnection:
    """The session's connection, for Core statements on hot paths (same transaction, no
    ORM machinery). Pending ORM changes are flushed first, as the session's autoflush would
    before one of its own statements."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    return await session.connection()
