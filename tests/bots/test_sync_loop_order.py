"""The order of the sync loop's requests around a command, without Synapse: the reply goes out
before the next /sync is asked for (as nio's own ``sync_forever`` does), unless handling takes
longer than the loop's reply window."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from nio import AsyncClient, Event, MatrixRoom, RoomMessageText, SyncResponse
from support import one_room_sync

from bots.matrix.ledger import EventLedger, open_database
from bots.matrix.sync_loop import SyncLoop
from bots.matrix.undecryptable import UndecryptableEvents

ROOM = "!salon:cercle.test"
BOT = "@bot:cercle.test"


def response(token: str, *events: dict[str, Any]) -> SyncResponse:
    return one_room_sync(ROOM, token, *events)


def command(event_id: str) -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "event_id": event_id,
        "sender": "@alice:cercle.test",
        "origin_server_ts": 1,
        "content": {"msgtype": "m.text", "body": "!aide vu"},
    }


class ScriptedServer(AsyncClient):  # type: ignore[misc]  # nio has no type hints
    """A client whose /sync answers come from a script; every request is written down in
    ``requests``. Past the script, /sync long-polls until cancelled."""

    def __init__(self, responses: list[SyncResponse], requests: list[str]) -> None:
        super().__init__("http://localhost", BOT)
        self.rooms[ROOM] = MatrixRoom(ROOM, BOT)
        self._responses = responses
        self.requests = requests
        self.waiting = asyncio.Event()

    async def upload_filter(self, *args: Any, **kwargs: Any) -> Any:
        return None  # refused: the filter goes inline

    async def send_to_device_messages(self) -> list[Any]:
        return []

    async def sync(self, *args: Any, **kwargs: Any) -> Any:
        self.requests.append("/sync")
        if not self._responses:
            self.waiting.set()
            await asyncio.Event().wait()  # a long-poll nothing answers
        return self._responses.pop(0)


class Replier:
    """Answers each command with one request, as a quick command does (``!aide vu``), or
    never finishes (``stuck``)."""

    def __init__(self, requests: list[str], *, stuck: bool = False) -> None:
        self.requests = requests
        self.stuck = stuck

    def wants(self, event: Event, room: MatrixRoom) -> bool:
        return isinstance(event, RoomMessageText)

    async def handle(self, event: Event, room: MatrixRoom) -> None:
        if self.stuck:
            await asyncio.Event().wait()
        await asyncio.sleep(0.01)  # the reply's round trip
        self.requests.append(f"reply to {event.event_id}")

    def observe_state(self, room_id: str, event: Event) -> None:
        pass

    async def on_invite(self, room_id: str, inviter: str | None, *, direct: bool = False) -> None:
        pass


async def run_script(tmp_path: Path, handlers: Replier, requests: list[str], **kw: Any) -> None:
    client = ScriptedServer(
        [response("s1"), response("s2", command("$cmd")), response("s3", command("$next"))],
        requests,
    )
    ledger = EventLedger(open_database(tmp_path / "bot.sqlite3"))
    loop = SyncLoop(client, ledger, handlers, UndecryptableEvents(client, ledger), **kw)
    task = asyncio.create_task(loop.run())
    try:
        await asyncio.wait_for(client.waiting.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await loop.close()
        await client.close()


async def test_the_reply_goes_out_before_the_next_sync(tmp_path: Path) -> None:
    """Asked for earlier, the next /sync reached the homeserver ahead of the reply, and the
    reply, once stored, woke the bot's own /sync together with the recipient's: two sync
    answers computed at once, the recipient's sometimes second (issue 15's bot/echo gap)."""
    requests: list[str] = []
    # a window far longer than the reply: the order does not depend on the machine's load
    await run_script(tmp_path, Replier(requests), requests, reply_window_seconds=30)
    assert requests == ["/sync", "/sync", "reply to $cmd", "/sync", "reply to $next", "/sync"]


async def test_a_handler_that_takes_long_does_not_hold_the_sync(tmp_path: Path) -> None:
    """Past the reply window the loop syncs on while the handler runs: other rooms' events are
    not held behind a slow command."""
    requests: list[str] = []
    await run_script(tmp_path, Replier(requests, stuck=True), requests, reply_window_seconds=0.05)
    assert requests == ["/sync", "/sync", "/sync", "/sync"]
