"""The events a limited /sync timeline skipped, fetched back (after a long absence)."""

from __future__ import annotations

import logging

from nio import AsyncClient, Event, RoomMessagesResponse

log = logging.getLogger(__name__)

GAP_PAGES = 20  # at most 20 pages of 100 events fetched back per room after a long absence


async def fetch_gap(
    client: AsyncClient, room_id: str, prev_batch: str | None, since: str
) -> list[Event]:
    """The events between ``since`` and the start of a limited timeline, oldest first."""
    events: list[Event] = []
    start = prev_batch
    for _ in range(GAP_PAGES):
        if not start:
            break
        resp = await client.room_messages(room_id, start=start, end=since, limit=100)
        if not isinstance(resp, RoomMessagesResponse) or not resp.chunk:
            break
        events.extend(resp.chunk)
        if not resp.end or resp.end == start:
            break
        start = resp.end
    else:
        log.warning("trou de plus de %d pages dans room=%s : début ignoré", GAP_PAGES, room_id)
    events.reverse()
    return events
