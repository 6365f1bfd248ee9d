"""Reading a room's timeline in order with nio: bounded pages, decrypted on the way.

Forward from the room's start, from a replied-to event, or from the first event after a
moment (`/timestamp_to_event`); backward from the end for « derniers N » (newest first:
the caller puts them back in order).  Pages are not kept: events are yielded one by one.  Never further
than the export command itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from nio import AsyncClient, MegolmEvent, MessageDirection, RoomContextError, RoomMessagesError

from bots.commands.text import command_text
from deployment.conventions import ToldError

EXPORT_MARK = "fr.cercle.export"  # in the content of the bot's export messages (encrypted)
PAGE_SIZE = 1000  # Synapse's maximum: per-request overhead dominates smaller pages
SHOWN_TYPES = {"m.room.message", "m.room.encrypted", "m.sticker"}


class HistoryError(ToldError):
    """The history could not be read; `message` is French, for the requester."""


@dataclass(frozen=True)
class HistoryRequest:
    room_id: str
    since: datetime | None = None
    until: datetime | None = None
    last: int | None = None
    from_event_id: str | None = None  # a reply to this event: export from it to the end
    through_event_id: str | None = None  # the export command: nothing after it is exported
    with_attachments: bool = True
    page_size: int = PAGE_SIZE
    command_prefix: str = "!"  # « derniers N » counts conversation, not commands


def is_chatter(source: Mapping[str, Any], prefix: str) -> bool:
    """Pure: a bot command, or the bot's own export messages (marked ``EXPORT_MARK``):
    not part of the conversation that « derniers N » counts and shows."""
    content = source.get("content") or {}
    if not isinstance(content, Mapping) or source.get("type") != "m.room.message":
        return False
    if content.get(EXPORT_MARK):
        return True
    new = content.get("m.new_content")
    if isinstance(new, Mapping) and new.get(EXPORT_MARK):
        return True
    text = command_text(content)
    return text.startswith(prefix) and text[len(prefix) : len(prefix) + 1].isalpha()


def reads_backward(request: HistoryRequest) -> bool:
    """« derniers N » alone: read from the end (`events_newest_first`), not from the start."""
    return request.last is not None and request.from_event_id is None and request.since is None


async def events_in_order(
    client: AsyncClient, request: HistoryRequest
) -> AsyncIterator[dict[str, Any]]:
    """Event dicts (decrypted where possible), oldest first, within the bounds.

    For a request that `reads_backward`, use `events_newest_first` instead.
    """
    until_ms = request.until.timestamp() * 1000 if request.until else None
    token: str | None = None
    anchor = request.from_event_id
    if anchor is None and request.since is not None:
        anchor, found = await _first_event_since(client, request.room_id, request.since)
        if not found:
            return
    if anchor is not None:
        context = await client.room_context(request.room_id, anchor, limit=2)
        if isinstance(context, RoomContextError):
            if request.from_event_id is not None:
                raise HistoryError("Le message auquel vous répondez est introuvable.")
        else:
            token = context.start
    started = request.from_event_id is None  # from a replied-to event: skip what precedes it
    while True:
        response = await client.room_messages(
            request.room_id, start=token, direction=MessageDirection.front, limit=request.page_size
        )
        if isinstance(response, RoomMessagesError):
            raise HistoryError("Impossible de lire l'historique du salon.")
        for event in response.chunk:
            source = event_source(event)
            if until_ms is not None and source["origin_server_ts"] >= until_ms:
                return
            started = started or source["event_id"] == request.from_event_id
            if started:
                yield source
            if source["event_id"] == request.through_event_id:
                return
        if not response.chunk or not response.end or response.end == token:
            return
        token = response.end


async def events_newest_first(
    client: AsyncClient, request: HistoryRequest
) -> AsyncIterator[dict[str, Any]]:
    """« derniers N »: from the end, newest first, until N shown messages have been read.

    Nothing is kept here: the caller stores what it needs (the export spools them).
    """
    assert request.last is not None
    until_ms = request.until.timestamp() * 1000 if request.until else None
    token: str | None = None
    shown = 0
    reached = request.through_event_id is None  # events after the command are left out
    while shown < request.last:
        response = await client.room_messages(
            request.room_id,
            start=token,
            direction=MessageDirection.back,
            limit=min(request.page_size, request.last - shown + 50),
        )
        if isinstance(response, RoomMessagesError):
            raise HistoryError("Impossible de lire l'historique du salon.")
        for event in response.chunk:
            source = event_source(event)
            reached = reached or source["event_id"] == request.through_event_id
            if not reached or (until_ms is not None and source["origin_server_ts"] >= until_ms):
                continue
            yield source
            if (
                source.get("type") in SHOWN_TYPES
                and not is_edit(source)
                and not is_chatter(source, request.command_prefix)
            ):
                shown += 1
        if not response.chunk or not response.end or response.end == token:
            break
        token = response.end


async def _first_event_since(
    client: AsyncClient, room_id: str, since: datetime
) -> tuple[str | None, bool]:
    """`/timestamp_to_event` (dir=f): the first event at or after `since`.

    Returns (event id, True); (None, False) when the room has nothing after `since`;
    (None, True) when the server cannot say (then paging starts from the beginning).
    """
    millis = int(since.timestamp() * 1000)
    path = f"/_matrix/client/v1/rooms/{quote(room_id)}/timestamp_to_event?ts={millis}&dir=f"
    try:
        response = await client.send(
            "GET", path, headers={"Authorization": f"Bearer {client.access_token}"}
        )
        async with response:
            if response.status == 404:
                return None, False
            body = await response.json() if response.status == 200 else {}
    except Exception:
        return None, True
    event_id = body.get("event_id") if isinstance(body, Mapping) else None
    return (event_id if isinstance(event_id, str) else None), True


def event_source(event: Any) -> dict[str, Any]:
    """The event as a dict; for a decrypted event, its cleartext type and content."""
    source = dict(event.source)
    if isinstance(event, MegolmEvent):
        source["_undecryptable"] = True
        return source
    decrypted = getattr(event, "decrypted", False)
    if decrypted:
        # nio puts the decrypted payload's type/content in `source` for parsed events
        payload = getattr(event, "source", {})
        source["type"] = payload.get("type", source.get("type"))
        source["content"] = payload.get("content", source.get("content"))
    return source


def is_edit(source: Mapping[str, Any]) -> bool:
    relates = (source.get("content") or {}).get("m.relates_to") or {}
    return isinstance(relates, Mapping) and relates.get("rel_type") == "m.replace"
