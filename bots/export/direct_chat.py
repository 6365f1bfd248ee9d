"""The bot's encrypted direct chat with a person, found or created once (exports « en privé »,
newcomers' transcripts, offers)."""

from __future__ import annotations

import asyncio

from nio import AsyncClient

from bots.export.history import HistoryError
from bots.matrix.initial_state import ENCRYPTED
from bots.matrix.io import MatrixIO
from bots.matrix.room_once import create_room_once


class DirectChats:
    def __init__(self, client: AsyncClient, io: MatrixIO, room_wait_seconds: float = 15.0) -> None:
        self.client = client
        self.io = io
        self.room_wait_seconds = room_wait_seconds

    async def direct_room(self, user_id: str, *, exclude: str = "") -> str:
        """The direct chat between the bot and `user_id`; created when there is none."""
        for room_id, room in self.client.rooms.items():
            members = set(room.users) - set(room.invited_users)
            if room_id != exclude and members == {self.client.user_id, user_id} and room.encrypted:
                return str(room_id)
        # once per person, the same room as the bot's other direct messages (sync bridge):
        # an export sent before the invitation is accepted, or a bot killed after creating
        # the room, does not make a second one (bots.matrix.room_once)
        room_id, _ = await create_room_once(
            self.client,
            self.io,
            f"direct|{user_id}",
            {
                "is_direct": True,
                "invite": [user_id],
                "initial_state": [ENCRYPTED],
            },
        )
        # nio sends in clear to a room it has not synced yet: wait for the sync loop to see
        # the room as encrypted before anything is sent there.
        if await self.synced(room_id, self.room_wait_seconds, encrypted=True):
            return room_id
        raise HistoryError("La conversation privée n'est pas encore prête : réessayez.")

    async def synced(self, room_id: str, seconds: float, *, encrypted: bool = False) -> bool:
        """Whether the sync loop has the room (and, with `encrypted`, sees it encrypted)
        within `seconds`."""
        for _ in range(int(seconds * 10)):
            room = self.client.rooms.get(room_id)
            if room is not None and (room.encrypted or not encrypted):
                return True
            await asyncio.sleep(0.1)
        return False
