"""Every benchmark under bench/ starts as its docstring says (``.venv/bin/python bench/X.py``).

A bench is run rarely and by hand, so one that no longer imports (a helper moved into
``tests/`` or ``bench/common/``) stays broken unseen until someone needs its figures. Each is
started here with ``--help``: that imports all it needs and parses its arguments, nothing more.
Modules that only serve benches live in ``bench/common/`` and are not run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHES = sorted(p.name for p in (ROOT / "bench").glob("*.py"))


def test_there_are_benches() -> None:
    assert "bot_latency.py" in BENCHES and "compare_trees.py" in BENCHES


@pytest.mark.parametrize("bench", BENCHES)
def test_bench_starts(bench: str) -> None:
    done = subprocess.run(
        [sys.executable, f"bench/{bench}", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
