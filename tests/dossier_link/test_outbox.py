"""The durable outbox: keys dedupe, back-off grows, order is kept, state survives a reopen."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bots.outbox import (
    DONE,
    FAILED,
    PENDING,
    Outbox,
    OutboxItem,
    OutboxWorker,
    Refused,
    Unavailable,
    backoff_ms,
    idempotency_key,
    open_outbox_database,
)


def make_outbox(tmp_path: Path) -> Outbox:
    return Outbox(open_outbox_database(tmp_path / "outbox.sqlite3"), tmp_path / "blobs")


def test_backoff_doubles_and_is_capped() -> None:
    assert backoff_ms(0) == 0
    assert [backoff_ms(n) for n in (1, 2, 3, 4)] == [500, 1000, 2000, 4000]
    assert backoff_ms(40) == 60_000


def test_idempotency_key_is_stable_and_purpose_specific() -> None:
    a = idempotency_key("$ev1", "note")
    assert a == idempotency_key("$ev1", "note")
    assert a != idempotency_key("$ev1", "task")
    assert a != idempotency_key("$ev2", "note")
    assert len(a) <= 200


def test_enqueue_twice_keeps_one_row_and_survives_reopen(tmp_path: Path) -> None:
    box = make_outbox(tmp_path)
    assert box.enqueue("k1", "notebook.add", {"text": "a"}, room_id="!r:x")
    assert not box.enqueue("k1", "notebook.add", {"text": "a"}, room_id="!r:x")
    assert box.pending_count() == 1
    reopened = make_outbox(tmp_path)
    [item] = reopened.due()
    assert (item.key, item.operation, item.payload, item.room_id) == (
        "k1",
        "notebook.add",
        {"text": "a"},
        "!r:x",
    )


def test_held_item_waits_until_released_or_its_hold_ends_and_can_be_cancelled(
    tmp_path: Path,
) -> None:
    box = make_outbox(tmp_path)
    box.enqueue("held", "notebook.add", {"text": "flag"}, at_ms=10_000)
    assert box.due(at_ms=9_999) == []
    assert [i.key for i in make_outbox(tmp_path).due(at_ms=10_000)] == ["held"]  # survives
    assert box.release("held")
    assert [i.key for i in box.due(at_ms=0)] == ["held"]
    box.enqueue("gone", "notebook.add", {"text": "never"}, at_ms=10_000)
    assert box.cancel("gone") and box.get("gone") is None
    [item] = box.due(at_ms=0)
    box.mark_retry(item, "CERCLE_DOSSIER_UNREACHABLE", at_ms=0)
    assert not box.release("held") and not box.cancel("held")  # tried once: left as it is


def test_retry_postpones_and_done_removes_blob(tmp_path: Path) -> None:
    box = make_outbox(tmp_path)
    digest = box.store_blob(b"%PDF-1.4 ordonnance")
    box.enqueue("k", "document.upload", {"blob": digest})
    [item] = box.due()
    delay = box.mark_retry(item, "CERCLE_DOSSIER_UNREACHABLE", at_ms=1_000)
    assert delay == 500
    assert box.due(at_ms=1_499) == []
    [again] = box.due(at_ms=1_500)
    assert again.attempts == 1 and again.last_error == "CERCLE_DOSSIER_UNREACHABLE"
    assert box.read_blob(digest) == b"%PDF-1.4 ordonnance"
    box.mark_done(again, {"id": "doc-1"})
    done = box.get("k")
    assert done is not None and done.status == DONE and done.result == {"id": "doc-1"}
    assert not (box.blob_dir / digest).exists()


async def test_worker_retries_until_the_dossier_is_back_in_order(tmp_path: Path) -> None:
    box = make_outbox(tmp_path)
    delivered: list[str] = []
    available = False

    async def deliver(item: OutboxItem) -> dict[str, str]:
        if not available:
            raise Unavailable()
        delivered.append(item.key)
        return {"ok": item.key}

    worker = OutboxWorker(box, deliver)
    for n in range(3):
        box.enqueue(f"k{n}", "notebook.add", {"n": n})
    assert await worker.run_once() == 0
    assert box.pending_count() == 3
    # the first item got the back-off; the others were not tried (order kept)
    assert [i.attempts for i in box.due(at_ms=10**15)] == [1, 0, 0]
    available = True
    assert await worker.run_once() == 0  # not due yet
    await asyncio.sleep(0.55)  # past the first back-off (0.5 s): the wait is the behaviour
    assert await worker.run_once() == 3
    assert delivered == ["k0", "k1", "k2"]
    assert box.pending_count() == 0


async def test_refused_is_final_and_reported(tmp_path: Path) -> None:
    box = make_outbox(tmp_path)
    outcomes: list[tuple[str, str | None]] = []

    async def deliver(item: OutboxItem) -> None:
        raise Refused("M_INVALID_PARAM", "catégorie inconnue", 400)

    async def on_outcome(item: OutboxItem, result: object, refused: Refused | None) -> None:
        outcomes.append((item.key, refused.errcode if refused else None))

    worker = OutboxWorker(box, deliver, on_outcome=on_outcome)
    box.enqueue("bad", "document.upload", {})
    await worker.run_once()
    item = box.get("bad")
    assert item is not None and item.status == FAILED and item.last_error == "M_INVALID_PARAM"
    assert outcomes == [("bad", "M_INVALID_PARAM")]


async def test_submit_waits_for_delivery_then_answers_replays_from_the_row(tmp_path: Path) -> None:
    box = make_outbox(tmp_path)
    calls = 0

    async def deliver(item: OutboxItem) -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"n": calls}

    worker = OutboxWorker(box, deliver, idle_seconds=0.1)
    task = asyncio.create_task(worker.run())
    try:
        first = await worker.submit("k", "notebook.add", {"text": "x"}, wait_seconds=2)
        assert first.status == DONE and first.result == {"n": 1}
        replay = await worker.submit("k", "notebook.add", {"text": "x"}, wait_seconds=2)
        assert replay.status == DONE and replay.result == {"n": 1}
        assert calls == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_submit_returns_pending_when_the_dossier_is_down(tmp_path: Path) -> None:
    box = make_outbox(tmp_path)

    async def deliver(item: OutboxItem) -> None:
        raise Unavailable()

    worker = OutboxWorker(box, deliver, idle_seconds=0.1)
    task = asyncio.create_task(worker.run())
    try:
        item = await worker.submit("k", "notebook.add", {}, wait_seconds=0.3)
        assert item.status == PENDING
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_an_item_told_pending_behind_a_failing_one_is_reported_when_it_lands(
    tmp_path: Path,
) -> None:
    """The requester answered « ⏳ » hears the landing even when her item was never tried
    itself (an earlier item held the queue); an item nobody waited for lands silently; the
    mark survives a reopen (a restart of the bot)."""
    box = make_outbox(tmp_path)
    available = False
    outcomes: list[tuple[str, bool]] = []

    async def deliver(item: OutboxItem) -> dict[str, str]:
        if not available:
            raise Unavailable()
        return {"ok": item.key}

    async def on_outcome(item: OutboxItem, result: object, refused: Refused | None) -> None:
        outcomes.append((item.key, item.told_pending))

    worker = OutboxWorker(box, deliver, on_outcome=on_outcome, idle_seconds=0.1)
    box.enqueue("head", "circle.back", {})  # nobody waits for it
    task = asyncio.create_task(worker.run())
    try:
        asked = await worker.submit("asked", "notebook.add", {}, wait_seconds=0.3)
        assert asked.status == PENDING and asked.told_pending and asked.attempts == 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    reopened = Outbox(open_outbox_database(tmp_path / "outbox.sqlite3"), tmp_path / "blobs")
    worker = OutboxWorker(reopened, deliver, on_outcome=on_outcome)
    available = True
    await asyncio.sleep(0.55)  # past the head's back-off: the wait is the behaviour
    assert await worker.run_once() == 2
    assert outcomes == [("head", False), ("asked", True)]


def test_an_outbox_of_an_older_bot_gains_the_column_and_keeps_its_items(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE dossier_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL "
            "UNIQUE, operation TEXT NOT NULL, payload TEXT NOT NULL, room_id TEXT, status TEXT "
            "NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL, "
            "last_error TEXT, result TEXT, created_ms INTEGER NOT NULL, done_ms INTEGER);"
            "INSERT INTO dossier_outbox(key, operation, payload, status, next_attempt_ms, "
            "created_ms) VALUES('old', 'notebook.add', '{}', 'pending', 0, 1);"
        )
    box = Outbox(open_outbox_database(path), tmp_path / "blobs")
    item = box.get("old")
    assert item is not None and item.status == PENDING and item.told_pending is False
    box.mark_told_pending("old")
    assert box.get("old").told_pending is True  # type: ignore[union-attr]
