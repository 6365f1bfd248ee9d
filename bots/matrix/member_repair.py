"""A room's members read back from the server when a /sync ``state`` block may be stale.

Synapse answers a /sync ``state`` block from one branch of a forked room (a membership change
racing another event of the room; element-hq/synapse#17430, shown in
``tests/homeserver/test_sync_full_state_fork.py``): after a leave, the next incremental sync
can carry her old join, and nio adds her back. The bot would then count a former member and
share its next room key with her devices. An incremental sync's ``state`` block carries member
events only after a gap in the timeline or in that race; for those rooms the members are read
back from the server (``GET /rooms/{id}/state``) before any handler runs, nio's room and the
room snapshot are corrected, and the room's outbound key is renewed when anything changed
(a key shared under the wrong list is not used again).

The server's own member list is right (it merges both branches); MSC4222's ``state_after``
would avoid the extra request, but nio does not parse it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from nio import AsyncClient, RoomGetStateResponse, RoomMemberEvent, SyncResponse

from bots.matrix.room_snapshot import RoomSnapshot

log = logging.getLogger(__name__)


def rooms_to_check(resp: SyncResponse) -> list[str]:
    """The joined rooms whose ``state`` block carries a member event (pure)."""
    return [
        room_id
        for room_id, info in resp.rooms.join.items()
        if any(isinstance(event, RoomMemberEvent) for event in info.state)
    ]


def member_events(events: list[Any]) -> dict[str, Mapping[str, Any]]:
    """state key → raw member event, from a room's state as the server returns it (pure)."""
    members: dict[str, Mapping[str, Any]] = {}
    for event in events:
        if (
            isinstance(event, Mapping)
            and event.get("type") == "m.room.member"
            and isinstance(event.get("state_key"), str)
            and isinstance(event.get("content"), Mapping)
        ):
            members[event["state_key"]] = event
    return members


async def repair_members(client: AsyncClient, room_id: str, snapshot: RoomSnapshot | None) -> bool:
    """nio's members of ``room_id`` (and the snapshot's) made the server's; True when they
    differed. A failed read is logged and leaves the room as the sync gave it."""
    room = client.rooms.get(room_id)
    if room is None:
        return False
    resp = await client.room_get_state(room_id)
    if not isinstance(resp, RoomGetStateResponse):
        log.warning("membres du salon non relus room=%s", room_id)
        return False
    members = member_events(resp.events)
    changed = False
    for user_id in [u for u in room.users if u not in members]:
        room.remove_member(user_id)
        changed = True
    for user_id, event in members.items():
        content = event["content"]
        membership = content.get("membership")
        present = user_id in room.users
        if membership not in ("join", "invite"):
            if present:
                room.remove_member(user_id)
                changed = True
            continue
        invited = membership == "invite"
        if present and (user_id in room.invited_users) == invited:
            continue
        if present:
            room.remove_member(user_id)
        name, avatar = content.get("displayname"), content.get("avatar_url")
        room.add_member(
            user_id,
            name if isinstance(name, str) else None,
            avatar if isinstance(avatar, str) else None,
            invited=invited,
        )
        changed = True
    if changed:
        log.warning("membres du salon corrigés d'après le serveur room=%s", room_id)
        if client.olm is not None:
            client.invalidate_outbound_session(room_id)
        if snapshot is not None:
            snapshot.replace_members(room_id, list(members.values()))
    return changed
