"""Folders as spaces: "Urgences", "Demandes", "À traiter".

Granularity: **one set of folders per person**, created lazily by the bot the first time a
room that person belongs to is flagged, with that person (and the bot) as the only members.
Their children are exactly the flagged rooms the person is a joined member of.

Why per person, for a region of 50,000 professionals:
- a space's children (``m.space.child`` state) are visible to every member of the space; a
  shared folder (per deployment or per structure) would show everyone the ids of rooms they
  are not in, and per structure does not fit care circles that cross structures;
- Element's space filter then shows each professional exactly their own flagged rooms;
- cost stays proportional to the care circle: flagging a room of k members writes k
  ``m.space.child`` events (k is ~5–15), and a space has 2 members, so no state fan-out to
  thousands of members (a regional "Urgences" space would push every change to everyone);
- spaces exist only for people who have had a flagged room (at most 3 per person).

Links already written are remembered in the bot's SQLite file, so reconciling a room
writes only the differences.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from bots.flags.model import ORDER, FlagKind, RoomFlags
from bots.matrix.initial_state import INVITE_ONLY, history_visible
from bots.matrix.io import MatrixIO, MatrixRequestError
from bots.matrix.room_once import create_room_once
from deployment.conventions import has_row

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS folder_spaces (
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    space_id TEXT NOT NULL,
    PRIMARY KEY (user_id, kind)
);
CREATE TABLE IF NOT EXISTS folder_links (
    space_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (space_id, room_id)
);
CREATE INDEX IF NOT EXISTS folder_links_by_room ON folder_links(room_id);
"""

TOPICS = {
    FlagKind.URGENT: "Salons signalés en urgence dont vous êtes membre (tenu par le bot Cercle).",
    FlagKind.REQUEST: "Salons portant une demande dont vous êtes membre (tenu par le bot Cercle).",
    FlagKind.TODO: "Salons à traiter dont vous êtes membre (tenu par le bot Cercle).",
}


def personal_space_request(
    user_id: str, name: str, topic: str, *, keepers: Sequence[str] = ()
) -> dict[str, Any]:
    """The creation request of a folder space of one person, held by a bot: the person may
    read it, only the bot changes it (also the mail bridge's "Courriers" folder).
    ``keepers``: the bot's other accounts (bots/shards.py), invited at the bot's level, so
    that the account of each of her rooms files it in the same folder."""
    return dict(
        space=True,
        name=name,
        topic=topic,
        invite=[user_id, *keepers],
        initial_state=[INVITE_ONLY, history_visible("joined")],
        power_level_override={
            # the bot is the creator (room v12: unlimited)
            "users": {user_id: 0, **dict.fromkeys(keepers, 100)},
            "events_default": 100,
            "state_default": 100,
            "invite": 100,
        },
    )


