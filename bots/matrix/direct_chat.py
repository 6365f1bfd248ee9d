"""The bot's encrypted direct chat with a person: one room per person, made once.

The only lookup of that room, for everything the bot says to one person alone: exports
« en privé », newcomers' transcripts and offers (``bots.export``), reminders of overdue
tasks and extraction notices (``bots.dossier_link``). The room is created once per person
with a stable intent (``direct|<user>``; a shard's account ``direct|<account>|<user>``;
``bots.matrix.room_once``): an export sent before
the invitation is accepted, or a bot killed after creating the room, never makes a second
one, and both families land in the same room. A remembered room (the dossier link keeps
them in its ``SyncStore``; otherwise in this process) spares the homeserver the request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from nio import AsyncClient

from bots.matrix.initial_state import ENCRYPTED
from bots.matrix.io import MatrixIO
from bots.matrix.room_once import create_room_once

ENCRYPTED_DIRECT_CHAT = {"is_direct": True, "initial_state": [ENCRYPTED]}


class DirectChatNotReady(Exception):
    """The room exists but the sync loop does not show it encrypted yet: try again later."""


class DirectRoomMemory(Protocol):
    def direct_room(self, user_id: str) -> str | None: ...

    def save_direct_room(self, user_id: str, room_id: str) -> None: ...


class InProcessMemory:
    """The direct chats this process has found (the bot's link to the dossier keeps them in
    its database instead)."""

    def __init__(self) -> None:
        self._rooms: dict[str, str] = {}

    def direct_room(self, user_id: str) -> str | None:
        return self._rooms.get(user_id)

    def save_direct_room(self, user_id: str, room_id: str) -> None:
        self._rooms[user_id] = room_id


@dataclass
class DirectChats:
    client: AsyncClient
    io: MatrixIO
    memory: DirectRoomMemory = field(default_factory=InProcessMemory)
    room_wait_seconds: float = 15.0
    # None: the front's intents, ``direct|<user>`` (every deployment's existing chats); a
    # shard's account (bots/shards.py) names its own, ``direct|<account>|<user>``: the
    # intent alias is the server's, one account's chat is not another's
    scope: str | None = None

    async def direct_room(self, user_id: str) -> str:
        """The direct chat between the bot and ``user_id``, created when there is none;
        `DirectChatNotReady` while the sync loop does not show it encrypted."""
        known = self.memory.direct_room(user_id)
        made_now = False
        if known is None:
            known, made_now = await create_room_once(
                self.client,
                self.io,
                f"direct|{user_id}" if self.scope is None else f"direct|{self.scope}|{user_id}",
                {**ENCRYPTED_DIRECT_CHAT, "invite": [user_id]},
            )
            self.memory.save_direct_room(user_id, known)
        # nio sends in clear to a room it has not synced yet, and shares a message's key only
        # with the members it knows: wait for the sync loop to see the room encrypted, and a
        # room made now with the person invited in it, before anything is sent there
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.room_wait_seconds
        invited_again = False
        while True:
            room = self.client.rooms.get(known)
            if room is not None and room.encrypted and user_id in room.users:
                return known  # joined or invited: she will read it
            if room is not None and room.encrypted and not made_now and not invited_again:
                # she left the chat (or refused it): invited again, or nothing would reach
                # her; sent once the sync loop shows her invited (keys go to members only)
                await self.io.invite(known, user_id)
                invited_again = True
            if loop.time() >= deadline:
                raise DirectChatNotReady(
                    "La conversation privée n'est pas encore prête : réessayez."
                )
            await asyncio.sleep(0.1)

    async def synced(self, room_id: str, seconds: float, *, encrypted: bool = False) -> bool:
        """Whether the sync loop has the room (and, with `encrypted`, sees it encrypted)
        within `seconds`."""
        for _ in range(int(seconds * 10)):
            room = self.client.rooms.get(room_id)
            if room is not None and (room.encrypted or not encrypted):
                return True
            await asyncio.sleep(0.1)
        return False
