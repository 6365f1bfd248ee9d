"""SQLAlchemy's aiosqlite driver with one call per statement, in the event loop's thread.

aiosqlite runs every call on the connection's own thread; SQLAlchemy's adapter makes four
such calls per SELECT (open a cursor, execute, fetch all, close) and three per INSERT, each
a thread handoff and an event-loop wake-up. Here a statement is one call that executes it,
fetches its rows and closes its cursor on that thread. Same SQL, same transaction rules,
same exceptions (raised by ``sqlite3``, as before); only the handoffs go.

``InlineDBAPI`` goes one step further for the service's single pooled connection: no
thread at all (see ``InlineConnection``); it is the only way in.

This goes past aiosqlite's public API (``Connection._execute``, ``_tx``, ``_connect``,
``_running``, ``_connection``) and SQLAlchemy's adapter's (``_execute_mutex``): neither offers
a way to run a statement in the caller's thread. The public design, aiosqlite's own driver
(every call a trip to its thread; requests in a first-come-first-served line), was measured
against this one in the same run: ``bench/dossier_load.py --designs service,public,inline-line
--rounds 3`` (SQLite, 32 clients, designs interleaved; load average 8.2 to 9.7 on 2 shared
cores, so requests per second of the server's own CPU are compared, medians of 3 rounds):

                        here (service)    public     (each round, here / public)
    file JSON                789 /s         500 /s     789/555  823/500  644/486
    task dashboard         1,405 /s         789 /s   1,427/789 1,405/823 1,306/728
    note + audit writes      605 /s         372 /s     667/363  588/430  605/372

The upstream source this relies on is pinned by tests/dossier_service/test_upstream_pins.py
and the two libraries to the tested minor versions in pyproject.toml: an upgrade that
changes it fails there, naming this module, instead of changing the service quietly.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[Any, int, int | None, list[Any]]


def _run(raw: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """On the connection's thread: the statement, its rows, its cursor closed."""
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose ``execute`` is a single call to the SQLite thread."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:  # no thread call to open a cursor
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _async_soft_close(self) -> None:
        return None

    def close(self) -> None:
        self._rows.clear()

    async def _trip(self, operation: Any, parameters: Any, many: bool) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await connection._execute(  # type: ignore[no-untyped-call]
                _run, connection._conn, operation, parameters, many
            )
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._trip(operation, parameters, False)
        return self

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        await self._trip(operation, seq_of_parameters, True)
        return self


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor


class _InlineQueue:
    """Stands for aiosqlite's queue to its thread: runs each call at once, here."""

    def put_nowait(self, item: tuple[Any, Any]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as error:  # handed to the awaiting caller
            if future is not None and not future.done():
                future.set_exception(error)
            return
        if future is not None and not future.done():
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection without its thread: every call runs in the event loop's thread.

    The service pools one SQLite connection, so statements never wait on each other inside
    the process, and each takes microseconds (WAL, ``synchronous=NORMAL``): the handoff to
    a thread and back cost more than the statement, and made every request queue twice.
    What this gives up: a slow statement now holds the event loop (every query of the
    service is bounded: indexed lookups and paged lists), and a lock held by another
    process is waited for (``busy_timeout``) without serving meanwhile."""

    def __init__(self, connector: Any) -> None:
        super().__init__(connector, 64)
        self._tx = _InlineQueue()  # type: ignore[assignment]

    def __await__(self) -> Any:
        return self._connect().__await__()  # no thread to start

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class InlineDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """Pass as ``create_async_engine(url, module=InlineDBAPI())`` for sqlite+aiosqlite with a
    pool of one connection: one-trip statements, run in the event loop's thread."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        database = str(arg[0] if arg else kw.pop("database"))
        kw.pop("async_creator_fn", None)
        kw["check_same_thread"] = False  # created and used in the loop's thread; kept explicit

        def connector() -> sqlite3.Connection:
            connection: sqlite3.Connection = sqlite3.connect(database, **kw)
            return connection

        connection: Any = await_(InlineConnection(connector))
        return OneTripConnection(self, connection)
