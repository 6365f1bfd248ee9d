"""Run in a fresh process by test_history_memory.py: `python history_memory_child.py N`.

Feeds N synthetic timeline events through `fetch_history` (paging, spool, receipts,
replies, edits) and reads every entry back in a worker thread, as the PDF renderer does;
prints the peak RSS in KiB.  The room stands in for nio's client: it builds each page
when asked, so the events exist only while their page is read.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOM = "!suivi:cercle.test"
MEMBERS = [f"@soignant{i}:cercle.test" for i in range(6)]
BODY = (
    "Passage de 9 h : pansement refait, plaie propre, pas d'écoulement. Tension 13/8, "
    "pouls 72, température 37,1. Douleur 2/10 après le soin. Œdème léger de la cheville "
    "droite, à surveiller ; prochaine visite demain matin, ordonnance renouvelée. "
)


def event(i: int) -> dict[str, Any]:
    sender = MEMBERS[i % len(MEMBERS)]
    content: dict[str, Any] = {"msgtype": "m.text", "body": f"{i} — {BODY}"}
    if i % 10 == 9:  # a reply to a message a little earlier
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": f"$e{i - 7}"}}
    if i % 20 == 19:  # an edit by the same sender of a message a little earlier
        content = {
            "msgtype": "m.text",
            "body": f"* {i} corrigé",
            "m.new_content": {"msgtype": "m.text", "body": f"{i} corrigé — {BODY}"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": f"$e{i - 6}"},
        }
    if i % 97 == 96:  # a reply to a message before the export
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": f"$avant{i}"}}
    return {
        "event_id": f"$e{i}",
        "sender": sender,
        "origin_server_ts": 1_764_000_000_000 + i * 1000,
        "type": "m.room.message",
        "content": content,
    }


class Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.status = 200
        self.body = body

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def json(self) -> dict[str, Any]:
        return self.body


class SyntheticRoom:
    """What `fetch_history` asks of nio's client, for one room of `count` events."""

    user_id = "@cercle-bot:cercle.test"
    access_token = "jeton"

    def __init__(self, count: int) -> None:
        self.count = count
        self.rooms: dict[str, Any] = {}

    async def room_messages(self, room_id: str, start: str | None = None, **kw: Any) -> Any:
        offset = int(start or 0)
        stop = min(self.count, offset + kw["limit"])
        chunk = [SimpleNamespace(source=event(i)) for i in range(offset, stop)]
        return SimpleNamespace(chunk=chunk, end=str(stop))

    async def room_get_event(self, room_id: str, event_id: str) -> Any:
        return SimpleNamespace(event=None)

    async def send(self, method: str, path: str, **kw: Any) -> Response:
        receipts = {
            f"$e{self.count - 1 - n}": {"m.read": {user: {"ts": 1}}}
            for n, user in enumerate(MEMBERS)
        }
        sync = {
            "rooms": {
                "join": {
                    ROOM: {"ephemeral": {"events": [{"type": "m.receipt", "content": receipts}]}}
                }
            }
        }
        return Response(sync)


def consume(entries: Any) -> dict[str, int]:
    """What the renderer does with the entries: one pass, nothing kept."""
    count = chars = quotes = seen = edited = 0
    for entry in entries:
        count += 1
        chars += len(entry.body)
        quotes += entry.quote is not None
        seen += len(entry.seen_by)
        edited += entry.edited
    return {"entries": count, "chars": chars, "quotes": quotes, "seen": seen, "edited": edited}


async def main(count: int) -> dict[str, int]:
    from bots.export.history import HistoryRequest, fetch_history

    history = await fetch_history(SyntheticRoom(count), HistoryRequest(ROOM), None)  # type: ignore[arg-type]
    result = await asyncio.to_thread(consume, history.entries)
    result["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(Path(sys.argv[2]) if len(sys.argv) > 2 else Path.cwd()))
    print(json.dumps(asyncio.run(main(int(sys.argv[1])))))
