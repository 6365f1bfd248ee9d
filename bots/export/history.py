"""A room's history as export entries: paged, decrypted with the bot's keys, resolved.

`fetch_history(client, request, media)` pages `/messages` with nio in bounded
pages (nio decrypts Megolm events with the bot's keys on the way), then resolves:
edits (latest version, « modifié »), redactions (« message supprimé »), replies
(quoted), undecryptable events (kept, « message non déchiffrable »), flag state
changes (`fr.cercle.flags`), and the read receipts the bot knows (the latest per
member, under the last shown message they read).  Attachments are fetched by
`media.MediaFetcher` into temp files.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from nio import AsyncClient, MegolmEvent, MessageDirection, RoomContextError, RoomMessagesError

from bots.export.media import MediaError, MediaFetcher, MediaSource
from bots.export.transcript import Attachment, Entry, EntryKind, Participant, Quote
from bots.flags.model import LABELS, STATE_TYPE, RoomFlags

log = logging.getLogger(__name__)

PAGE_SIZE = 1000  # Synapse's maximum: per-request overhead dominates smaller pages
MEDIA_PARALLEL = 4
_MEDIA_TYPES = {"m.image", "m.file", "m.video", "m.audio"}
_SHOWN_TYPES = {"m.room.message", "m.room.encrypted", "m.sticker"}


class HistoryError(Exception):
    """The history could not be read; `message` is French, for the requester."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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


@dataclass
class History:
    entries: list[Entry]
    participants: tuple[Participant, ...]
    first: datetime | None = None
    last: datetime | None = None
    pages: int = 0
    events: int = 0
    seconds_paging: float = 0.0  # /messages + decryption
    seconds_media: float = 0.0  # attachments downloaded and decrypted


@dataclass
class _Draft:
    """An entry being built: edits and receipts still to come."""

    event_id: str
    sender: str
    ts: int
    kind: EntryKind
    content: dict[str, Any] = field(default_factory=dict)
    edited: bool = False
    reply_to: str | None = None
    seen_by: list[str] = field(default_factory=list)
    flag_text: str = ""


async def fetch_history(
    client: AsyncClient, request: HistoryRequest, media: MediaFetcher | None
) -> History:
    room = client.rooms.get(request.room_id)
    names: dict[str, str] = {}
    if room is not None:
        for user_id, user in room.users.items():
            names[user_id] = user.display_name or user_id
    drafts: list[_Draft] = []
    by_id: dict[str, _Draft] = {}
    order: dict[str, int] = {}  # every event id -> index of the last draft at or before it
    flags = RoomFlags.empty()
    flags_known = False
    events = 0
    started_at = time.perf_counter()
    async for source in _events(client, request):  # page by page: raw events are not kept
        events += 1
        event_id, sender, ts = source["event_id"], source["sender"], source["origin_server_ts"]
        etype = source.get("type")
        content = source.get("content") or {}
        if etype == "m.room.member":
            name = content.get("displayname")
            if isinstance(name, str) and name:
                names.setdefault(str(source.get("state_key", sender)), name)
        draft = _draft_of(source, etype, content, by_id)
        if etype == STATE_TYPE and "state_key" in source:
            new_flags = RoomFlags.from_state(content)
            text = _flag_change(flags, new_flags, names) if flags_known or new_flags.kinds else ""
            flags, flags_known = new_flags, True
            if text:
                draft = _Draft(event_id, sender, ts, EntryKind.EVENT, flag_text=text)
        if draft is not None and _in_range(ts, request):
            drafts.append(draft)
            by_id[event_id] = draft
        order[event_id] = len(drafts) - 1
    if request.last is not None:
        counted = [d for d in drafts if d.kind is not EntryKind.EVENT]
        if len(counted) > request.last:
            offset = drafts.index(counted[-request.last])
            drafts = drafts[offset:]
            kept = {id(d) for d in drafts}
            by_id = {k: v for k, v in by_id.items() if id(v) in kept}
            order = {k: i - offset for k, i in order.items() if i >= offset}
    paged_at = time.perf_counter()
    receipts = await read_receipts(client, request.room_id)
    _place_receipts(client.user_id, receipts, drafts, order, names)
    received_at = time.perf_counter()
    entries = await _entries(client, request, drafts, by_id, names, media)
    participants = tuple(
        Participant(user_id, name)
        for user_id, name in sorted(
            ((u, names.get(u, u)) for u in (room.users if room else {}) if u != client.user_id),
            key=lambda item: item[1].lower(),
        )
    )
    return History(
        entries=entries,
        participants=participants,
        first=entries[0].timestamp if entries else None,
        last=entries[-1].timestamp if entries else None,
        pages=events // max(1, request.page_size) + 1,
        events=events,
        seconds_paging=paged_at - started_at,
        seconds_media=time.perf_counter() - received_at,
    )


