"""The directory's door to the dossier's database: plain DB-API connections on the tables
declared in :mod:`dossier_service.models.directory` (schema through Alembic only).

Why plain DB-API and not the dossier's async SQLAlchemy session: the search answers in about
a millisecond with a handful of range scans (``bench/annuaire.py``); it runs in worker
threads with one connection each, and the Pro Santé Connect module runs inside Synapse,
where only the standard library's ``sqlite3`` and Synapse's own ``psycopg2`` are at hand.
SQLite connections are stdlib ``sqlite3``; PostgreSQL ones are ``psycopg2`` behind
:class:`PgConnection`, which takes the same ``?`` placeholders. The SQL written for the
directory is the subset both engines read (``ON CONFLICT``, ``RETURNING``); where they differ
(index hints, ``PRAGMA``) the caller asks :func:`is_sqlite`.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol


class Cursor(Protocol):
    @property
    def description(self) -> Any: ...
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchmany(self, size: int = ..., /) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...
    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> Cursor: ...
    def close(self) -> None: ...


_PLACEHOLDER = re.compile(r"\?")


class PgConnection:
    """A psycopg2 connection that reads ``?`` placeholders and runs in autocommit mode
    unless inside :func:`transaction` (as the sqlite3 connections do)."""

    def __init__(self, dsn: str) -> None:
        import psycopg2  # Synapse's own driver for PostgreSQL (a dependency of Synapse[postgres])

        self._conn = psycopg2.connect(dsn)
        self._conn.autocommit = True
        # bytea as bytes, as sqlite3 gives BLOBs (psycopg2's memoryview compares unequal)
        binary = psycopg2.extensions.new_type(
            psycopg2.BINARY.values,
            "CERCLE_BYTES",
            lambda value, cursor: None if value is None else bytes(psycopg2.BINARY(value, cursor)),
        )
        psycopg2.extensions.register_type(binary, self._conn)

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        cursor = self._conn.cursor()
        cursor.execute(_PLACEHOLDER.sub("%s", sql.replace("%", "%%")), tuple(parameters))
        return cursor

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]]) -> Any:
        from psycopg2.extras import execute_batch

        cursor = self._conn.cursor()
        # many statements per round trip (psycopg2's own executemany sends them one by one)
        execute_batch(
            cursor,
            _PLACEHOLDER.sub("%s", sql.replace("%", "%%")),
            [tuple(p) for p in seq_of_parameters],
            page_size=500,
        )
        return cursor

    def close(self) -> None:
        self._conn.close()


def is_sqlite(conn: Connection) -> bool:
    return isinstance(conn, sqlite3.Connection)


def sqlite_path(url: str) -> str | None:
    """The file behind a SQLite URL (``sqlite[+driver]:///path``) or a bare path, None for
    another engine. Standard library only: this module also runs inside Synapse."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    if scheme.split("+", 1)[0] != "sqlite":
        return None
    path = rest[1:] if rest.startswith("/") else rest  # sqlite:///x relative, ////x absolute
    return path.split("?", 1)[0] or ":memory:"


def libpq_dsn(url: str) -> str:
    """``postgresql+asyncpg://…`` (the dossier's URL) as libpq reads it."""
    scheme, rest = url.split("://", 1)
    if scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValueError("base de données non prise en charge par l'annuaire")
    return "postgresql://" + rest


def connect(url: str | Path, *, check_same_thread: bool = True) -> Connection:
    """A connection to the database at ``url`` (the dossier's ``database_url``, any driver
    suffix, or a bare SQLite path). The schema must exist already (Alembic)."""
    url = str(url)
    path = sqlite_path(url)
    if path is None:
        return PgConnection(libpq_dsn(url))
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=check_same_thread)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA cache_size=-65536")
    return conn


@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """One transaction (SQLite: taking the write lock at once, so that a read-then-write
    never fails half-way on a busy database)."""
    conn.execute("BEGIN IMMEDIATE" if is_sqlite(conn) else "BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def has_schema(conn: Connection) -> bool:
    """Whether the directory's tables exist (Alembic has run on this database)."""
    if is_sqlite(conn):
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        sql = "SELECT 1 FROM information_schema.tables WHERE table_name = ?"
    return conn.execute(sql, ("annuaire_professional",)).fetchone() is not None
