"""How worker loops sleep until woken (``deployment.conventions.wait_set``): a stop that comes
as the loop is woken must stop it. ``asyncio.wait_for`` on Python 3.11 drops that
cancellation, and the bot's ``close()`` then waited forever for the loop it had cancelled."""

from __future__ import annotations

import asyncio

import pytest

from deployment.conventions import wait_set


async def _stopped_as_woken(wait) -> str:  # type: ignore[no-untyped-def]
    """Wake the event and cancel the waiting task in the same turn of the loop."""
    event = asyncio.Event()
    task = asyncio.create_task(wait(event))
    await asyncio.sleep(0)  # the task now waits
    event.set()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return "stopped"
    return "went on"


async def test_a_stop_that_comes_as_the_loop_is_woken_stops_it() -> None:
    assert await _stopped_as_woken(lambda event: wait_set(event, 10)) == "stopped"
    assert await _stopped_as_woken(lambda event: wait_set(event, None)) == "stopped"


@pytest.mark.skipif(
    not hasattr(asyncio, "timeout") or __import__("sys").version_info >= (3, 12),
    reason="the race is Python 3.11's wait_for",
)
async def test_the_python_3_11_wait_for_it_replaces_drops_that_stop() -> None:
    # why wait_set exists: the same scene with wait_for goes on running
    async def with_wait_for(event: asyncio.Event) -> None:
        await asyncio.wait_for(event.wait(), 10)

    assert await _stopped_as_woken(with_wait_for) == "went on"


async def test_woken_or_timed_out() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 0.01) is True
    assert await wait_set(event, None) is True
