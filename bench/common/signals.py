"""A bench stopped with SIGTERM (``kill``, ``timeout``) cleans up as after an error: Python's
default for SIGTERM ends the process at once, without its ``finally`` blocks, which left a
whole ``cercle up --profile region`` (Synapse's workers, nginx, two dossiers) and its
PostgreSQL databases running after a ``kill`` of ``bench/region_load.py``."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")


def _exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def clean_up_on_sigterm() -> None:
    """Outside an event loop, SIGTERM raises ``SystemExit`` in the main thread: the
    ``finally`` blocks run. Inside one, use ``run`` below."""
    signal.signal(signal.SIGTERM, _exit)


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` where SIGTERM cancels ``main``'s task: its ``finally`` blocks
    run as the cancellation unwinds (an exception raised from a signal handler in the middle
    of the loop left the task pending and destroyed once, its ``finally`` never run)."""

    async def cancellable() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await main
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, _exit)

    return asyncio.run(cancellable())
