"""The garbage collector's settings for a long-running service process.

After start-up the process holds a large, stable object graph (SQLAlchemy's mappers and
compiled statements, jinja2 templates, the forms' declarations). Python's collector
walks it again at every full collection: pauses of tens of milliseconds in the middle of
requests, the tail of the latency. Freezing what exists once the service is ready takes
it out of every later collection. The thresholds stay Python's own: larger ones (tried up
to 50,000 young objects) made collections rarer but each one longer, and the tail worse.
"""

from __future__ import annotations

import gc


def settle_after_startup() -> None:
    """Call once the app is built, before serving."""
    gc.collect()
    gc.freeze()
