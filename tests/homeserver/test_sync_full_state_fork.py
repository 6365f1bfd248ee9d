"""A join or a leave racing another event of the same room: Synapse's ``state`` block (for
clients that do not ask for MSC4222 ``state_after``: nio, so the bot) can show the person's
previous membership — « invited » once she joined, « joined » once she left.

Why: both events are made from the same forward extremity, so the room's DAG forks (two forward
extremities). Synapse's current state (``/members``) resolves both branches. But a /sync
``state`` block is built from the state *after one event*: the room's last event in stream
order for a full-state sync with nothing new in the timeline (``get_state_ids_at``: "FIXME …
might not be the same as the current state … if there were multiple forward extremities"),
the timeline's first event for an incremental one. When the membership change was persisted
first, that event is the other branch's, whose state still has the old membership.

This is what a leftover two-member room of the bot's test account showed: the room snapshot,
built from the incremental syncs that carried the join in their timeline, said joined — as the
server does; the full-state /sync said invited — stale. ``state_after`` is the current state.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from typing import Any

import pytest
from support import _http_json, create_direct_room

pytestmark = pytest.mark.integration

STATE_AFTER = "org.matrix.msc4222.state_after"


def sync(
    synapse: Any, token: str, since: str | None, *, full_state: bool = False, after: bool = False
) -> Any:
    # a filter of its own at each call: Synapse answers identical /sync requests from a cache
    query = {
        "timeout": "0",
        "filter": json.dumps({"presence": {"not_types": [secrets.token_hex(4)]}}),
    }
    if since:
        query["since"] = since
    if full_state:
        query["full_state"] = "true"
    if after:
        query["org.matrix.msc4222.use_state_after"] = "true"
    url = f"{synapse.base_url}/_matrix/client/v3/sync?{urllib.parse.urlencode(query)}"
    return _http_json("GET", url, token=token)


def membership(block: dict[str, Any], user_id: str) -> str | None:
    return next(
        (
            e["content"]["membership"]
            for e in block.get("events", [])
            if e["type"] == "m.room.member" and e["state_key"] == user_id
        ),
        None,
    )


def synced_room(synapse: Any, token: str, since: str, room: str) -> tuple[dict[str, Any], str]:
    for _ in range(50):
        resp = sync(synapse, token, since)
        if room in resp["rooms"].get("join", {}):
            return resp["rooms"]["join"][room], str(resp["next_batch"])
        time.sleep(0.1)
    raise AssertionError("salon absent de la sync")


def race(base: str, room: str, guest: Any, host: Any, move: str, delay: float) -> None:
    """``guest`` joins or leaves (``move``) while ``host`` changes the topic ``delay`` seconds
    later (a membership change takes ~30 ms: the topic is made inside it, from the same
    forward extremity)."""
    start = threading.Barrier(2)
    path = f"join/{room}" if move == "join" else f"rooms/{room}/leave"

    def membership() -> None:
        start.wait()
        _http_json("POST", f"{base}/_matrix/client/v3/{path}", {}, token=guest.access_token)

    def topic() -> None:
        start.wait()
        time.sleep(delay)
        _http_json(
            "PUT",
            f"{base}/_matrix/client/v3/rooms/{room}/state/m.room.topic/",
            {"topic": "en même temps"},
            token=host.access_token,
        )

    threads = [threading.Thread(target=membership), threading.Thread(target=topic)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def forked_room(synapse: Any, user_factory: Any, move: str) -> tuple[Any, Any, str, Any, str]:
    """(host, guest, room, the host's incremental sync of the race, its token): a room whose
    DAG forked, ``guest``'s join or leave persisted before the host's concurrent topic."""
    base = synapse.base_url
    host = user_factory()
    for attempt in range(40):
        guest = user_factory()
        room = create_direct_room(base, host, guest)
        if move == "leave":
            _http_json(
                "POST", f"{base}/_matrix/client/v3/join/{room}", {}, token=guest.access_token
            )
        before = sync(synapse, host.access_token, None)["next_batch"]
        race(base, room, guest, host, move, 0.004 + (attempt % 8) * 0.002)
        extremities = _http_json(
            "GET",
            f"{base}/_synapse/admin/v1/rooms/{urllib.parse.quote(room)}/forward_extremities",
            token=synapse.admin_token,
        )["count"]
        incremental, now = synced_room(synapse, host.access_token, before, room)
        order = [e["type"] for e in incremental["timeline"]["events"]]
        if extremities == 2 and order[-2:] == ["m.room.member", "m.room.topic"]:
            return host, guest, room, incremental, now
    pytest.skip("pas de fourche membre puis sujet obtenue")


def one_event_back(token: str) -> str:
    """The sync token one room event before ``token`` (Synapse's ``s<position>_…``)."""
    position, rest = token[1:].split("_", 1)
    return f"s{int(position) - 1}_{rest}"


def views(synapse: Any, host: Any, room: str, user_id: str, now: str) -> dict[str, Any]:
    """``user_id``'s membership as the server holds it and as each kind of /sync shows it to
    ``host``, nothing having happened since ``now``."""
    base = synapse.base_url
    quoted = urllib.parse.quote(room)
    members = _http_json(
        "GET", f"{base}/_matrix/client/v3/rooms/{quoted}/members", token=host.access_token
    )["chunk"]
    full = sync(synapse, host.access_token, now, full_state=True)["rooms"]["join"][room]
    assert full["timeline"]["events"] == []
    # a sync whose timeline starts after her join or leave (carried by the previous one)
    later = sync(synapse, host.access_token, one_event_back(now))["rooms"]["join"][room]
    assert [e["type"] for e in later["timeline"]["events"]] == ["m.room.topic"]
    after = sync(synapse, host.access_token, now, full_state=True, after=True)
    return {
        "server": membership({"events": members}, user_id),
        "full state": membership(full["state"], user_id),
        "next state block": membership(later["state"], user_id),
        "state_after": membership(after["rooms"]["join"][room][STATE_AFTER], user_id),
    }


def carried_in_timeline(incremental: dict[str, Any], user_id: str) -> bool:
    """The incremental sync that carried the race: her change in the timeline, none in state
    (what nio and the room snapshot apply)."""
    return membership(incremental.get("state", {}), user_id) is None and any(
        e["type"] == "m.room.member" and e["state_key"] == user_id
        for e in incremental["timeline"]["events"]
    )


def test_full_state_sync_says_invited_after_a_forked_join(synapse: Any, user_factory: Any) -> None:
    host, guest, room, incremental, now = forked_room(synapse, user_factory, "join")
    assert carried_in_timeline(incremental, guest.user_id)  # the snapshot: joined
    assert views(synapse, host, room, guest.user_id, now) == {
        "server": "join",
        # the state after the room's last event
        "full state": "invite",
        # repeats the invitation (element-hq/synapse#17430)
        "next state block": "invite",
        "state_after": "join",  # MSC4222: the room's current state
    }


def test_full_state_sync_says_joined_after_a_forked_leave(synapse: Any, user_factory: Any) -> None:
    """The other way round, the one that matters more: someone who left is shown joined — by
    the full state, and by the state block of an incremental sync, which nio applies (it
    re-adds her; the invitation case above, nio ignores)."""
    host, guest, room, incremental, now = forked_room(synapse, user_factory, "leave")
    assert carried_in_timeline(incremental, guest.user_id)
    assert views(synapse, host, room, guest.user_id, now) == {
        "server": "leave",
        "full state": "join",
        "next state block": "join",
        "state_after": "leave",
    }
