"""What the bot reports to the dossier for the activity extraction (issue 18): counts and
timestamps, never content.

- every message of a patient room is counted once (its event id is remembered for
  ``SEEN_DAYS``, so a replay after a crash does not count it twice), per room and Paris day,
  in the bot's SQLite file; ``flush`` queues each changed day's running total through the
  durable outbox (the dossier keeps the largest total it received for that day: a late or
  repeated delivery never adds);
- a flag raised, an urgency acknowledged (linked to the flag by the flag's own identity:
  room, who, when) and a PDF export are queued once, keyed by their event.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, date, datetime, timedelta

from bots.dossier_link.operations import RecordActivity
from bots.outbox import Outbox
from deployment.conventions import PARIS

SEEN_DAYS = 3
ACTIVITY = RecordActivity.name

SCHEMA = """
CREATE TABLE IF NOT EXISTS activity_counts (
    room_id TEXT NOT NULL, day TEXT NOT NULL, count INTEGER NOT NULL,
    reported INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (room_id, day));
CREATE TABLE IF NOT EXISTS activity_seen (
    event_id TEXT PRIMARY KEY, day TEXT NOT NULL);
"""


def paris_day(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(PARIS).date().isoformat()


def flag_ref(room_id: str, by: str, at_ms: int) -> str:
    """A flag's identity, the same when it is raised and when it is acknowledged."""
    return f"{room_id}|{by}|{at_ms}"


class Activity:
    def __init__(self, db: sqlite3.Connection, outbox: Outbox) -> None:
        self.db = db
        self.outbox = outbox
        with db:
            db.executescript(SCHEMA)

    def message(self, room_id: str, event_id: str, ts_ms: int) -> bool:
        """Count one message (False: this event was counted already)."""
        day = paris_day(ts_ms)
        with self.db:
            seen = self.db.execute(
                "INSERT OR IGNORE INTO activity_seen(event_id, day) VALUES (?, ?)", (event_id, day)
            )
            if seen.rowcount == 0:
                return False
            self.db.execute(
                "INSERT INTO activity_counts(room_id, day, count) VALUES (?, ?, 1) "
                "ON CONFLICT(room_id, day) DO UPDATE SET count = count + 1",
                (room_id, day),
            )
        return True

    def flush(self, *, now_ms: int | None = None) -> int:
        """Queue every day whose total changed since it was last queued; forget old ids."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        rows = self.db.execute(
            "SELECT room_id, day, count FROM activity_counts WHERE count > reported"
        ).fetchall()
        for room_id, day, count in rows:
            with self.db:
                self.outbox.enqueue(
                    f"activity:messages:{room_id}|{day}:{count}",
                    ACTIVITY,
                    {
                        "kind": "messages",
                        "room_id": room_id,
                        "ref": f"{room_id}|{day}",
                        "day": day,
                        "count": count,
                        "at_ms": _noon_ms(day),
                    },
                )
                self.db.execute(
                    "UPDATE activity_counts SET reported = ? WHERE room_id = ? AND day = ?",
                    (count, room_id, day),
                )
        horizon = datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(PARIS).date()
        with self.db:
            self.db.execute(
                "DELETE FROM activity_seen WHERE day < ?",
                ((horizon - timedelta(days=SEEN_DAYS)).isoformat(),),
            )
        return len(rows)

    def flag_raised(self, room_id: str, kind: str, *, by: str, at_ms: int) -> None:
        ref = flag_ref(room_id, by, at_ms)
        self.outbox.enqueue(
            f"activity:signalement:{ref}",
            ACTIVITY,
            {
                "kind": "signalement",
                "room_id": room_id,
                "ref": ref,
                "flag_kind": kind,
                "at_ms": at_ms,
            },
        )

    def flag_acknowledged(
        self, room_id: str, *, by: str, at_ms: int, flag_by: str, flag_at_ms: int
    ) -> None:
        ref = f"{flag_ref(room_id, flag_by, flag_at_ms)}|vu|{by}|{at_ms}"
        self.outbox.enqueue(
            f"activity:prise_en_compte:{ref}",
            ACTIVITY,
            {
                "kind": "prise_en_compte",
                "room_id": room_id,
                "ref": ref,
                "of_ref": flag_ref(room_id, flag_by, flag_at_ms),
                "at_ms": at_ms,
            },
        )

    def exported(self, room_id: str, *, event_id: str, at_ms: int) -> None:
        self.outbox.enqueue(
            f"activity:export:{event_id}",
            ACTIVITY,
            {"kind": "export", "room_id": room_id, "ref": event_id, "at_ms": at_ms},
        )


def _noon_ms(day: str) -> int:
    noon = datetime.combine(date.fromisoformat(day), datetime.min.time(), PARIS) + timedelta(
        hours=12
    )
    return int(noon.timestamp() * 1000)
