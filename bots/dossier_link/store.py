"""What the dossier link remembers across restarts, in the bot's SQLite file.

- the position in the dossier's event feed (``seq`` of the last event fully handled);
- the pinned identity message of each patient room (event id, digest of its text);
- overdue tasks already announced (announced once, direct messages once);
- the direct chat opened with each person (overdue reminders, transcripts);
- rooms created for files (so a crash between "room created" and "room linked" does not
  create a second room).
"""

from __future__ import annotations

import sqlite3
import time

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feed_cursor (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS identity_headers (
    room_id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    digest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS overdue_notified (task_id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS direct_rooms (user_id TEXT PRIMARY KEY, room_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS room_links (room_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS room_links_patient ON room_links(patient_id);
CREATE TABLE IF NOT EXISTS file_rooms (
    patient_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
"""


class SyncStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn
        self._db.executescript(_SCHEMA)

    def _first(self, query: str, key: str) -> str | None:
        """The first column (as text) of the row ``query`` finds for ``key``; None: no row."""
        row = self._db.execute(query, (key,)).fetchone()
        return str(row[0]) if row else None

    def _put(self, table: str, key: str, **row: str) -> None:
        """``row`` written into ``table``, in place of the one with the same ``key`` column."""
        columns, marks = ", ".join(row), ", ".join("?" * len(row))
        changes = ", ".join(f"{column}=excluded.{column}" for column in row if column != key)
        self._db.execute(
            f"INSERT INTO {table}({columns}) VALUES({marks}) "
            f"ON CONFLICT({key}) DO UPDATE SET {changes}",
            tuple(row.values()),
        )

    # -- feed position --
    def cursor(self, name: str = "dossier") -> int:
        row = self._db.execute("SELECT seq FROM feed_cursor WHERE name=?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def has_cursor(self, name: str = "dossier") -> bool:
        """Whether the bot ever saved a position in this feed (False: its first start)."""
        return self._first("SELECT 1 FROM feed_cursor WHERE name=?", name) is not None

    def save_cursor(self, seq: int, name: str = "dossier") -> None:
        self._db.execute(
            "INSERT INTO feed_cursor(name, seq) VALUES(?, ?) "
            "ON CONFLICT(name) DO UPDATE SET seq=max(seq, excluded.seq)",
            (name, seq),
        )

    # -- identity message --
    def identity_header(self, room_id: str) -> tuple[str, str] | None:
        row = self._db.execute(
            "SELECT event_id, digest FROM identity_headers WHERE room_id=?", (room_id,)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def save_identity_header(self, room_id: str, event_id: str, digest: str) -> None:
        self._put("identity_headers", "room_id", room_id=room_id, event_id=event_id, digest=digest)

    # -- overdue tasks --
    def overdue_announced(self, task_id: str) -> bool:
        return self._first("SELECT 1 FROM overdue_notified WHERE task_id=?", task_id) is not None

    def mark_overdue_announced(self, task_id: str) -> None:
        self._db.execute(
            "INSERT INTO overdue_notified(task_id, at_ms) VALUES(?, ?) ON CONFLICT DO NOTHING",
            (task_id, int(time.time() * 1000)),
        )

    # -- direct chats --
    def direct_room(self, user_id: str) -> str | None:
        return self._first("SELECT room_id FROM direct_rooms WHERE user_id=?", user_id)

    def save_direct_room(self, user_id: str, room_id: str) -> None:
        self._put("direct_rooms", "user_id", user_id=user_id, room_id=room_id)

    # -- room <-> file links known to the bot --
    def patient_of(self, room_id: str) -> str | None:
        return self._first("SELECT patient_id FROM room_links WHERE room_id=?", room_id)

    def room_of(self, patient_id: str) -> str | None:
        return self._first("SELECT room_id FROM room_links WHERE patient_id=?", patient_id)

    def links(self) -> list[tuple[str, str]]:
        return [(r, p) for r, p in self._db.execute("SELECT room_id, patient_id FROM room_links")]

    def save_link(self, room_id: str, patient_id: str) -> None:
        self._put("room_links", "room_id", room_id=room_id, patient_id=patient_id)

    # -- rooms created for files --
    def file_room(self, patient_id: str) -> str | None:
        return self._first("SELECT room_id FROM file_rooms WHERE patient_id=?", patient_id)

    def save_file_room(self, patient_id: str, room_id: str) -> None:
        self._db.execute(
            "INSERT INTO file_rooms(patient_id, room_id, created_ms) VALUES(?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (patient_id, room_id, int(time.time() * 1000)),
        )
