"""The figures every bench prints: percentiles, a process's CPU time and resident memory, a
free loopback port."""

from __future__ import annotations

import os
import socket
import statistics
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    """The ``p``-th percentile (0–100), nearest rank; NaN for no value."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


def latency_ms(values: list[float], *, p: float = 99) -> str:
    """``p50 … ms  p<p> … ms (n=…)`` for durations in seconds."""
    ms = [v * 1000 for v in values]
    return f"p50 {statistics.median(ms):6.1f} ms  p{p:g} {pct(ms, p):6.1f} ms (n={len(ms)})"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    """Resident memory (VmRSS) of a running process, in MiB."""
    for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
        if ln.startswith("VmRSS:"):
            return int(ln.split()[1]) / 1024
    return float("nan")
