"""Read receipts for « Vu par »: the latest public receipt per member."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from urllib.parse import quote

from nio import AsyncClient

log = logging.getLogger(__name__)


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
