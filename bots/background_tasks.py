"""Work a bot component starts beside the sync loop — a new direct chat's greeting, a key
request, an export, a newcomer's welcome — kept so that closing the bot ends it.

Left running past the close, such a task acted after the stop and, calling the closed nio
client, made it open a new HTTP session that nobody closed (« Unclosed client session »).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Coroutine
from typing import Any

log = logging.getLogger(__name__)

CLOSE_SECONDS = 10.0  # how long a close waits for its cancelled tasks


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], name: str | None = None) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    async def wait_idle(self) -> None:
        """Until every task, those started meanwhile included, has ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, timeout: float = CLOSE_SECONDS) -> None:
        await end(list(self._tasks), timeout)


async def end(tasks: Collection[asyncio.Task[Any]], timeout: float = CLOSE_SECONDS) -> None:
    """Every task cancelled where it stands; bounded: one that does not end in time is
    named in the log, not waited for forever."""
    for task in tasks:
        task.cancel()
    if tasks:
        _, running = await asyncio.wait(tasks, timeout=timeout)
        for task in running:
            log.error("tâche toujours en cours à l'arrêt : %s", task.get_name())
