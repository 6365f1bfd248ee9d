"""A connection pool that serves waiting requests in the order they came.

SQLAlchemy's async pool hands a returned connection to whoever asks next, and a request
that was already waiting and is woken finds it taken by a newcomer and goes back to the end
of the line. With one SQLite connection and many concurrent requests some waited hundreds
of milliseconds while the median waited thirty: the tail of the latency was the line's
unfairness, not work. Here a returned connection goes straight to the oldest waiter, and
a newcomer takes a free connection only when nobody is waiting.
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
