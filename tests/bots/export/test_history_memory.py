"""The export's memory does not grow with the room: 20,000 events cost what 2,000 do.

Each size runs in a fresh process (peak RSS is per process): `history_memory_child.py`
pages synthetic events through `fetch_history` and reads every entry back in a worker
thread.  The bound, 8 MiB for 18,000 more events, is what stays bounded on purpose:
SQLite's page cache (2 MiB for the connection that writes, 2 MiB for the one that
reads) and allocator slack; the 2,000-event run already holds a full page of 1,000
events.  Keeping the drafts and entries in lists, as before, costs about 2 KiB per
event here: the same test measured +38 MiB with that code (20,000: 105 MiB, 2,000:
67 MiB), +3.4 MiB with the spool.

On a real Synapse room of 10,001 encrypted messages (bench/export_pdf.py, fetch only),
RSS grew by 32.5 MB during the fetch before and 17.8 MB after; tracemalloc puts what
Python still holds after the fetch (5.5 MB) entirely in nio's replay-protection cache
(about 520 B per decrypted event, nio caps it at 100,000), the rest is the peak of one
page of 1,000 parsed events.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from bots.export.history import HistoryRequest, fetch_history
from tests.bots.export.history_memory_child import ROOM, SyntheticRoom

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


async def test_a_history_fetched_without_a_directory_cleans_up_after_itself() -> None:
    history = await fetch_history(SyntheticRoom(50), HistoryRequest(ROOM), None)  # type: ignore[arg-type]
    directory = history.entries.path.parent
    assert directory.name.startswith("cercle-historique-")
    assert len(list(history.entries)) == len(history.entries) == 48
    del history
    gc.collect()
    assert not directory.exists()  # decrypted messages do not outlive the entries
