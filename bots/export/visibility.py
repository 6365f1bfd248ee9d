"""Where a member's view of a room's history starts, as the homeserver tells it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from nio import AsyncClient


async def visible_from(client: AsyncClient, room_id: str, user_id: str) -> datetime | None:
    """Where the requester's view of the history starts, when the room restricts it.

    With `history_visibility` « joined » or « invited », a member does not see what was
    said before they arrived — and neither does their export, although the bot does.
    """
    visibility = await _state_event(client, room_id, "m.room.history_visibility", "")
    rule = (visibility or {}).get("content", {}).get("history_visibility", "shared")
    if rule not in ("joined", "invited"):
        return None
    member = await _state_event(client, room_id, "m.room.member", user_id)
    millis = (member or {}).get("origin_server_ts")
    if not isinstance(millis, int):
        return datetime.now(UTC)  # unknown arrival: nothing before now
    return datetime.fromtimestamp(millis / 1000, UTC)


async def _state_event(
    client: AsyncClient, room_id: str, event_type: str, state_key: str
) -> dict[str, Any] | None:
    path = (
        f"/_matrix/client/v3/rooms/{quote(room_id)}/state/{quote(event_type)}/"
        f"{quote(state_key)}?format=event"
    )
    response = await client.send(
        "GET", path, headers={"Authorization": f"Bearer {client.access_token}"}
    )
    async with response:
        if response.status != 200:
            return None
        body = await response.json()
    return body if isinstance(body, dict) else None
