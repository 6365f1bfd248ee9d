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

The same read-back completes a *lazy* incremental sync (``lazy_load_members``, the bot's
filter once its room snapshot is complete, because an eager ``/sync`` costs Synapse a lookup per
room of the account: 73 ms at 20,000 rooms; issue 15). A lazy ``state`` block names only the
members who speak in the timeline, so three cases are read back: a room the bot did not hold
(just joined: its state came lazily), a limited timeline (member changes in the gap are not
all named), and a member event that says other than what the bot held before the response.
The last one is also the stale block above, in either mode.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from nio import AsyncClient, RoomGetStateResponse, RoomMemberEvent, SyncResponse

from bots.matrix.room_snapshot import RoomSnapshot

log = logging.getLogger(__name__)


def rooms_to_check(
    resp: SyncResponse, before: Mapping[str, Mapping[str, str] | None] | None = None
) -> dict[str, str]:
    """The joined rooms whose members the response may leave wrong, and why (pure):
    ``new`` (a room not held before), ``gap`` (a limited timeline), ``state`` (a member event
    in the ``state`` block that says other than what was held, or any, without ``before``).

    ``before``: each room's members as the bot held them before this response (user →
    ``join`` | ``invite``; None: a room it did not hold). Without it (no snapshot kept, eager
    syncs only), every room whose ``state`` block carries a member event."""
    rooms = {}
    for room_id, info in resp.rooms.join.items():
        in_state = {
            event.state_key: event.membership
            for event in info.state
            if isinstance(event, RoomMemberEvent)
        }
        if before is None:
            if in_state:
                rooms[room_id] = "state"
            continue
        known = before.get(room_id)
        if known is None:
            rooms[room_id] = "new"
        elif info.timeline.limited:
            rooms[room_id] = "gap"
        elif any(_present(m) != known.get(u) for u, m in in_state.items()):
            rooms[room_id] = "state"
    return rooms


def _present(membership: str) -> str | None:
    return membership if membership in ("join", "invite") else None


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


async def repair_members(
    client: AsyncClient, room_id: str, snapshot: RoomSnapshot | None, *, stale: bool = True
) -> bool | None:
    """nio's members of ``room_id`` (and the snapshot's) made the server's; True when they
    differed (a warning when the room's state block was ``stale``: a fault of the server's;
    otherwise a room joined or a gap, whose members are simply completed), None when the server did not answer with the state (logged; the room stays as
    the sync gave it, and nio reads its members again before the room's next encrypted send)."""
    room = client.rooms.get(room_id)
    if room is None:  # no longer held: nothing to read back
        if snapshot is not None:
            snapshot.members_read(room_id)
        return False
    resp = await client.room_get_state(room_id)
    if not isinstance(resp, RoomGetStateResponse):
        log.warning("membres du salon non relus room=%s", room_id)
        room.members_synced = False
        return None
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
    room.members_synced = True  # the whole list, as /joined_members would have given it
    if snapshot is not None:
        if changed:
            snapshot.replace_members(room_id, list(members.values()))
        snapshot.members_read(room_id)
    if changed:
        if stale:
            log.warning("membres du salon corrigés d'après le serveur room=%s", room_id)
        else:
            log.info("membres du salon complétés d'après le serveur room=%s", room_id)
        if client.olm is not None:
            client.invalidate_outbound_session(room_id)
    return changed
