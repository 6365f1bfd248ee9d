"""A connection pool that serves waiting requests in the order they came.

SQLAlchemy's async pool hands a returned connection to whoever asks next, and a request
that was already waiting and is woken finds it taken by a newcomer and goes back to the end
of the line. With one SQLite connection and many concurrent requests some waited hundreds
of milliseconds while the median waited thirty: the tail of the latency was the line's
unfairness, not work. Here a returned connection goes straight to the oldest waiter, and
a newcomer takes a free connection only when nobody is waiting.

This replaces the pool's ``_queue_class``, which SQLAlchemy does not document. The public
design, SQLAlchemy's own pool behind a first-come-first-served line (an ``asyncio.Semaphore``
of the pool's size taken by every transaction, ``bench/alternatives/dossier_designs.py``),
was measured against it in the same run (``bench/dossier_load.py --designs
service,public,inline-line --rounds 3``, 32 clients, interleaved; requests per second of the
server's own CPU, medians of 3 rounds). On SQLite, same driver both ways (``inline-line``),
load average 8.2 to 9.7 on 2 shared cores:

                        here (service)    line       (each round, here / line)
    file JSON                789 /s         661 /s     789/661  823/668  644/606
    task dashboard         1,405 /s       1,074 /s   1,427/1,131 1,405/1,074 1,306/830
    note + audit writes      605 /s         490 /s     667/490  588/531  605/427

The line is held by a whole transaction, the pool only once a statement needs the
connection: a dashboard or file served from its cache waits in the line for nothing. On
PostgreSQL (pool of 10 + 10, load average 9.2 to 9.4) the two were within the noise (file
297 / 273, dashboard 364 / 368, writes 303 / 253 per CPU second). One pool for both
databases: this one. Its upstream source is pinned by
tests/dossier_service/test_upstream_pins.py, SQLAlchemy to the tested minor version.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util.concurrency import await_
from sqlalchemy.util.queue import Empty, Full, QueueCommon

T = TypeVar("T")


class FairQueue(QueueCommon[T], Generic[T]):
    """First come, first served; ``get`` never waits when a connection is free and nobody
    is in line. Used from SQLAlchemy's pool inside its greenlets (``await_``)."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        self.maxsize = maxsize
        self.use_lifo = use_lifo  # kept for the pool's `recreate`; order is always FIFO
        self._items: deque[T] = deque()
        self._waiters: deque[asyncio.Future[T]] = deque()

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: T) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # the oldest waiter still in line gets it, no detour
                waiter.set_result(item)
                return
        if self.full():
            raise Full()
        self._items.append(item)

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        self.put_nowait(item)  # bounded by the pool itself: never more than maxsize out

    def get_nowait(self) -> T:
        if not self._items:
            raise Empty()
        return self._items.popleft()

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        if self._items and not self._waiters:
            return self._items.popleft()
        if not block:
            raise Empty()
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            if timeout is None:
                return await_(waiter)
            return await_(asyncio.wait_for(asyncio.shield(waiter), timeout))
        except BaseException as error:  # timed out or cancelled while in line
            if waiter.done() and not waiter.cancelled():
                self.put_nowait(waiter.result())  # handed over too late: to the next one
            else:
                waiter.cancel()  # leaves the line (put_nowait skips it)
            if isinstance(error, TimeoutError):
                raise Empty() from None
            raise


class _FairEntryQueue(FairQueue[ConnectionPoolEntry]):
    pass


class FairAsyncPool(AsyncAdaptedQueuePool):
    """``create_async_engine(url, poolclass=FairAsyncPool, pool_size=…)``."""

    _queue_class = _FairEntryQueue