def _in_range(ts: int, request: HistoryRequest) -> bool:
    if request.since is not None and ts < request.since.timestamp() * 1000:
        return False
    return not (request.until is not None and ts >= request.until.timestamp() * 1000)


async def _events(client: AsyncClient, request: HistoryRequest) -> AsyncIterator[dict[str, Any]]:
    """Event dicts (decrypted where possible), oldest first, within the bounds."""
    until_ms = request.until.timestamp() * 1000 if request.until else None
    if request.last is not None and request.from_event_id is None and request.since is None:
        for source in await _page_backwards(client, request, until_ms):
            yield source
        return
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
            source = _source(event)
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


async def _page_backwards(
    client: AsyncClient, request: HistoryRequest, until_ms: float | None
) -> list[dict[str, Any]]:
    """« derniers N »: page from the end until N shown messages are collected."""
    assert request.last is not None
    token: str | None = None
    newest_first: list[dict[str, Any]] = []
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
            source = _source(event)
            reached = reached or source["event_id"] == request.through_event_id
            if not reached or (until_ms is not None and source["origin_server_ts"] >= until_ms):
                continue
            newest_first.append(source)
            if source.get("type") in _SHOWN_TYPES and not _is_edit(source):
                shown += 1
        if not response.chunk or not response.end or response.end == token:
            break
        token = response.end
    newest_first.reverse()
    return newest_first


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


def _source(event: Any) -> dict[str, Any]:
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


def _is_edit(source: Mapping[str, Any]) -> bool:
    relates = (source.get("content") or {}).get("m.relates_to") or {}
    return isinstance(relates, Mapping) and relates.get("rel_type") == "m.replace"


def _draft_of(
    source: Mapping[str, Any], etype: Any, content: Mapping[str, Any], by_id: dict[str, _Draft]
) -> _Draft | None:
    event_id, sender, ts = source["event_id"], source["sender"], source["origin_server_ts"]
    unsigned = source.get("unsigned") or {}
    if etype not in _SHOWN_TYPES:
        return None
    if "redacted_because" in unsigned or (not content and etype == "m.room.message"):
        return _Draft(event_id, sender, ts, EntryKind.REDACTED)
    if source.get("_undecryptable") or etype == "m.room.encrypted":
        if not content:
            return _Draft(event_id, sender, ts, EntryKind.REDACTED)
        return _Draft(event_id, sender, ts, EntryKind.UNDECRYPTABLE)
    relates = content.get("m.relates_to") or {}
    if not isinstance(relates, Mapping):
        relates = {}
    if relates.get("rel_type") == "m.replace":
        target = by_id.get(str(relates.get("event_id")))
        new = content.get("m.new_content")
        if target is not None and target.sender == sender and isinstance(new, Mapping):
            target.content = {**dict(new), "m.relates_to": target.content.get("m.relates_to")}
            target.edited = True
        return None
    msgtype = content.get("msgtype")
    kind = {"m.notice": EntryKind.NOTICE, "m.emote": EntryKind.EMOTE}.get(
        msgtype if isinstance(msgtype, str) else "", EntryKind.MESSAGE
    )
    reply = relates.get("m.in_reply_to")
    reply_to = reply.get("event_id") if isinstance(reply, Mapping) else None
    return _Draft(
        event_id,
        sender,
        ts,
        kind,
        dict(content),
        reply_to=reply_to if isinstance(reply_to, str) else None,
    )


