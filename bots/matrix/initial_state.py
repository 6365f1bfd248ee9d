"""The initial state of the rooms the bots and the mail bridge create, written once: encrypted
(Megolm), on invitation only, the history visible to members from a given point."""

from __future__ import annotations

from typing import Any

from bots.matrix.history import MEGOLM

ENCRYPTED: dict[str, Any] = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": MEGOLM},
}
INVITE_ONLY: dict[str, Any] = {
    "type": "m.room.join_rules",
    "state_key": "",
    "content": {"join_rule": "invite"},
}


def history_visible(since: str) -> dict[str, Any]:
    """``m.room.history_visibility`` (« shared »: all of it to members, « joined »: from
    their joining)."""
    return {
        "type": "m.room.history_visibility",
        "state_key": "",
        "content": {"history_visibility": since},
    }


def private_room() -> list[dict[str, Any]]:
    """An encrypted room on invitation only whose members read all its history."""
    return [ENCRYPTED, INVITE_ONLY, history_visible("shared")]
