"""Professionals added to a care circle before their first login, invited at it.

A coordinator adds a colleague on the file (the page, ``!cercle ajouter``, ``!inviter``)
whose Cercle account does not exist yet: accounts are made at the first login (Pro Santé
Connect, SSO, an approved request). The invitation cannot be sent; the bot keeps the room and
the person here (its own SQLite file, so a restart forgets nothing), looks for the account
every ``check_seconds`` and hands each found one to ``bring`` (``CircleMembership``), which
invites her if she is still in the circle with access. An entry ends when she is brought in,
or when the circle ends her place or her access.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS awaiting_accounts (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,            -- as the file names her (for the room's notice)
    actor TEXT,                    -- who added her (the invitation is made in her name)
    since_ms INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
"""


@dataclass(frozen=True)
class Awaited:
    room_id: str
    user_id: str
    name: str
    actor: str | None
    since_ms: int


class AwaitingAccounts:
    """The durable list, and the loop that looks for the accounts."""

    def __init__(self, conn: sqlite3.Connection, *, check_seconds: float = 60.0) -> None:
        self._db = conn
        self._db.executescript(_SCHEMA)
        self.check_seconds = check_seconds

    def add(self, room_id: str, user_id: str, *, name: str, actor: str | None) -> None:
        """Wait for her account (again: the latest name and actor win)."""
        with self._db:
            self._db.execute(
                "INSERT INTO awaiting_accounts(room_id, user_id, name, actor, since_ms) "
                "VALUES(?, ?, ?, ?, ?) ON CONFLICT(room_id, user_id) DO UPDATE SET "
                "name=excluded.name, actor=excluded.actor",
                (room_id, user_id, name, actor, int(time.time() * 1000)),
            )

    def remove(self, room_id: str, user_id: str) -> bool:
        with self._db:
            cur = self._db.execute(
                "DELETE FROM awaiting_accounts WHERE room_id=? AND user_id=?", (room_id, user_id)
            )
        return cur.rowcount > 0

    def all(self) -> list[Awaited]:
        rows = self._db.execute(
            "SELECT room_id, user_id, name, actor, since_ms FROM awaiting_accounts "
            "ORDER BY since_ms, room_id"
        ).fetchall()
        return [Awaited(*row) for row in rows]

    async def check_once(
        self,
        exists: Callable[[str], Awaitable[bool]],
        bring: Callable[[Awaited], Awaitable[None]],
    ) -> int:
        """Each awaited person whose account now exists goes to ``bring``; how many did. A
        lookup or a bringing that fails (the homeserver or the dossier away) is tried again
        at the next check."""
        found: dict[str, bool] = {}
        brought = 0
        for awaited in self.all():
            user = awaited.user_id
            if user not in found:
                try:
                    found[user] = await exists(user)
                except Exception:
                    log.warning("compte attendu : recherche impossible, nouvel essai plus tard")
                    return brought
            if not found[user]:
                continue
            try:
                await bring(awaited)
            except Exception:
                log.warning(
                    "compte attendu : invitation non faite room=%s, nouvel essai plus tard",
                    awaited.room_id,
                    exc_info=True,
                )
                continue
            brought += 1
        return brought

    async def run(
        self,
        exists: Callable[[str], Awaitable[bool]],
        bring: Callable[[Awaited], Awaitable[None]],
    ) -> None:
        """Forever: a check every ``check_seconds`` (nothing asked while nobody is awaited)."""
        while True:
            await asyncio.sleep(self.check_seconds)
            await self.check_once(exists, bring)
