"""Room ↔ file: which file a room is for, and the room furnished for its file.

The link is kept locally (``SyncStore``) and asked of the dossier when unknown. A linked room
carries the ``fr.cercle.patient`` state (ids only), the file as its widget, and the pinned
identity message (edited when the identity, or the age, changes). Rooms the bot has just
created or linked are remembered (``fresh``): nio shows them only after the next sync.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from nio import AsyncClient

from bots.dossier_client import DossierClient
from bots.dossier_link.feed import TransientError
from bots.dossier_link.notices import (
    LAYOUT_STATE,
    WIDGET_ID,
    WIDGET_STATE,
    identity_header,
    widget_content,
    widget_layout,
)
from bots.dossier_link.store import SyncStore
from bots.matrix.direct_chat import DirectChatNotReady, DirectChats
from bots.matrix.io import MatrixIO, txn_for
from bots.matrix.room_state import PATIENT_STATE
from bots.shards import Shards
from deployment.conventions import PARIS

PINNED = "m.room.pinned_events"


class NotLinked(Exception):
    """The room has no file (and the dossier does not know it either)."""


def today_paris() -> date:
    return datetime.now(PARIS).date()


class FileLinks:
    def __init__(
        self,
        *,
        client: AsyncClient,
        io: MatrixIO,
        dossier: DossierClient,
        store: SyncStore,
        patient_rooms: dict[str, dict[str, Any]],
        room_wait_seconds: float = 20.0,
        today: Callable[[], date] = today_paris,
        creators: Mapping[str, set[str]] | None = None,
        shards: Shards | None = None,
        direct_scope: str | None = None,
    ) -> None:
        self.client = client
        # the bot's accounts (bots/shards.py): which rooms this one makes, who is Cercle
        self.shards = shards or Shards.single(str(client.user_id))
        self.io = io
        self.dossier = dossier
        self.store = store
        self.patient_rooms = patient_rooms
        self.room_wait_seconds = room_wait_seconds
        self.today = today
        self.creators = creators if creators is not None else {}  # room v12+: unlimited power
        self.fresh: set[str] = set()  # rooms made or linked by this process (nio may lag)
        self.direct_chats = DirectChats(client, io, store, room_wait_seconds, direct_scope)

    @property
    def bot_user_id(self) -> str:
        return str(self.client.user_id)

    def file_url(self, patient_id: str) -> str:
        return self.dossier.patient_page_url(patient_id)

    def known_patient(self, room_id: str) -> str | None:
        """The file of a room as the bot knows it locally (no request)."""
        return self.store.patient_of(room_id)

    def is_patient_room(self, room_id: str) -> bool:
        """A room the bot knows as a patient's (its state, or a link), without a request."""
        return room_id in self.patient_rooms or self.store.patient_of(room_id) is not None

    async def resolve_patient(self, room_id: str) -> str:
        """The file of a room: local link, else the dossier's (by room id). NotLinked else."""
        pid = self.store.patient_of(room_id)
        if pid:
            return pid
        found = await self.dossier.patient_by_room(room_id)
        if not found or not found.get("id"):
            raise NotLinked(room_id)
        pid = str(found["id"])
        self.store.save_link(room_id, pid)
        return pid

    async def resolve_room(self, patient_id: str, hint: str | None = None) -> str | None:
        if hint:
            self.store.save_link(hint, patient_id)
            return hint
        room = self.store.room_of(patient_id)
        if room:
            return room
        patient = await self.dossier.get_patient(patient_id)
        room = (patient or {}).get("room_id")
        if isinstance(room, str) and room:
            self.store.save_link(room, patient_id)
            return room
        return None

    async def set_patient_state(self, room_id: str, patient_id: str) -> None:
        self.fresh.add(room_id)
        current = await self.io.get_state(room_id, PATIENT_STATE)
        if not current or current.get("id") != patient_id:
            content = {**(current or {}), "id": patient_id, "version": 1}
            await self.io.put_state(room_id, PATIENT_STATE, content)
            self.patient_rooms[room_id] = content
        self.store.save_link(room_id, patient_id)

    def lives_here(self, room_id: str) -> bool:
        """Whether this account is in ``room_id`` (or has just made it: nio may lag): with
        the bot's rooms over several accounts (bots/shards.py), each furnishes its own."""
        return room_id in self.client.rooms or room_id in self.fresh

    def note_fresh(self, room_id: str) -> None:
        """A room the bot has just created: nio will show it after the next sync."""
        self.fresh.add(room_id)

    def may_furnish(self, room_id: str) -> bool:
        """Whether the bot may set the link, the widget and the pins in this room."""
        room = self.client.rooms.get(room_id)
        if room is None:
            return False
        if self.bot_user_id in self.creators.get(room_id, ()):
            return True
        levels = room.power_levels
        return all(
            levels.can_user_send_state(self.bot_user_id, t)
            for t in (PATIENT_STATE, WIDGET_STATE, LAYOUT_STATE, PINNED)
        )

    def names(self, room_id: str) -> dict[str, str]:
        room = self.client.rooms.get(room_id)
        if room is None:
            return {}
        return {u: (m.display_name or u) for u, m in room.users.items()}

    async def wait_ready(self) -> None:
        """Until the bot's first sync is in: before it, nio knows none of the bot's rooms."""
        while not getattr(self.client, "next_batch", None):
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # nio sets the token before it has walked the rooms

    async def wait_for_room(self, room_id: str, member: str | None = None) -> None:
        """A room the bot just created or joined appears in nio's state after a sync."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.room_wait_seconds
        while loop.time() < deadline:
            room = self.client.rooms.get(room_id)
            if room is not None and (member is None or member in room.users):
                return
            await asyncio.sleep(0.1)
        if self.client.rooms.get(room_id) is None:
            raise TransientError("room not synced yet")

    async def direct_room(self, user: str) -> str:
        """The bot's encrypted direct chat with ``user`` (created once, remembered in the
        store; ``bots.matrix.direct_chat``, the same room as the exports')."""
        try:
            return await self.direct_chats.direct_room(user)
        except DirectChatNotReady:
            raise TransientError("direct chat not synced yet") from None

    # -- the room furnished for its file --
    async def furnish_room(
        self, room_id: str, pid: str, patient: Mapping[str, Any] | None = None
    ) -> None:
        """The file as the room's widget, and the pinned identity message."""
        await self.wait_for_room(room_id)
        wanted = widget_content(self.dossier.widget_url(pid), self.bot_user_id)
        current = await self.io.get_state(room_id, WIDGET_STATE, WIDGET_ID)
        if current != wanted:
            await self.io.put_state(room_id, WIDGET_STATE, wanted, WIDGET_ID)
        layout = await self.io.get_state(room_id, LAYOUT_STATE)
        wanted_layout = widget_layout(layout)
        if layout != wanted_layout:
            await self.io.put_state(room_id, LAYOUT_STATE, wanted_layout)
        await self.refresh_identity(room_id, pid, patient)

    async def refresh_identity(
        self, room_id: str, pid: str, patient: Mapping[str, Any] | None = None
    ) -> None:
        """Post (and pin) the identity message, or edit it when the identity changed."""
        if patient is None or "identity_status" not in patient:
            patient = await self.dossier.get_patient(pid) or {}
        plain, rich = identity_header(patient, self.file_url(pid), self.today())
        digest = hashlib.sha256(plain.encode()).hexdigest()
        known = self.store.identity_header(room_id)
        if known and known[1] == digest:
            return
        content: dict[str, Any] = {
            "msgtype": "m.notice",
            "body": plain,
            "format": "org.matrix.custom.html",
            "formatted_body": rich,
            "m.mentions": {},
        }
        txn = txn_for(f"identity-{room_id}-{digest}", "identity")
        if known:
            await self.io.send_edit(room_id, known[0], content, txn)
            self.store.save_identity_header(room_id, known[0], digest)
            return
        event_id = await self.io.send(room_id, "m.room.message", content, txn)
        pinned = await self.io.get_state(room_id, PINNED) or {}
        ids = [e for e in pinned.get("pinned") or [] if isinstance(e, str)]
        if event_id not in ids:
            await self.io.put_state(room_id, PINNED, {"pinned": [event_id, *ids]})
        self.store.save_identity_header(room_id, event_id, digest)

    async def refresh_ages(self) -> int:
        """Once a day: the pinned identities whose text changed (an age after a birthday)."""
        edited = 0
        for room_id, pid in self.store.links():
            if room_id not in self.client.rooms:
                continue
            before = self.store.identity_header(room_id)
            if before is None:
                continue
            await self.refresh_identity(room_id, pid)
            edited += self.store.identity_header(room_id) != before
            await asyncio.sleep(0.05)  # spread the reads
        return edited
