"""Synapse serves MSC4222 ``state_after`` to clients that ask (Element's SDK does).

Without it, Synapse's incremental ``state`` block can repeat an older membership after the
timeline already showed the newer one (element-hq/synapse#17430), and Element believes a
person who just joined is still only invited (issue 11: the bot's new direct chat)."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest
from support import _http_json, create_direct_room

pytestmark = pytest.mark.integration

STATE_AFTER = "org.matrix.msc4222.state_after"


def sync(synapse: Any, token: str, since: str | None) -> dict[str, Any]:
    query = {"timeout": "0", "org.matrix.msc4222.use_state_after": "true"}
    if since:
        query["since"] = since
    url = f"{synapse.base_url}/_matrix/client/v3/sync?{urllib.parse.urlencode(query)}"
    return dict(_http_json("GET", url, token=token))


def memberships(block: dict[str, Any]) -> dict[str, str]:
    return {
        e["state_key"]: e["content"]["membership"]
        for e in block.get("events", [])
        if e["type"] == "m.room.member"
    }


def test_join_after_invite_is_in_state_after(synapse: Any, user_factory: Any) -> None:
    host, guest = user_factory(), user_factory()
    room = create_direct_room(synapse.base_url, host, guest)
    first = sync(synapse, guest.access_token, None)
    assert room in first["rooms"]["invite"]

    _http_json(
        "POST", f"{synapse.base_url}/_matrix/client/v3/join/{room}", {}, token=guest.access_token
    )
    joined = sync(synapse, guest.access_token, first["next_batch"])["rooms"]["join"][room]
    assert STATE_AFTER in joined and "state" not in joined, sorted(joined)
    assert memberships(joined[STATE_AFTER])[guest.user_id] == "join"

    # the host keeps changing the room; nothing the guest receives afterwards says "invite" again
    since = first["next_batch"]
    for n in range(3):
        _http_json(  # state changes (messages in clear are refused in encrypted rooms)
            "PUT",
            f"{synapse.base_url}/_matrix/client/v3/rooms/{room}/state/m.room.topic/",
            {"topic": f"sujet {n}"},
            token=host.access_token,
        )
        answer = sync(synapse, guest.access_token, since)
        since = answer["next_batch"]
        block = answer["rooms"].get("join", {}).get(room, {}).get(STATE_AFTER, {})
        assert memberships(block).get(guest.user_id, "join") == "join"
