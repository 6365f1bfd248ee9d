"""The garbage collector's settings for a long-running service process.

After start-up the process holds a large, stable object graph (SQLAlchemy's mappers and
compiled statements, jinja2 templates, the forms' declarations). Python's collector
walks it again at every full collection: pauses of tens of milliseconds in the middle of
requests, the tail of the latency. Freezing what exists once the service is ready takes
it out of every later collection; a larger young-generation threshold makes collections
rarer (requests allocate many short-lived objects that die by reference counting anyway).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000  # default 700
MIDDLE_THRESHOLD = 50  # default 10
OLD_THRESHOLD = 1_000  # default 10


def settle_after_startup() -> None:
    """Call once the app is built, before serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
