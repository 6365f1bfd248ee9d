"""Escalation of unacknowledged urgent flags: the room is re-notified, with mentions, every
N minutes until a member other than the flagger acknowledges it (``!vu`` or a reaction on
one of the bot's urgent notices), at most ``max_reminders`` times.

State lives in the bot's SQLite file, so a restart resumes the schedule where it was;
reminders carry a transaction id derived from (room, flag time, reminder number), so a
crash between sending a reminder and recording it cannot produce a second copy.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields

from deployment.conventions import has_row, wait_set

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS escalations (
    room_id TEXT PRIMARY KEY,
    flagger TEXT NOT NULL,
    raised_at_ms INTEGER NOT NULL,
    next_at_ms INTEGER NOT NULL,
    reminders_sent INTEGER NOT NULL DEFAULT 0,
    acknowledged_by TEXT,
    acknowledged_at_ms INTEGER,
    state TEXT NOT NULL              -- 'running' | 'acknowledged' | 'exhausted'
);
CREATE TABLE IF NOT EXISTS urgent_notices (
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);
"""


@dataclass(frozen=True)
class Escalation:
    room_id: str
    flagger: str
    raised_at_ms: int
    next_at_ms: int
    reminders_sent: int
    acknowledged_by: str | None
    acknowledged_at_ms: int | None
    state: str


# an escalation's row, its columns in the order of Escalation's fields: Escalation(*row)
_SELECT = f"SELECT {', '.join(f.name for f in fields(Escalation))} FROM escalations"


# notify(escalation, reminder_number) -> event id of the reminder notice
Notify = Callable[[Escalation, int], Awaitable[str]]


class EscalationStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn
        self._db.executescript(_SCHEMA)

    def start(
        self, room_id: str, flagger: str, raised_at_ms: int, first_at_ms: int, notice: str
    ) -> None:
        self._db.execute("DELETE FROM urgent_notices WHERE room_id=?", (room_id,))
        self._db.execute(
            "INSERT INTO escalations(room_id, flagger, raised_at_ms, next_at_ms, state) "
            "VALUES(?, ?, ?, ?, 'running') ON CONFLICT(room_id) DO UPDATE SET "
            "flagger=excluded.flagger, raised_at_ms=excluded.raised_at_ms, "
            "next_at_ms=excluded.next_at_ms, reminders_sent=0, acknowledged_by=NULL, "
            "acknowledged_at_ms=NULL, state='running'",
            (room_id, flagger, raised_at_ms, first_at_ms),
        )
        self.add_notice(room_id, notice)

    def add_notice(self, room_id: str, event_id: str) -> None:
        self._db.execute(
            "INSERT INTO urgent_notices(room_id, event_id) VALUES(?, ?) ON CONFLICT DO NOTHING",
            (room_id, event_id),
        )

    def is_notice(self, room_id: str, event_id: str) -> bool:
        return has_row(
            self._db,
            "SELECT 1 FROM urgent_notices WHERE room_id=? AND event_id=?",
            (room_id, event_id),
        )

    def get(self, room_id: str) -> Escalation | None:
        row = self._db.execute(f"{_SELECT} WHERE room_id=?", (room_id,)).fetchone()
        return Escalation(*row) if row else None

    def due(self, now_ms: int) -> list[Escalation]:
        rows = self._db.execute(
            f"{_SELECT} WHERE state='running' AND next_at_ms<=? ORDER BY next_at_ms", (now_ms,)
        ).fetchall()
        return [Escalation(*r) for r in rows]

    def next_due_ms(self) -> int | None:
        row = self._db.execute(
            "SELECT min(next_at_ms) FROM escalations WHERE state='running'"
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def record_reminder(self, room_id: str, sent: int, next_at_ms: int, exhausted: bool) -> None:
        self._db.execute(
            "UPDATE escalations SET reminders_sent=?, next_at_ms=?, state=? "
            "WHERE room_id=? AND state='running'",
            (sent, next_at_ms, "exhausted" if exhausted else "running", room_id),
        )

    def acknowledge(self, room_id: str, by: str, at_ms: int) -> None:
        self._db.execute(
            "UPDATE escalations SET acknowledged_by=?, acknowledged_at_ms=?, state='acknowledged' "
            "WHERE room_id=?",
            (by, at_ms, room_id),
        )

    def remove(self, room_id: str) -> None:
        self._db.execute("DELETE FROM escalations WHERE room_id=?", (room_id,))
        self._db.execute("DELETE FROM urgent_notices WHERE room_id=?", (room_id,))


class StaleEscalation(Exception):
    """Raised by the notifier: the room's urgent flag is no longer the one being escalated
    (cleared or acknowledged while the bot died before stopping its escalation)."""


class Escalator:
    """The background task sending the reminders when they fall due."""

    def __init__(
        self,
        store: EscalationStore,
        *,
        interval_seconds: float,
        max_reminders: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.interval_ms = int(interval_seconds * 1000)
        self.max_reminders = max_reminders
        self._clock = clock
        self._notify: Notify | None = None
        self._wake = asyncio.Event()

    def set_notify(self, notify: Notify) -> None:
        self._notify = notify

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def start(self, room_id: str, flagger: str, raised_at_ms: int, notice_event_id: str) -> None:
        if self.max_reminders <= 0:
            return
        self.store.start(
            room_id, flagger, raised_at_ms, raised_at_ms + self.interval_ms, notice_event_id
        )
        self._wake.set()

    def acknowledge(self, room_id: str, by: str, at_ms: int) -> None:
        self.store.acknowledge(room_id, by, at_ms)
        self._wake.set()

    def stop(self, room_id: str) -> None:
        self.store.remove(room_id)
        self._wake.set()

    def is_urgent_notice(self, room_id: str, event_id: str) -> bool:
        return self.store.is_notice(room_id, event_id)

    async def run(self) -> None:
        while True:
            await self.tick()
            next_ms = self.store.next_due_ms()
            wait = None if next_ms is None else max(0.0, (next_ms - self.now_ms()) / 1000)
            self._wake.clear()
            await wait_set(self._wake, wait)

    async def tick(self) -> int:
        """Send every reminder due now; returns how many were sent."""
        sent = 0
        for esc in self.store.due(self.now_ms()):
            number = esc.reminders_sent + 1
            try:
                assert self._notify is not None
                event_id = await self._notify(esc, number)
            except asyncio.CancelledError:
                raise
            except StaleEscalation:
                log.info("escalade arrêtée : urgence levée ou prise en compte room=%s", esc.room_id)
                self.store.remove(esc.room_id)
                continue
            except Exception:
                # counted as a reminder, so that a room the bot can no longer write to
                # stops being retried once the limit is reached
                log.warning("rappel d'urgence non envoyé room=%s", esc.room_id, exc_info=True)
                self.store.record_reminder(
                    esc.room_id,
                    number,
                    self.now_ms() + min(self.interval_ms, 60_000),
                    exhausted=number >= self.max_reminders,
                )
                continue
            current = self.store.get(esc.room_id)
            if current is None or current.state != "running":
                continue  # acknowledged or cleared meanwhile
            self.store.add_notice(esc.room_id, event_id)
            self.store.record_reminder(
                esc.room_id,
                number,
                max(esc.next_at_ms, self.now_ms()) + self.interval_ms,
                exhausted=number >= self.max_reminders,
            )
            sent += 1
        return sent
