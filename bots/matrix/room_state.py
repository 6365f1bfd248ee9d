"""What the bot remembers of its rooms' custom state, fed by the sync loop.

nio keeps names, members and power levels; this keeps the rest the bot needs: which rooms
are patient rooms, which are spaces, and each room's ``fr.cercle.flags``. It is fed by the
sync and, at start, by the room snapshot (``room_snapshot.py``), which stores the state events
it is built from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nio import Event, RoomCreateEvent, UnknownEvent

PATIENT_STATE = "fr.cercle.patient"
FLAGS_STATE = "fr.cercle.flags"


class RoomStateCache:
    def __init__(self) -> None:
        self.patient_rooms: dict[str, dict[str, Any]] = {}
        self.spaces: set[str] = set()
        self.flags: dict[str, Mapping[str, Any]] = {}
        self.creators: dict[str, set[str]] = {}  # room v12+: creators outrank every level
        # room v12+: the creators named by the creating account (MSC4289); a room the bot's
        # front made for another of its accounts names that account (bots/shards.py)
        self.additional_creators: dict[str, set[str]] = {}

    def observe(self, room_id: str, event: Event) -> None:
        if isinstance(event, RoomCreateEvent | UnknownEvent):
            source = event.source
            state_key = source.get("state_key")
            content = source.get("content") or {}
            if isinstance(state_key, str) and isinstance(content, Mapping):
                self.observe_raw(room_id, source.get("type", ""), state_key, event.sender, content)

    def observe_raw(
        self, room_id: str, event_type: str, state_key: str, sender: str, content: Mapping[str, Any]
    ) -> None:
        """One state event, from its parts (the sync, or the snapshot at start)."""
        if event_type == "m.room.create":
            if content.get("type") == "m.space":
                self.spaces.add(room_id)
            if _creators_are_privileged(content.get("room_version", "1")):
                extra = content.get("additional_creators")
                named = (
                    {u for u in extra if isinstance(u, str)} if isinstance(extra, list) else set()
                )
                self.creators[room_id] = {sender} | named
                if named:
                    self.additional_creators[room_id] = named
        elif state_key == "":
            if event_type == PATIENT_STATE and content:
                self.patient_rooms[room_id] = dict(content)
            elif event_type == FLAGS_STATE:
                self.set_flags(room_id, content)

    def set_flags(self, room_id: str, content: Mapping[str, Any]) -> None:
        if content.get("flags"):
            self.flags[room_id] = content
        else:
            self.flags.pop(room_id, None)

    def is_patient_room(self, room_id: str) -> bool:
        return room_id in self.patient_rooms


def _creators_are_privileged(room_version: object) -> bool:
    """MSC4289 (room version 12 and later): the creators have unlimited power."""
    try:
        return int(str(room_version)) >= 12
    except ValueError:
        return False
