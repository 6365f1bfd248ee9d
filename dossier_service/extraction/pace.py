"""The extraction's reads give way to the dossier's users when the machine is busy.

The render process runs in the idle scheduling class (``render.yield_to_others``), but the
database server that answers its queries does not: PostgreSQL runs every backend at the same
priority, and even SQLite's reads share the machine's caches and memory bandwidth with the
service. Measured on the full-size platform (``bench/extraction.py``, 10,000 files, PostgreSQL,
8 readers keeping the dossier busy): the readers' p99 grew by a third during an extraction.

So after each read the extraction looks at the processors: when none was left idle since
the previous read (the dossier and its database are serving people), it waits ``factor``
times as long as that read took before the next one — the database then gives the readers
most of its time; on a machine with an idle processor it goes on at once, and alone it runs
at full speed. Linux's ``/proc/stat`` tells the idle time; elsewhere there is no waiting.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
STAT = Path("/proc/stat")


def cpu_times() -> tuple[float, float] | None:
    """(all, idle) clock ticks of every processor since boot, or None where unknown."""
    try:
        first = STAT.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [float(v) for v in first[1:]]
    return sum(ticks[:8]), ticks[3] + ticks[4]  # user…steal (no guest twice); idle + iowait


def pause_for(read_seconds: float, idle_cpus: float, *, factor: float, most: float) -> float:
    """Pure: how long to wait after a read of ``read_seconds`` when ``idle_cpus`` processors'
    worth of time were idle meanwhile."""
    if idle_cpus >= 0.5:
        return 0.0
    return min(read_seconds * factor, most)


class Pace:
    def __init__(
        self,
        *,
        factor: float = 3.0,
        most: float = 1.0,
        times: Callable[[], tuple[float, float] | None] = cpu_times,
        cpus: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.factor, self.most = factor, most
        self.times, self.sleep, self.clock = times, sleep, clock
        self.cpus = cpus or os.cpu_count() or 1
        self.waited = 0.0  # seconds given way, for the benchmark and the tests
        self._last = times()

    async def read(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run one read, then give way as the processors' idleness says."""
        started = self.clock()
        result = await work()
        seconds = self.clock() - started
        now = self.times()
        if now is not None and self._last is not None and now[0] > self._last[0]:
            share_idle = (now[1] - self._last[1]) / (now[0] - self._last[0])
            wait = pause_for(seconds, share_idle * self.cpus, factor=self.factor, most=self.most)
            if wait > 0:
                self.waited += wait
                await self.sleep(wait)
                now = self.times()  # the wait's own idleness does not count for the next read
        self._last = now
        return result
