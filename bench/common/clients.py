"""The E2EE clients of the benches: a professional's device restored from its login, and
the sync loop that notes when what is awaited shows up."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from nio import AsyncClient, AsyncClientConfig, SyncResponse

from homeserver.admin_api import RegisteredUser

ENCRYPTED = [
    {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
]


def login_of(fields: Mapping[str, Any]) -> RegisteredUser:
    """A login passed on as JSON (to a child process, in a bench's saved state), read back."""
    return RegisteredUser(
        user_id=fields["user_id"],
        access_token=fields["access_token"],
        device_id=fields["device_id"],
    )


async def e2ee_client(
    homeserver: str, login: RegisteredUser, store: Path, *, store_sync_tokens: bool = True
) -> AsyncClient:
    """The device of a login, its keys uploaded and its first (full) sync done."""
    store.mkdir(parents=True, exist_ok=True)
    client = AsyncClient(
        homeserver,
        login.user_id,
        device_id=login.device_id,
        store_path=str(store),
        config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=store_sync_tokens),
    )
    client.restore_login(login.user_id, login.device_id, login.access_token)
    if client.should_upload_keys:
        await client.keys_upload()
    await client.sync(timeout=0, full_state=True)
    return client


async def post_as(
    http: aiohttp.ClientSession, base: str, token: str, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    """A Matrix POST with this access token: answered 429, retried after the server's
    ``retry_after_ms`` (5 s at most, 20 times at most); any other failure an error naming it."""
    for _attempt in range(20):
        async with http.post(
            base + path, json=body, headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            data = dict(await resp.json())
            if resp.status == 429:
                await asyncio.sleep(min(5.0, data.get("retry_after_ms", 500) / 1000))
                continue
            if resp.status != 200:
                raise RuntimeError(f"{path}: {resp.status} {data}")
            return data
    raise RuntimeError(f"{path}: toujours limité")


async def until(probe: Any, what: str, timeout: float = 60) -> None:
    """Wait until ``probe()`` holds, polling; RuntimeError(``what``) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(what)
        await asyncio.sleep(0.05)


class Watcher:
    """A client's sync loop (invitations joined, keys queried): each timeline event goes to
    ``seen`` with the time its sync came back. It sends texts and opens direct rooms."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    def seen(self, event: Any, now: float) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            resp = await self.client.sync(timeout=30_000)
            now = time.perf_counter()
            if not isinstance(resp, SyncResponse):
                await asyncio.sleep(0.5)
                continue
            for room_id in resp.rooms.invite:
                await self.client.join(room_id)
            for info in resp.rooms.join.values():
                for event in info.timeline.events:
                    self.seen(event, now)
            if self.client.should_query_keys:
                await self.client.keys_query()

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
        await self.client.close()

    async def send(self, room_id: str, body: str) -> str:
        resp = await self.client.room_send(
            room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": body},
            ignore_unverified_devices=True,
        )
        return str(resp.event_id)

    async def room_with(self, user_id: str, timeout: float = 30) -> str:
        """A new encrypted direct room, once ``user_id`` has joined it."""
        resp = await self.client.room_create(
            invite=[user_id], initial_state=ENCRYPTED, is_direct=True
        )
        room_id = str(resp.room_id)

        def joined() -> bool:
            room = self.client.rooms.get(room_id)
            return bool(room and user_id in room.users and user_id not in room.invited_users)

        await until(joined, f"{user_id} n'a pas rejoint le salon", timeout)
        return room_id


class Professional(Watcher):
    """Sends commands and times the replies (``m.in_reply_to``) others make to them."""

    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client)
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.replies: Counter[str] = Counter()

    def seen(self, event: Any, now: float) -> None:
        content = event.source.get("content", {})
        target = ((content.get("m.relates_to") or {}).get("m.in_reply_to") or {}).get("event_id")
        if target and event.sender != self.client.user_id:
            self.replies[target] += 1
            waiter = self.waiters.pop(target, None)
            if waiter and not waiter.done():
                waiter.set_result(now)

    async def command(self, room_id: str, body: str, timeout: float = 30) -> float:
        """Seconds from the send's start until a reply to it is seen."""
        t0 = time.perf_counter()
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        event_id = await self.send(room_id, body)
        if self.replies[event_id]:
            return time.perf_counter() - t0
        self.waiters[event_id] = waiter
        return await asyncio.wait_for(waiter, timeout) - t0


class Storm:
    """Messages at a steady ``rate`` a second, round robin over ``rooms``, room i's sent by
    ``senders[i % len(senders)]``; no send waits for the one before (a slow answer does not
    slow the rate). ``sent`` counts them; ``stop`` ends the loop and cancels what is left."""

    def __init__(self, senders: Sequence[Watcher], rooms: Sequence[str], rate: float) -> None:
        self.senders = senders
        self.rooms = rooms
        self.rate = rate
        self.sent = 0
        self._over = asyncio.Event()
        self._pending: set[asyncio.Task[str]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        next_at = time.monotonic()
        while not self._over.is_set():
            i = self.sent % len(self.rooms)
            sender = self.senders[i % len(self.senders)]
            task = asyncio.create_task(sender.send(self.rooms[i], f"message de fond {self.sent}"))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            self.sent += 1
            next_at += 1 / self.rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def stop(self) -> None:
        self._over.set()
        if self._task is not None:
            await self._task
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
