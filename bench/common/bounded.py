"""Awaitables run a bounded number at a time (a bench's preparation: rooms, accounts)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def bounded(concurrency: int, jobs: list[Awaitable[T]]) -> list[T]:
    """The awaitables ``jobs`` run ``concurrency`` at a time; their results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Awaitable[T]) -> T:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(job) for job in jobs)))