class FolderSpaces:
    def __init__(
        self,
        io: MatrixIO,
        conn: sqlite3.Connection,
        *,
        bot_user_id: str,
        server_name: str,
        siblings: Sequence[str] = (),
    ) -> None:
        self.io = io
        self.siblings = tuple(siblings)  # the bot's other accounts, keepers of the same spaces
        self._db = conn
        self._db.executescript(_SCHEMA)
        self.bot_user_id = bot_user_id
        self.server_name = server_name
        self._person_locks: dict[str, asyncio.Lock] = {}

    def space_of(self, user_id: str, kind: FlagKind) -> str | None:
        row = self._db.execute(
            "SELECT space_id FROM folder_spaces WHERE user_id=? AND kind=?", (user_id, kind.value)
        ).fetchone()
        return str(row[0]) if row else None

    def linked(self, room_id: str, kind: FlagKind) -> dict[str, str]:
        """user id -> space id for the links of ``room_id`` in ``kind`` folders."""
        rows = self._db.execute(
            "SELECT user_id, space_id FROM folder_links WHERE room_id=? AND kind=?",
            (room_id, kind.value),
        ).fetchall()
        return {u: s for u, s in rows}

    def children(self, space_id: str) -> set[str]:
        rows = self._db.execute("SELECT room_id FROM folder_links WHERE space_id=?", (space_id,))
        return {r[0] for r in rows}

    async def sync_room(self, room_id: str, flags: RoomFlags, members: Iterable[str]) -> None:
        """Make the folders of the room's members hold the room exactly for its flags."""
        people = {m for m in members if m != self.bot_user_id}
        for kind in ORDER:
            wanted = people if kind in flags.kinds else set()
            current = self.linked(room_id, kind)
            for user_id in sorted(wanted - current.keys()):
                space_id = await self._ensure_space(user_id, kind)
                await self.io.put_state(
                    space_id,
                    "m.space.child",
                    {"via": [self.server_name], "suggested": False},
                    room_id,
                )
                self._db.execute(
                    "INSERT INTO folder_links(space_id, room_id, user_id, kind) VALUES(?,?,?,?) "
                    "ON CONFLICT DO NOTHING",
                    (space_id, room_id, user_id, kind.value),
                )
            for user_id in sorted(current.keys() - wanted):
                space_id = current[user_id]
                await self.io.put_state(space_id, "m.space.child", {}, room_id)
                self._db.execute(
                    "DELETE FROM folder_links WHERE space_id=? AND room_id=?", (space_id, room_id)
                )

    async def _ensure_space(self, user_id: str, kind: FlagKind) -> str:
        lock = self._person_locks.setdefault(user_id, asyncio.Lock())
        async with lock:
            existing = self.space_of(user_id, kind)
            if existing:
                return existing
            request = personal_space_request(
                user_id, kind.folder, TOPICS[kind], keepers=self.siblings
            )
            # once per person and folder, even when killed before the row below is written
            space_id, created = await create_room_once(
                self.io.client, self.io, f"folder|{user_id}|{kind.value}", request
            )
            if not created and space_id not in self.io.client.rooms:
                # made by another of the bot's accounts, which invites this one
                await self._join_sibling_space(space_id)
            self._db.execute(
                "INSERT INTO folder_spaces(user_id, kind, space_id) VALUES(?,?,?)",
                (user_id, kind.value, space_id),
            )
            log.info("dossier %s créé pour %s : %s", kind.value, user_id, space_id)
            return space_id

    async def _join_sibling_space(self, space_id: str, wait_seconds: float = 15.0) -> None:
        """Synapse makes a room's alias before it sends the creation's invitations: the
        alias of a folder another account is making may be found a moment before this
        account is invited. Refused meanwhile, the join is tried again, then the refusal
        raised (a folder made before the shards, while the front has not let them in)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while True:
            try:
                await self.io.join(space_id)
                return
            except MatrixRequestError as exc:
                if exc.errcode != "M_FORBIDDEN" or loop.time() > deadline:
                    raise
            await asyncio.sleep(0.5)

    def linked_any(self, room_id: str) -> bool:
        return has_row(self._db, "SELECT 1 FROM folder_links WHERE room_id=? LIMIT 1", (room_id,))

    async def admit_siblings(self) -> int:
        """The spaces this account made before the bot had other accounts (``bot.shards``
        raised): each sibling invited at the bot's level, so that it may file its rooms
        there too. Returns how many invitations were sent."""
        sent = 0
        rows = self._db.execute("SELECT DISTINCT space_id FROM folder_spaces").fetchall()
        for (space_id,) in rows:
            room = self.io.client.rooms.get(space_id)
            if room is None or not self.siblings:
                continue
            missing = [s for s in self.siblings if s not in room.users]
            if not missing:
                continue
            levels = await self.io.get_state(space_id, "m.room.power_levels") or {}
            users = dict(levels.get("users") or {})
            if any(users.get(s) != 100 for s in missing):
                users.update(dict.fromkeys(missing, 100))
                await self.io.put_state(space_id, "m.room.power_levels", {**levels, "users": users})
            for sibling in missing:
                await self.io.invite(space_id, sibling)
                sent += 1
        return sent