def _flag_change(before: RoomFlags, after: RoomFlags, names: Mapping[str, str]) -> str:
    """« Signalement « urgence » posé par Alice », « Signalement « demande » levé »."""
    changes = []
    for kind in after.kinds:
        flag = after.get(kind)
        if kind not in before.kinds and flag is not None:
            changes.append(f"signalement « {LABELS[kind]} » posé par {names.get(flag.by, flag.by)}")
    for kind in before.kinds:
        if kind not in after.kinds:
            changes.append(f"signalement « {LABELS[kind]} » levé")
    if not changes:
        return ""
    text = ", ".join(changes)
    return text[0].upper() + text[1:]


async def read_receipts(client: AsyncClient, room_id: str) -> dict[str, str]:
    """The latest public read receipt per member: user id -> event id.

    Read from a one-off filtered initial sync of this room (the server's current view:
    nio keeps receipts only in memory, so a restarted bot knows none), merged with the
    receipts the running client has seen since.
    """
    latest: dict[str, tuple[int, str]] = {}
    sync_filter = {
        "room": {
            "rooms": [room_id],
            "timeline": {"limit": 1},
            "state": {"types": []},
            "ephemeral": {"types": ["m.receipt"]},
            "account_data": {"types": []},
        },
        "presence": {"types": []},
        "account_data": {"types": []},
    }
    path = "/_matrix/client/v3/sync?timeout=0&filter=" + quote(
        json.dumps(sync_filter, separators=(",", ":"))
    )
    try:
        response = await client.send(
            "GET", path, headers={"Authorization": f"Bearer {client.access_token}"}
        )
        async with response:
            body = await response.json() if response.status == 200 else {}
    except Exception:
        log.warning("export: receipts unavailable room=%s", room_id)
        body = {}
    joined = ((body.get("rooms") or {}).get("join") or {}).get(room_id) or {}
    for event in (joined.get("ephemeral") or {}).get("events") or []:
        if event.get("type") != "m.receipt":
            continue
        for event_id, kinds in (event.get("content") or {}).items():
            for user_id, data in ((kinds or {}).get("m.read") or {}).items():
                ts = data.get("ts", 0) if isinstance(data, Mapping) else 0
                if user_id not in latest or ts >= latest[user_id][0]:
                    latest[user_id] = (int(ts or 0), event_id)
    room = client.rooms.get(room_id)
    for user_id, receipt in (getattr(room, "read_receipts", None) or {}).items():
        ts = int(getattr(receipt, "timestamp", 0) or 0)
        if user_id not in latest or ts >= latest[user_id][0]:
            latest[user_id] = (ts, receipt.event_id)
    return {user_id: event_id for user_id, (_, event_id) in latest.items()}


def _place_receipts(
    own_user_id: str,
    receipts: Mapping[str, str],
    drafts: list[_Draft],
    order: Mapping[str, int],
    names: Mapping[str, str],
) -> None:
    """Each member's receipt goes under the last shown message at or before the one read."""
    for user_id, event_id in sorted(
        receipts.items(), key=lambda item: names.get(item[0], item[0]).lower()
    ):
        if user_id == own_user_id:
            continue
        index = order.get(event_id)
        while index is not None and index >= 0 and drafts[index].kind is EntryKind.EVENT:
            index -= 1
        if index is None or index < 0 or index >= len(drafts):
            continue
        draft = drafts[index]
        if draft.sender != user_id:
            draft.seen_by.append(names.get(user_id, user_id))


