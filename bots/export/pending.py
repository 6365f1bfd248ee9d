"""Exports asked for and not yet delivered, kept in the bot's SQLite file.

The command is answered at once (« Export en cours… ») and the export runs in the
background; a restart in between would lose it. Each export is written here when it
starts and removed once it is over — delivered, or answered with an error. At the next
start the bot runs again what is left (`ExportService.resume`). Uploads and notices carry
transaction ids derived from the command event, so a second run after a late kill does not
post twice. An export that keeps being interrupted is given up after a few starts.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending_exports (
    command_event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    requester TEXT NOT NULL,
    options TEXT NOT NULL,           -- the command's own words, parsed again at resume
    requested_at INTEGER NOT NULL,   -- unix ms (UTC): what « hier » meant
    starts INTEGER NOT NULL DEFAULT 0,
    progress_event_id TEXT           -- « Export en cours… », edited into the outcome
);
"""


@dataclass(frozen=True)
class PendingExport:
    command_event_id: str
    room_id: str
    requester: str
    options: str
    requested_at: datetime  # the replied-to message is read again from the command event
    starts: int = 0
    progress_event_id: str | None = None


class PendingExports:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(_SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(pending_exports)")}
        if "progress_event_id" not in columns:  # a bot file from before that column
            self.db.execute("ALTER TABLE pending_exports ADD COLUMN progress_event_id TEXT")

    def add(self, export: PendingExport) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO pending_exports (command_event_id, room_id, requester, "
            "options, requested_at, progress_event_id) VALUES (?, ?, ?, ?, ?, ?)",
            (
                export.command_event_id,
                export.room_id,
                export.requester,
                export.options,
                int(export.requested_at.timestamp() * 1000),
                export.progress_event_id,
            ),
        )

    def started_again(self, command_event_id: str) -> int:
        """Counts one more start after a restart; returns how many so far."""
        self.db.execute(
            "UPDATE pending_exports SET starts = starts + 1 WHERE command_event_id = ?",
            (command_event_id,),
        )
        row = self.db.execute(
            "SELECT starts FROM pending_exports WHERE command_event_id = ?", (command_event_id,)
        ).fetchone()
        return int(row[0]) if row else 0

    def remove(self, command_event_id: str) -> None:
        self.db.execute(
            "DELETE FROM pending_exports WHERE command_event_id = ?", (command_event_id,)
        )

    def all(self) -> list[PendingExport]:
        rows = self.db.execute(
            "SELECT command_event_id, room_id, requester, options, requested_at, starts, "
            "progress_event_id FROM pending_exports ORDER BY requested_at"
        ).fetchall()
        return [
            PendingExport(
                event_id,
                room_id,
                requester,
                options,
                datetime.fromtimestamp(at / 1000, UTC),
                int(starts),
                progress,
            )
            for event_id, room_id, requester, options, at, starts, progress in rows
        ]
