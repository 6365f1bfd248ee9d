"""One event of a room fetched from the homeserver and decrypted (one way, for every reader:
the command's own event, the message a command answers, a quote outside an export)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nio import AsyncClient, Event, MegolmEvent, RoomGetEventResponse

from bots.matrix.timing import waiting_for_server


async def fetch_event(
    client: AsyncClient, room_id: str, event_id: str, *, wait_for_server: bool = False
) -> Event | None:
    """The event, decrypted; the ``MegolmEvent`` itself when it cannot be decrypted (no key
    yet); None when the homeserver does not give it. ``wait_for_server``: a busy homeserver
    is waited for (``bots.matrix.timing``) rather than taken as an answer."""
    request = client.room_get_event(room_id, event_id)
    response = await (waiting_for_server(request) if wait_for_server else request)
    if not isinstance(response, RoomGetEventResponse):
        return None
    event = response.event
    if isinstance(event, MegolmEvent):
        try:
            return client.decrypt_event(event)
        except Exception:  # nio raises several kinds: all mean "not readable now"
            return event
    return event


async def fetch_content(
    client: AsyncClient, room_id: str, event_id: str, *, wait_for_server: bool = False
) -> dict[str, Any] | None:
    """The decrypted content of the event, or None when it cannot be fetched or read."""
    event = await fetch_event(client, room_id, event_id, wait_for_server=wait_for_server)
    if event is None or isinstance(event, MegolmEvent):
        return None
    content = event.source.get("content")
    return dict(content) if isinstance(content, Mapping) else None


async def replied_to(
    client: AsyncClient, room_id: str, event_id: str, *, wait_for_server: bool = False
) -> str | None:
    """The event that ``event_id`` answers (its ``m.in_reply_to``), or None."""
    content = await fetch_content(client, room_id, event_id, wait_for_server=wait_for_server)
    relates = (content or {}).get("m.relates_to")
    reply = relates.get("m.in_reply_to") if isinstance(relates, Mapping) else None
    target = reply.get("event_id") if isinstance(reply, Mapping) else None
    return target if isinstance(target, str) else None
