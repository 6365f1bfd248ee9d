"""What the bot remembers of each newcomer of a patient's conversation, and the pure rules
deciding what their history still needs (issue 11).

One row per (room, person) the bot brought in or saw join: who asked, whether the bot
itself sent the invitation (only then does Element's crypto accept the bot's key bundle),
when they joined, which of their devices received the MSC4268 bundle, when the transcript
PDF went to them (once per person and room), and when they were offered it. The rows live
in the bot's SQLite file (``bot.sqlite3``), so a restart keeps watching a newcomer whose
device gets cross-signed the next morning. Identifiers and times only: no message text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

_SCHEMA = """
CREATE TABLE IF NOT EXISTS arrivals (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    actor TEXT,                       -- who asked for the invitation (None: unknown)
    by_bot INTEGER NOT NULL,          -- the bot sent the invitation (bundles accepted)
    invited_at_ms INTEGER NOT NULL,
    joined_at_ms INTEGER,
    left_at_ms INTEGER,
    transcript_at_ms INTEGER,         -- the PDF sent (once per person and room)
    offered_at_ms INTEGER,            -- the PDF offered after undecryptable-key signs
    PRIMARY KEY (room_id, user_id)
);
CREATE TABLE IF NOT EXISTS arrival_devices (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    sent_at_ms INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id, device_id)
);
CREATE INDEX IF NOT EXISTS arrivals_by_user ON arrivals(user_id);
"""

_COLUMNS = (
    "room_id, user_id, actor, by_bot, invited_at_ms, joined_at_ms, left_at_ms, "
    "transcript_at_ms, offered_at_ms"
)


@dataclass(frozen=True)
class Arrival:
    room_id: str
    user_id: str
    actor: str | None
    by_bot: bool
    invited_at_ms: int
    joined_at_ms: int | None
    left_at_ms: int | None
    transcript_at_ms: int | None
    offered_at_ms: int | None
    devices: frozenset[str] = frozenset()


# -- pure rules ----------------------------------------------------------------------------


def watching(arrival: Arrival, now_ms: int, window_ms: int) -> bool:
    """Whether a new or newly cross-signed device of the newcomer should still get the
    bundle: the bot invited them, they have not left, and it is within the window after the
    invitation (Element accepts a bundle up to 24 h after the join)."""
    return (
        arrival.by_bot
        and arrival.left_at_ms is None
        and now_ms - (arrival.joined_at_ms or arrival.invited_at_ms) <= window_ms
    )


def transcript_due(arrival: Arrival, now_ms: int, grace_ms: int) -> bool:
    """The fallback: joined ``grace_ms`` ago or more, no device of theirs could take the
    keys, and no transcript sent yet. A newcomer invited by someone else (their client
    shares its own bundle, the bot's would be refused) is judged the same way: without a
    cross-signed device, no client could have given them the keys."""
    return (
        arrival.joined_at_ms is not None
        and arrival.left_at_ms is None
        and arrival.transcript_at_ms is None
        and not arrival.devices
        and now_ms - arrival.joined_at_ms >= grace_ms
    )


def history_way(arrival: Arrival, grace_minutes: float) -> str:
    """The French sentence saying which way the history went (notebook, inviter)."""
    parts = []
    if arrival.devices:
        n = len(arrival.devices)
        parts.append(
            f"clés de l'historique partagées (MSC4268) avec {n} appareil{'s' if n > 1 else ''}"
        )
    if arrival.transcript_at_ms is not None:
        parts.append("historique envoyé en transcription PDF dans une conversation directe")
    if parts:
        return " ; ".join(parts)
    minutes = f"{grace_minutes:g}"
    return (
        "aucun appareil ne peut encore recevoir les clés de l'historique : elles seront "
        "envoyées dès qu'un appareil vérifié apparaîtra, sinon une transcription PDF "
        f"{minutes} min après son arrivée"
    )


# -- storage -------------------------------------------------------------------------------


class ArrivalStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn
        self._db.executescript(_SCHEMA)

    def get(self, room_id: str, user_id: str) -> Arrival | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM arrivals WHERE room_id=? AND user_id=?", (room_id, user_id)
        ).fetchone()
        return self._arrival(row) if row else None

    def _arrival(self, row: tuple[object, ...]) -> Arrival:
        room_id, user_id = str(row[0]), str(row[1])
        devices = frozenset(
            str(d)
            for (d,) in self._db.execute(
                "SELECT device_id FROM arrival_devices WHERE room_id=? AND user_id=?",
                (room_id, user_id),
            )
        )
        times = [None if v is None else int(str(v)) for v in row[5:9]]
        return Arrival(
            room_id=room_id,
            user_id=user_id,
            actor=None if row[2] is None else str(row[2]),
            by_bot=bool(row[3]),
            invited_at_ms=int(str(row[4])),
            joined_at_ms=times[0],
            left_at_ms=times[1],
            transcript_at_ms=times[2],
            offered_at_ms=times[3],
            devices=devices,
        )

    def invited(
        self, room_id: str, user_id: str, *, actor: str | None, by_bot: bool, at_ms: int
    ) -> Arrival:
        """A new invitation (a former one, left since, starts again: its devices will need
        the bundle again on the new join; the transcript stays sent)."""
        with self._db:
            self._db.execute(
                "DELETE FROM arrival_devices WHERE room_id=? AND user_id=? AND EXISTS ("
                "SELECT 1 FROM arrivals WHERE room_id=? AND user_id=? AND left_at_ms IS NOT NULL)",
                (room_id, user_id, room_id, user_id),
            )
            self._db.execute(
                "INSERT INTO arrivals(room_id, user_id, actor, by_bot, invited_at_ms) "
                "VALUES(?, ?, ?, ?, ?) ON CONFLICT(room_id, user_id) DO UPDATE SET "
                "actor=excluded.actor, by_bot=excluded.by_bot, "
                "invited_at_ms=excluded.invited_at_ms, joined_at_ms=NULL, left_at_ms=NULL "
                "WHERE arrivals.left_at_ms IS NOT NULL",
                (room_id, user_id, actor, int(by_bot), at_ms),
            )
        found = self.get(room_id, user_id)
        assert found is not None
        return found

    def joined(self, room_id: str, user_id: str, at_ms: int) -> None:
        with self._db:
            self._db.execute(
                "UPDATE arrivals SET joined_at_ms=? WHERE room_id=? AND user_id=? "
                "AND joined_at_ms IS NULL",
                (at_ms, room_id, user_id),
            )

    def left(self, room_id: str, user_id: str, at_ms: int) -> None:
        with self._db:
            self._db.execute(
                "UPDATE arrivals SET left_at_ms=? WHERE room_id=? AND user_id=?",
                (at_ms, room_id, user_id),
            )

    def devices_sent(self, room_id: str, user_id: str, devices: Iterable[str], at_ms: int) -> None:
        with self._db:
            self._db.executemany(
                "INSERT INTO arrival_devices(room_id, user_id, device_id, sent_at_ms) "
                "VALUES(?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(room_id, user_id, d, at_ms) for d in devices],
            )

    def _claim(self, column: str, room_id: str, user_id: str, at_ms: int, also: str = "") -> bool:
        with self._db:
            cur = self._db.execute(
                f"UPDATE arrivals SET {column}=? WHERE room_id=? AND user_id=? "
                f"AND {column} IS NULL{also}",
                (at_ms, room_id, user_id),
            )
        return cur.rowcount == 1

    def _release(self, column: str, room_id: str, user_id: str) -> None:
        with self._db:
            self._db.execute(
                f"UPDATE arrivals SET {column}=NULL WHERE room_id=? AND user_id=?",
                (room_id, user_id),
            )

    def transcript_sent(self, room_id: str, user_id: str, at_ms: int) -> bool:
        """Claim the transcript for (room, person): False when it was already sent."""
        return self._claim("transcript_at_ms", room_id, user_id, at_ms)

    def transcript_failed(self, room_id: str, user_id: str) -> None:
        """The claimed transcript could not be sent: it is due again."""
        self._release("transcript_at_ms", room_id, user_id)

    def offered(self, room_id: str, user_id: str, at_ms: int) -> bool:
        """Claim the offer of the transcript: False when already offered (or sent)."""
        return self._claim(
            "offered_at_ms", room_id, user_id, at_ms, also=" AND transcript_at_ms IS NULL"
        )

    def offer_failed(self, room_id: str, user_id: str) -> None:
        self._release("offered_at_ms", room_id, user_id)

    def of_user(self, user_id: str) -> list[Arrival]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM arrivals WHERE user_id=? AND left_at_ms IS NULL", (user_id,)
        ).fetchall()
        return [self._arrival(r) for r in rows]

    def awaiting_history(self) -> list[Arrival]:
        """Joined newcomers with neither a device served nor a transcript."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM arrivals a WHERE joined_at_ms IS NOT NULL "
            "AND left_at_ms IS NULL AND transcript_at_ms IS NULL AND NOT EXISTS ("
            "SELECT 1 FROM arrival_devices d WHERE d.room_id=a.room_id AND d.user_id=a.user_id)"
        ).fetchall()
        return [self._arrival(r) for r in rows]
