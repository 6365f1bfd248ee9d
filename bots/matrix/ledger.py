"""The bot's own SQLite file (``<var>/bot/bot.sqlite3``): sync token, handled events, the
bot's join time per room and the events waiting for their keys.

Writes are a few rows per event; SQLite in WAL mode with ``synchronous=NORMAL`` keeps them
well under a millisecond, so they are done on the event loop. Other components (folders,
escalation) keep their tables in the same file through the same connection.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deployment.conventions import open_private_sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS handled_events (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    status TEXT NOT NULL,            -- 'started' | 'done'
    updated_at INTEGER NOT NULL      -- unix ms (UTC)
);
CREATE TABLE IF NOT EXISTS room_joins (room_id TEXT PRIMARY KEY, joined_ts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS undecrypted_events (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    source TEXT NOT NULL,            -- the encrypted event as received (ciphertext only)
    first_seen INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS undecrypted_by_session ON undecrypted_events(session_id);
"""


def open_database(path: Path) -> sqlite3.Connection:
    return open_private_sqlite(path, busy_timeout_ms=5000)


def now_ms() -> int:
    return int(time.time() * 1000)


class EventLedger:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn
        self._db.executescript(_SCHEMA)

    # -- sync token (saved only once every event of the batch is handled) --
    def sync_token(self) -> str | None:
        row = self._db.execute("SELECT value FROM sync_state WHERE key='next_batch'").fetchone()
        return row[0] if row else None

    def save_sync_token(self, token: str) -> None:
        self._db.execute(
            "INSERT INTO sync_state(key, value) VALUES('next_batch', ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (token,),
        )

    # -- handled events --
    def is_done(self, event_id: str) -> bool:
        row = self._db.execute(
            "SELECT status FROM handled_events WHERE event_id=?", (event_id,)
        ).fetchone()
        return bool(row and row[0] == "done")

    def mark_started(self, event_id: str, room_id: str) -> None:
        self._db.execute(
            "INSERT INTO handled_events(event_id, room_id, status, updated_at) "
            "VALUES(?, ?, 'started', ?) ON CONFLICT(event_id) DO NOTHING",
            (event_id, room_id, now_ms()),
        )

    def mark_done(self, event_id: str, room_id: str) -> None:
        self._db.execute(
            "INSERT INTO handled_events(event_id, room_id, status, updated_at) "
            "VALUES(?, ?, 'done', ?) ON CONFLICT(event_id) DO UPDATE SET status='done', "
            "updated_at=excluded.updated_at",
            (event_id, room_id, now_ms()),
        )

    def count_done(self) -> int:
        return int(
            self._db.execute("SELECT count(*) FROM handled_events WHERE status='done'").fetchone()[
                0
            ]
        )

    def prune(self, older_than_ms: int) -> None:
        self._db.execute("DELETE FROM handled_events WHERE updated_at < ?", (older_than_ms,))
        self._db.execute("DELETE FROM undecrypted_events WHERE first_seen < ?", (older_than_ms,))

    # -- when the bot joined each room (events before are ignored) --
    def joined_ts(self, room_id: str) -> int | None:
        row = self._db.execute(
            "SELECT joined_ts FROM room_joins WHERE room_id=?", (room_id,)
        ).fetchone()
        return int(row[0]) if row else None

    def record_join(self, room_id: str, ts: int) -> None:
        self._db.execute(
            "INSERT INTO room_joins(room_id, joined_ts) VALUES(?, ?) ON CONFLICT(room_id) "
            "DO UPDATE SET joined_ts=max(joined_ts, excluded.joined_ts)",
            (room_id, ts),
        )

    def forget_join(self, room_id: str) -> None:
        self._db.execute("DELETE FROM room_joins WHERE room_id=?", (room_id,))

    # -- events waiting for their room key --
    def add_undecrypted(
        self, event_id: str, room_id: str, session_id: str, source: dict[str, Any]
    ) -> bool:
        cur = self._db.execute(
            "INSERT INTO undecrypted_events(event_id, room_id, session_id, source, first_seen) "
            "VALUES(?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (event_id, room_id, session_id, json.dumps(source), now_ms()),
        )
        return cur.rowcount > 0

    def undecrypted_for_session(self, session_id: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        rows = self._db.execute(
            "SELECT event_id, room_id, source FROM undecrypted_events WHERE session_id=?",
            (session_id,),
        ).fetchall()
        for event_id, room_id, source in rows:
            yield event_id, room_id, json.loads(source)

    def all_undecrypted(self) -> list[tuple[str, str, dict[str, Any]]]:
        rows = self._db.execute(
            "SELECT event_id, room_id, source FROM undecrypted_events ORDER BY first_seen"
        ).fetchall()
        return [(e, r, json.loads(s)) for e, r, s in rows]

    def remove_undecrypted(self, event_id: str) -> None:
        self._db.execute("DELETE FROM undecrypted_events WHERE event_id=?", (event_id,))
