"""A patient room made by one of the bot's accounts for another (bots/shards.py): the maker
stays in it until the room's account has joined, then leaves it.

Why wait: a room whose last joined member has left can no longer be joined from this
server (Synapse then needs another server in the room to join through), so a maker that
left at once, before the invited account and the professional had joined, left a dead
room — found by the two-account test under load. The maker answers nothing in the room
meanwhile (``elsewhere``: the handlers leave such rooms to their account).

The handover is finished from three places, whichever comes first: right after the
creation (the account may already be in), the account's join seen in a sync, and after
the first sync of a restart (a maker killed between the two).
"""

from __future__ import annotations

import logging
from typing import Any

from nio import AsyncClient, RoomMemberEvent

from bots.background_tasks import BackgroundTasks
from bots.matrix.io import MatrixIO, MatrixRequestError
from bots.matrix.room_state import RoomStateCache
from bots.shards import Shards

log = logging.getLogger(__name__)


class Handover:
    def __init__(
        self, client: AsyncClient, io: MatrixIO, cache: RoomStateCache, shards: Shards
    ) -> None:
        self.client = client
        self.io = io
        self.cache = cache
        self.shards = shards
        self._expected: dict[str, str] = {}  # room -> its account, made by this process
        self.tasks = BackgroundTasks()

    def owner(self, room_id: str) -> str | None:
        """The other account of the bot a room was made for, or None (a room of this one)."""
        if room_id in self._expected:
            return self._expected[room_id]
        named = self.cache.additional_creators.get(room_id, ())
        return next((s for s in self.shards.siblings if s in named), None)

    def elsewhere(self, room_id: str) -> bool:
        return self.owner(room_id) is not None

    async def after_creation(self, room_id: str, owner: str) -> bool:
        """Right after ``room_id`` was made for ``owner``: leaves if it is already in;
        otherwise its join, when seen, finishes the handover. True: left now."""
        self._expected[room_id] = owner
        return await self._finish(room_id, owner)

    async def on_member(self, room: Any, event: RoomMemberEvent) -> None:
        """nio callback: the account a room was made for has joined it."""
        owner = self.owner(room.room_id)
        if event.membership == "join" and event.state_key == owner and owner is not None:
            self.tasks.spawn(self._finish_later(room.room_id, owner), name=f"remise-{room.room_id}")

    async def resume(self) -> int:
        """After the first sync of a start: the rooms whose account joined while this one
        was down (or killed between the join and the leave). Returns how many were left."""
        left = 0
        for room_id in list(self.client.rooms):
            owner = self.owner(room_id)
            if owner is not None and await self._finish(room_id, owner):
                left += 1
        return left

    async def _finish_later(self, room_id: str, owner: str) -> None:
        await self._finish(room_id, owner)

    async def _finish(self, room_id: str, owner: str) -> bool:
        try:
            if await self.io.membership(room_id, owner) != "join":
                return False
            await self.io.leave(room_id)
        except MatrixRequestError as exc:  # tried again at the next join seen or start
            log.warning("salon %s non remis à %s (%s)", room_id, owner, exc.errcode)
            return False
        self._expected.pop(room_id, None)
        log.info("salon %s remis à %s", room_id, owner)
        return True
