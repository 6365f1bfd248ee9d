"""A per-IP rate limit for the public forms (no I/O). Their CSRF is the dossier's
(:mod:`dossier_service.auth`)."""

from __future__ import annotations

import time
from collections import deque


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds for each key (an IP address)."""

    def __init__(self, limit: int, window: float, *, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._events: dict[str, deque[float]] = {}

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        events = self._events.get(key)
        if events is None:
            if len(self._events) >= self.max_keys:
                self._prune(now)
            events = self._events[key] = deque()
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True

    def retry_after(self, key: str, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        events = self._events.get(key)
        if not events:
            return 0
        return max(1, int(events[0] + self.window - now) + 1)

    def _prune(self, now: float) -> None:
        for key in [k for k, ev in self._events.items() if not ev or ev[-1] <= now - self.window]:
            del self._events[key]
