"""What every component of one deployment agrees on, written once.

* ``PARIS``: the zone people read times in (timestamps are stored in UTC, shown in Paris).
* ``FRENCH_MONTHS``, ``FRENCH_MONTHS_SHORT``, ``FRENCH_WEEKDAYS``: the names people read
  dates in (transcripts, reports, pages), Monday first like ``date.weekday()``.
* ``MATRIX_USER_ID`` (and its text): the form of a Matrix user id the components accept
  (``@localpart:server[:port]``, the localpart in the spec's historical lower-case set).
* ``sqlite_pragmas`` / ``open_private_sqlite``: how a component's own SQLite file is opened
  (write-ahead log, ``synchronous=NORMAL``, a busy timeout, the file private to the account);
  ``has_row``: whether a query finds a row in it.
* ``write_private``: a private file (0600) written atomically (temporary name, fsync, rename).
* ``ToldError``: an expected failure whose French ``message`` is shown to the person as is
  (a command's refusal, a form to correct, a mail refused …); each component subclasses it.
* ``bot_shard_localpart``: the account of the bot's shard k (``cercle-bot``, ``cercle-bot-2`` …;
  ``bots/shards.py``), which the deployment creates and the bot logs in with;
  ``BOT_SHARD_ENV``: the variable through which the supervisor tells each of the bot's
  processes its shard (absent: 1, the front).
* ``wait_set``: how a worker loop sleeps until woken or a timeout passes, without the
  ``asyncio.wait_for`` of Python 3.11, which swallows a cancellation that arrives as the event
  is set: the loop then runs on and whoever stops it waits forever.

It lives in ``deployment/`` because every component already depends on it and it depends on
no component (standard library only): ``bots``, ``dossier_service``, ``bridges``, ``backup``,
``cercle`` and the Synapse modules of ``homeserver`` can all import it without a new edge in
the layering. A top-level package would also need every installed copy re-installed.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")

FRENCH_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
                 "septembre", "octobre", "novembre", "décembre")  # fmt: skip
FRENCH_MONTHS_SHORT = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août",
                       "sept.", "oct.", "nov.", "déc.")  # fmt: skip
FRENCH_WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")

MATRIX_USER_ID_TEXT = r"@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(?::\d{1,5})?"  # to embed in a pattern
MATRIX_USER_ID_PATTERN = rf"^{MATRIX_USER_ID_TEXT}$"  # for pydantic's ``pattern``
MATRIX_USER_ID = re.compile(MATRIX_USER_ID_PATTERN)


BOT_SHARD_ENV = "CERCLE_BOT_SHARD"


def bot_shard_localpart(localpart: str, shard: int) -> str:
    """``cercle-bot`` for the front (shard 1, the account every deployment already has),
    ``cercle-bot-k`` for shard k."""
    return localpart if shard == 1 else f"{localpart}-{shard}"


def sqlite_pragmas(conn: Any, *, busy_timeout_ms: int, foreign_keys: bool = False) -> None:
    """WAL, ``synchronous=NORMAL`` and a busy timeout on ``conn`` (a sqlite3 connection or a
    DB-API cursor). NORMAL in WAL mode: a committed row survives the process being killed;
    after a power cut the WAL tail may be lost (each store says why that is acceptable)."""
    if foreign_keys:
        conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")


def open_private_sqlite(
    path: Path, *, busy_timeout_ms: int = 5000, check_same_thread: bool = False
) -> sqlite3.Connection:
    """A component's own SQLite file (its folder made if needed), in autocommit mode, with
    ``sqlite_pragmas``, readable by the deployment's account only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=check_same_thread)
    sqlite_pragmas(conn, busy_timeout_ms=busy_timeout_ms)
    path.chmod(0o600)
    return conn


def has_row(conn: sqlite3.Connection, query: str, params: tuple[Any, ...]) -> bool:
    """Whether ``query`` (``SELECT 1 FROM … WHERE …``) finds a row."""
    return conn.execute(query, params).fetchone() is not None


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` (mode 0600) atomically: written to a temporary name, then renamed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


class ToldError(Exception):
    """An expected failure told to a person as is: ``message`` is French and carries neither
    exception text nor patient data (``str(error)`` is the same text)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def wait_set(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set (True) or ``timeout`` seconds pass (False; None: no limit).

    ``asyncio.wait_for(event.wait(), timeout)`` on Python 3.11 returns normally when the task
    is cancelled in the same turn as the event is set (the inner wait is done, so it hands back
    its result and drops the cancellation): a worker loop stopped at that moment goes on
    looping, and the ``gather`` that stops it never returns. ``asyncio.timeout`` raises the
    cancellation.
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
