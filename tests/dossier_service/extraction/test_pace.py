"""The extraction's reads give way when no processor was idle, and only then."""

from __future__ import annotations

import pytest

from dossier_service.extraction.pace import Pace, cpu_times, pause_for


def test_a_read_on_a_busy_machine_is_followed_by_a_wait_bounded_by_most() -> None:
    assert pause_for(0.2, idle_cpus=0.1, factor=3, most=1.0) == pytest.approx(0.6)
    assert pause_for(2.0, idle_cpus=0.0, factor=3, most=1.0) == 1.0
    assert pause_for(0.2, idle_cpus=0.5, factor=3, most=1.0) == 0.0  # half a processor idle
    assert pause_for(0.2, idle_cpus=1.7, factor=3, most=1.0) == 0.0


async def test_pace_waits_only_after_reads_made_while_the_machine_was_busy() -> None:
    # (all ticks, idle ticks) read before the first read and after each read or wait
    stats = iter([(0, 0), (200, 5), (400, 200), (600, 210), (800, 400), (1000, 590)])
    waits: list[float] = []
    now = iter([0.0, 0.1, 1.0, 1.2, 2.0, 2.05])

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    pace = Pace(factor=3, times=lambda: next(stats), cpus=2, sleep=sleep, clock=lambda: next(now))

    async def read() -> str:
        return "rows"

    assert await pace.read(read) == "rows"  # 5 of 200 ticks idle: busy, a 0.1 s read → 0.3 s
    assert waits == [pytest.approx(0.3)]
    assert await pace.read(read) == "rows"  # the wait's idleness was not counted: still busy
    assert waits[1:] == [pytest.approx(0.6)]
    assert await pace.read(read) == "rows"  # 190 of 200 idle: nothing to wait for
    assert len(waits) == 2 and pace.waited == waits[0] + waits[1]


def test_cpu_times_reads_this_linux_machine() -> None:
    times = cpu_times()
    assert times is not None and times[0] > times[1] > 0
