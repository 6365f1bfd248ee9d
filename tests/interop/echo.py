"""A bare nio client that answers every text message (the interop counterpart of the bot)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from nio import AsyncClient, MegolmEvent, RoomMessageNotice, RoomMessageText
from support import send_message


class EchoPeer:
    """Syncs in the background; answers each ``m.text`` with ``écho : <body>`` (``m.notice``)."""

    def __init__(self, client: AsyncClient, *, reply: bool = True) -> None:
        self.client = client
        self.reply = reply
        self.received: list[RoomMessageText | RoomMessageNotice] = []
        self.undecryptable: list[MegolmEvent] = []
        self._pending: list[tuple[str, str]] = []
        self._task: asyncio.Task[None] | None = None
        client.add_event_callback(self._on_text, RoomMessageText)  # type: ignore[arg-type]
        client.add_event_callback(self._on_notice, RoomMessageNotice)  # type: ignore[arg-type]
        client.add_event_callback(self._on_undecryptable, MegolmEvent)  # type: ignore[arg-type]

    async def _on_text(self, room: Any, event: RoomMessageText) -> None:
        if event.sender == self.client.user_id:
            return
        self.received.append(event)
        if self.reply:
            self._pending.append((room.room_id, event.body))

    async def _on_notice(self, room: Any, event: RoomMessageNotice) -> None:
        if event.sender != self.client.user_id:
            self.received.append(event)  # recorded, never answered (no notice ping-pong)

    async def _on_undecryptable(self, room: Any, event: MegolmEvent) -> None:
        self.undecryptable.append(event)

    async def sync_once(self, timeout_ms: int = 300) -> None:
        client = self.client
        await client.sync(timeout=timeout_ms)
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
        await client.send_to_device_messages()
        pending, self._pending = self._pending, []
        for room_id, body in pending:
            await self.send(room_id, f"écho : {body}")

    async def send(self, room_id: str, body: str) -> str:
        return await send_message(self.client, room_id, {"msgtype": "m.notice", "body": body})

    def start(self) -> None:
        async def loop() -> None:
            while True:
                await self.sync_once()

        self._task = asyncio.create_task(loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_for(self, predicate: Any, timeout: float = 30) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("condition jamais remplie côté nio")
            if self._task is None:
                await self.sync_once()
            else:
                await asyncio.sleep(0.2)
