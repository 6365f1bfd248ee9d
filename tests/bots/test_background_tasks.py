"""What a component starts beside the sync loop ends with the bot (bots.background_tasks)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bots.background_tasks import BackgroundTasks


async def test_close_cancels_every_task_and_waits_for_them() -> None:
    tasks = BackgroundTasks()
    ended: list[str] = []

    async def long(name: str) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            ended.append(name)

    spawned = [tasks.spawn(long(n), name=n) for n in ("a", "b")]
    await asyncio.sleep(0)
    assert len(tasks) == 2
    await tasks.close()
    assert sorted(ended) == ["a", "b"] and all(t.cancelled() for t in spawned)
    assert len(tasks) == 0


async def test_a_task_that_will_not_end_is_named_not_waited_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = BackgroundTasks()
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue  # refuses to stop

    task = tasks.spawn(stubborn(), name="têtue")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR):
        await tasks.close(timeout=0.05)
    assert "têtue" in caplog.text and not task.done()
    release.set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_wait_idle_waits_for_tasks_started_meanwhile() -> None:
    tasks = BackgroundTasks()
    done: list[int] = []

    async def second() -> None:
        await asyncio.sleep(0.01)
        done.append(2)

    async def first() -> None:
        await asyncio.sleep(0.01)
        tasks.spawn(second())
        done.append(1)

    tasks.spawn(first())
    await tasks.wait_idle()
    assert done == [1, 2]
