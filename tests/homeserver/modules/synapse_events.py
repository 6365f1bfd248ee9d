"""Real Synapse events (built by ``make_event_from_dict``) in a patient room, for the
patient-room module's tests and its bench (``bench/patient_rooms_policy.py``): the conversion
from Synapse's objects to the pure rules is exercised too."""

from __future__ import annotations

import itertools
from typing import Any

from synapse.api.room_versions import RoomVersion, RoomVersions
from synapse.events import make_event_from_dict
from synapse.module_api import EventBase

ROOM = "!patient:cercle.test"
ALICE = "@alice:cercle.test"
_timestamps = itertools.count(1)  # distinct timestamps: distinct event ids


def ev(
    event_type: str,
    content: dict[str, Any],
    state_key: str | None = None,
    room_version: RoomVersion = RoomVersions.V10,
    **extra: Any,
) -> EventBase:
    """An event ALICE sends in ROOM (``extra``: more fields of the event, e.g. ``redacts``)."""
    event: dict[str, Any] = {
        "type": event_type,
        "room_id": ROOM,
        "sender": ALICE,
        "content": content,
        "origin_server_ts": next(_timestamps),
        "depth": 1,
        "auth_events": [],
        "prev_events": [],
        "hashes": {"sha256": "aGFzaA"},
        "signatures": {},
        **extra,
    }
    if state_key is not None:
        event["state_key"] = state_key
    return make_event_from_dict(event, room_version)
