"""The export's memory does not grow with the room: 20,000 events cost what 2,000 do.

Each size runs in a fresh process (peak RSS is per process): `history_memory_child.py`
pages synthetic events through `fetch_history` and reads every entry back in a worker
thread.  The bound, 8 MiB for 18,000 more events, is what stays bounded on purpose:
SQLite's page cache (2 MiB for the connection that writes, 2 MiB for the one that
reads) and allocator slack; the 2,000-event run already holds a full page of 1,000
events.  Keeping the drafts and entries in lists, as before, costs about 2 KiB per
event here: the same test measured +38 MiB with that code (20,000: 105 MiB, 2,000:
67 MiB), +3.4 MiB with the spool.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHILD = Path(__file__).with_name("history_memory_child.py")
ROOT = Path(__file__).resolve().parents[3]
BOUND_KIB = 8 * 1024


def run(count: int) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, str(CHILD), str(count), str(ROOT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def test_peak_memory_does_not_grow_with_the_history() -> None:
    small, large = run(2_000), run(20_000)
    # everything was read back: edits, replies and receipts resolved at both sizes
    assert large["entries"] == 10 * small["entries"] == 19_010
    assert large["edited"] == 990 and large["quotes"] == 990 and large["seen"] == 5
    growth = large["peak_rss_kib"] - small["peak_rss_kib"]
    assert growth < BOUND_KIB, f"+{growth} KiB for 18,000 more events"