async def _entries(
    client: AsyncClient,
    request: HistoryRequest,
    drafts: list[_Draft],
    by_id: Mapping[str, _Draft],
    names: Mapping[str, str],
    media: MediaFetcher | None,
) -> list[Entry]:
    semaphore = asyncio.Semaphore(MEDIA_PARALLEL)
    outside: dict[str, Quote | None] = {}

    async def attachment_of(draft: _Draft) -> Attachment | None:
        content = draft.content
        if content.get("msgtype") not in _MEDIA_TYPES:
            return None
        raw_info = content.get("info")
        info: Mapping[str, Any] = raw_info if isinstance(raw_info, Mapping) else {}
        name = content.get("filename") or content.get("body") or "fichier"
        mimetype = str(info.get("mimetype") or "application/octet-stream")
        is_image = content.get("msgtype") == "m.image"
        declared = info.get("size") if isinstance(info.get("size"), int) else None
        base = Attachment(str(name), mimetype, is_image, declared)
        source = MediaSource.from_content(content)
        if source is None:
            return replace(base, unavailable="fichier sans adresse valide")
        if not request.with_attachments or media is None:
            return base
        async with semaphore:
            try:
                fetched = await media.fetch(source)
            except MediaError as error:
                return replace(base, unavailable=error.reason)
        return replace(base, size=fetched.size, sha256=fetched.sha256, path=fetched.path)

    async def quote_of(draft: _Draft) -> Quote | None:
        if draft.reply_to is None:
            return None
        target = by_id.get(draft.reply_to)
        if target is not None:
            return Quote(names.get(target.sender, target.sender), _quote_text(target))
        if draft.reply_to not in outside:
            outside[draft.reply_to] = await _fetch_quote(
                client, request.room_id, draft.reply_to, names
            )
        return outside[draft.reply_to]

    attachments = await asyncio.gather(*(attachment_of(d) for d in drafts))
    entries = []
    for draft, attachment in zip(drafts, attachments, strict=True):
        content = draft.content
        body = draft.flag_text if draft.kind is EntryKind.EVENT else content.get("body", "")
        formatted = None
        if content.get("format") == "org.matrix.custom.html" and isinstance(
            content.get("formatted_body"), str
        ):
            formatted = content["formatted_body"]
        entries.append(
            Entry(
                event_id=draft.event_id,
                sender=draft.sender,
                sender_name=names.get(draft.sender, draft.sender),
                timestamp=datetime.fromtimestamp(draft.ts / 1000, UTC),
                kind=draft.kind,
                body=body if isinstance(body, str) else "",
                formatted_body=formatted,
                edited=draft.edited,
                quote=await quote_of(draft),
                attachment=attachment,
                seen_by=tuple(draft.seen_by),
            )
        )
    return entries


def _quote_text(draft: _Draft) -> str:
    if draft.kind is EntryKind.REDACTED:
        return "message supprimé"
    if draft.kind is EntryKind.UNDECRYPTABLE:
        return "message non déchiffrable"
    body = draft.content.get("body", "")
    if not isinstance(body, str):
        return ""
    lines = body.split("\n")
    if draft.reply_to and lines and lines[0].startswith(">"):
        while lines and lines[0].startswith(">"):
            lines.pop(0)
    return " ".join(" ".join(lines).split())


async def _fetch_quote(
    client: AsyncClient, room_id: str, event_id: str, names: Mapping[str, str]
) -> Quote | None:
    """A replied-to message outside the exported period, fetched and decrypted."""
    response = await client.room_get_event(room_id, event_id)
    event = getattr(response, "event", None)
    if event is None:
        return None
    if isinstance(event, MegolmEvent):
        try:
            event = client.decrypt_event(event)
        except Exception:
            return Quote(names.get(event.sender, event.sender), "message non déchiffrable")
    source = _source(event)
    draft = _draft_of(source, source.get("type"), source.get("content") or {}, {})
    if draft is None:
        return None
    return Quote(names.get(draft.sender, draft.sender), _quote_text(draft))
