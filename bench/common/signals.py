"""A bench stopped with SIGTERM (``kill``, ``timeout``) cleans up as after an error: Python's
default for SIGTERM ends the process at once, without its ``finally`` blocks, which left a
whole ``cercle up --profile region`` (Synapse's workers, nginx, two dossiers) and its
PostgreSQL databases running after a ``kill`` of ``bench/region_load.py``."""

from __future__ import annotations

import signal
from types import FrameType


def _exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def clean_up_on_sigterm() -> None:
    """SIGTERM raises ``SystemExit`` in the main thread: the ``finally`` blocks run (under
    ``asyncio.run``, the main task is cancelled and its own run too)."""
    signal.signal(signal.SIGTERM, _exit)
