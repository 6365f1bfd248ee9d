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
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from nio import AsyncClient, MegolmEvent

from bots.export.media import MediaError, MediaFetcher, MediaSource
from bots.export.paging import (
    SHOWN_TYPES,
    HistoryError,
    HistoryRequest,
    event_source,
    events_in_order,
)
from bots.export.receipts import read_receipts
from bots.export.transcript import Attachment, Entry, EntryKind, Participant, Quote
from bots.flags.model import LABELS, STATE_TYPE, RoomFlags

__all__ = ["History", "HistoryError", "HistoryRequest", "fetch_history"]

log = logging.getLogger(__name__)

MEDIA_PARALLEL = 4
_MEDIA_TYPES = {"m.image", "m.file", "m.video", "m.audio"}


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
    async for source in events_in_order(client, request):  # page by page: raw events are not kept
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


def _draft_of(
    source: Mapping[str, Any], etype: Any, content: Mapping[str, Any], by_id: dict[str, _Draft]
) -> _Draft | None:
    event_id, sender, ts = source["event_id"], source["sender"], source["origin_server_ts"]
    unsigned = source.get("unsigned") or {}
    if etype not in SHOWN_TYPES:
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
    source = event_source(event)
    draft = _draft_of(source, source.get("type"), source.get("content") or {}, {})
    if draft is None:
        return None
    return Quote(names.get(draft.sender, draft.sender), _quote_text(draft))
