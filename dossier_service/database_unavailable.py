"""Whether a failure is the database being out of reach — PostgreSQL down, refusing
connections (too many, shutting down), a connection cut, the pool exhausted, SQLite locked or
its disk failing — rather than a fault of the dossier's own (pure).

Those are answered 503, « réessayez », with a reference logged: the request can simply be
sent again, nothing was written (its transaction never committed). Anything else stays a 500.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa

# PostgreSQL SQLSTATE classes and codes: 08 connection exception, 53 insufficient resources
# (too many connections, disk full, out of memory), 57P01–57P03 shutting down / cannot
# connect now (https://www.postgresql.org/docs/current/errcodes-appendix.html)
_PG_CLASSES = ("08", "53")
_PG_CODES = ("57P01", "57P02", "57P03")
_SQLITE = ("database is locked", "unable to open database file", "disk i/o error", "is full")


def database_unavailable(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _out_of_reach(current):
            return True
        orig = getattr(current, "orig", None)
        current = (
            orig if isinstance(orig, BaseException) else current.__cause__ or current.__context__
        )
    return False


def _out_of_reach(error: BaseException) -> bool:
    if isinstance(error, sa.TimeoutError):  # every pooled connection busy past pool_timeout
        return True
    if isinstance(error, sa.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, ConnectionError | TimeoutError):  # refused, reset; connect timed out
        return True
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and (sqlstate[:2] in _PG_CLASSES or sqlstate in _PG_CODES):
        return True
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        return any(part in message for part in _SQLITE)
    return False
