"""Where the time of handling an event goes: the bot's own work versus waiting for the
homeserver. The sync loop opens a ``HandlingClock`` per event; the I/O layer wraps each
request in ``waiting_for_server``; the difference is the bot's own handling time."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

_server_wait: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "cercle_server_wait", default=None
)


async def waiting_for_server(request: Awaitable[T]) -> T:
    start = time.perf_counter()
    try:
        return await request
    finally:
        acc = _server_wait.get()
        if acc is not None:
            acc[0] += time.perf_counter() - start


class HandlingClock:
    """``with HandlingClock() as clock: …`` then ``clock.own_seconds``."""

    def __init__(self) -> None:
        self._acc = [0.0]
        self.own_seconds = 0.0
        self.total_seconds = 0.0

    def __enter__(self) -> HandlingClock:
        self._token = _server_wait.set(self._acc)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.total_seconds = time.perf_counter() - self._start
        self.own_seconds = max(0.0, self.total_seconds - self._acc[0])
        _server_wait.reset(self._token)
