"""A room's history as export entries: paged, decrypted with the bot's keys, resolved.

`fetch_history(client, request, media)` pages `/messages` with nio in bounded
pages (nio decrypts Megolm events with the bot's keys on the way) and writes each
event's draft to a `HistorySpool` on disk as it arrives, then resolves there: edits
(latest version, « modifié »), redactions (« message supprimé »), replies (quoted),
undecryptable events (kept, « message non déchiffrable »), flag state changes
(`fr.cercle.flags`), and the read receipts the bot knows (the latest per member,
under the last shown message they read).  Attachments are fetched by
`media.MediaFetcher` into temp files, a few at a time.  Memory is bounded by the
room's members and the page size, not by the length of its history: `History.entries`
reads the entries back lazily from the spool.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

from nio import AsyncClient, MegolmEvent

from bots.export.drafts import Draft, TimelineReader, draft_of, in_period, quote_text
from bots.export.media import MediaError, MediaFetcher, MediaSource
from bots.export.paging import (
    HistoryError,
    HistoryRequest,
    event_source,
    events_in_order,
    events_newest_first,
    is_chatter,
    reads_backward,
)
from bots.export.receipts import read_receipts
from bots.export.spool import HistorySpool, SpooledEntries
from bots.export.transcript import Participant
from bots.matrix.events import fetch_event

__all__ = ["History", "HistoryError", "HistoryRequest", "fetch_history"]

log = logging.getLogger(__name__)

MEDIA_PARALLEL = 4
MEDIA_BATCH = 64  # attachments handed to the downloads at a time


@dataclass
class History:
    entries: SpooledEntries  # re-iterable, lazy: read from the spool at each iteration
    participants: tuple[Participant, ...]  # wrote or joined during the period
    first: datetime | None = None
    last: datetime | None = None
    pages: int = 0
    events: int = 0
    seconds_paging: float = 0.0  # /messages + decryption
    seconds_media: float = 0.0  # attachments downloaded and decrypted
    invited: tuple[Participant, ...] = ()  # invited, not (yet) joined: listed apart


async def fetch_history(
    client: AsyncClient,
    request: HistoryRequest,
    media: MediaFetcher | None,
    *,
    directory: Path | None = None,
) -> History:
    """The history, spooled in `directory` (default: the media's, else a temp directory
    removed once the entries are no longer referenced).  The entries can be read as long
    as that directory exists."""
    owned: Path | None = None
    if directory is None:
        directory = media.directory if media is not None else None
    if directory is None:
        owned = directory = Path(tempfile.mkdtemp(prefix="cercle-historique-"))
    try:
        spool = HistorySpool(directory)
        try:
            history = await _fetch_into(spool, client, request, media)
        finally:
            spool.close()
    except BaseException:
        if owned is not None:
            shutil.rmtree(owned, ignore_errors=True)
        raise
    if owned is not None:
        weakref.finalize(history.entries, shutil.rmtree, owned, True)
    return history


async def _fetch_into(
    spool: HistorySpool, client: AsyncClient, request: HistoryRequest, media: MediaFetcher | None
) -> History:
    room = client.rooms.get(request.room_id)
    names: dict[str, str] = {}
    if room is not None:
        for user_id, user in room.users.items():
            names[user_id] = user.display_name or user_id
    reader = TimelineReader(names)
    events = 0
    started_at = time.perf_counter()

    joined: set[str] = set()

    def read(source: dict[str, Any]) -> None:
        if source.get("type") == "m.room.member" and in_period(
            source["origin_server_ts"], request.since, request.until
        ):
            content = source.get("content") or {}
            if content.get("membership") == "join" and isinstance(source.get("state_key"), str):
                joined.add(source["state_key"])
        item = reader.read(source)
        shown = isinstance(item, Draft) and in_period(item.ts, request.since, request.until)
        if request.last is not None and is_chatter(source, request.command_prefix):
            shown = False  # « derniers N »: commands and export notices neither count nor show
        spool.add(source["event_id"], item, shown=shown)

    if reads_backward(request):  # « derniers N »: newest first, put back in order on disk
        async for source in events_newest_first(client, request):
            events += 1
            spool.stage(source)
            if events % request.page_size == 0:
                spool.commit()
        for source in spool.staged():
            read(source)
    else:
        async for source in events_in_order(client, request):  # raw events are not kept
            events += 1
            read(source)
            if events % request.page_size == 0:
                spool.commit()
    if request.last is not None:
        spool.keep_last(request.last)
    paged_at = time.perf_counter()
    receipts = await read_receipts(client, request.room_id)
    spool.place_receipts(client.user_id, receipts, names)
    for event_id in spool.outside_replies():
        spool.set_quote(event_id, await _fetch_quote(client, request.room_id, event_id))
    received_at = time.perf_counter()
    if request.with_attachments and media is not None:
        await _fetch_attachments(spool, media)
    first, last = spool.bounds()
    # those who wrote or joined in the period; someone only invited is listed apart
    people = (spool.senders() | joined) - {client.user_id}
    participants = _by_name(people, names)
    invited = _by_name(set(room.invited_users if room else ()) - people, names)
    return History(
        entries=spool.entries(names),
        participants=participants,
        invited=invited,
        first=first,
        last=last,
        pages=events // max(1, request.page_size) + 1,
        events=events,
        seconds_paging=paged_at - started_at,
        seconds_media=time.perf_counter() - received_at,
    )


def _by_name(user_ids: set[str], names: dict[str, str]) -> tuple[Participant, ...]:
    return tuple(
        Participant(user_id, name)
        for user_id, name in sorted(
            ((u, names.get(u, u)) for u in user_ids), key=lambda item: item[1].lower()
        )
    )


async def _fetch_attachments(spool: HistorySpool, media: MediaFetcher) -> None:
    """Every attachment downloaded, MEDIA_PARALLEL at a time, its result written at once;
    a bounded batch of them in flight."""
    semaphore = asyncio.Semaphore(MEDIA_PARALLEL)

    async def download(seq: int, source: MediaSource) -> None:
        async with semaphore:
            try:
                fetched = await media.fetch(source)
            except MediaError as error:
                spool.set_attachment(seq, None, error.reason)
            else:
                spool.set_attachment(seq, fetched)

    pending = spool.attachments()
    while batch := list(islice(pending, MEDIA_BATCH)):
        await asyncio.gather(*(download(seq, source) for seq, source in batch))


async def _fetch_quote(client: AsyncClient, room_id: str, event_id: str) -> tuple[str, str] | None:
    """A replied-to message outside the exported period, fetched and decrypted:
    (sender, quoted text), or None when it cannot be read."""
    event = await fetch_event(client, room_id, event_id)
    if event is None:
        return None
    if isinstance(event, MegolmEvent):
        return event.sender, "message non déchiffrable"
    draft = draft_of(event_source(event))
    if not isinstance(draft, Draft):
        return None
    return draft.sender, quote_text(draft.kind, draft.content, draft.reply_to)
