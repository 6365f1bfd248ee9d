"""What the bot remembers of its rooms' custom state, fed by the sync loop.

nio keeps names, members and power levels; this keeps the rest the bot needs: which rooms
are patient rooms, which are spaces, and each room's ``fr.cercle.flags``. A full-state sync
at every start rebuilds it, so it needs no storage of its own.
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

    def observe(self, room_id: str, event: Event) -> None:
        if isinstance(event, RoomCreateEvent):
            content = event.source.get("content", {})
            if content.get("type") == "m.space":
                self.spaces.add(room_id)
            if _creators_are_privileged(content.get("room_version", "1")):
                extra = content.get("additional_creators")
                self.creators[room_id] = {event.sender} | (
                    {u for u in extra if isinstance(u, str)} if isinstance(extra, list) else set()
                )
        elif isinstance(event, UnknownEvent) and event.source.get("state_key") == "":
            content = event.source.get("content") or {}
            if event.type == PATIENT_STATE and content:
                self.patient_rooms[room_id] = dict(content)
            elif event.type == FLAGS_STATE:
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
