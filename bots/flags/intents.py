"""Which flag a ``!fait`` command set out to clear, recorded before the room's state changes.

The state of a cleared flag keeps no trace of the command that cleared it. If the bot dies
after saving the state but before the rest (room name, folders, notice, notebook), the
replayed command finds nothing to clear: this record tells it that the clear was its own,
so it finishes the job instead of answering "no flag". Rows live a week (the ledger's own
retention is shorter), in the bot's SQLite file.
"""

from __future__ import annotations

import sqlite3
import time

from bots.flags.model import FlagKind

_SCHEMA = """
CREATE TABLE IF NOT EXISTS flag_clear_intents (
    command_event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
"""
KEEP_MS = 7 * 86_400_000


class ClearIntents:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn
        self._db.executescript(_SCHEMA)

    def record(self, command_event_id: str, room_id: str, kind: FlagKind) -> None:
        now = int(time.time() * 1000)
        self._db.execute("DELETE FROM flag_clear_intents WHERE created_ms < ?", (now - KEEP_MS,))
        self._db.execute(
            "INSERT INTO flag_clear_intents(command_event_id, room_id, kind, created_ms) "
            "VALUES(?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (command_event_id, room_id, kind.value, now),
        )

    def cleared_by(self, command_event_id: str, room_id: str) -> FlagKind | None:
        row = self._db.execute(
            "SELECT kind FROM flag_clear_intents WHERE command_event_id=? AND room_id=?",
            (command_event_id, room_id),
        ).fetchone()
        return FlagKind(row[0]) if row else None
