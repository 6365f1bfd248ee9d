"""The bot's durable outbox towards the dossier service.

Every write the bot makes to a patient's file (a note, a task, a document, a flag entry in
the liaison notebook …) is first recorded here, in the bot's own SQLite file, under an
idempotency key derived from the Matrix event that caused it. A worker then delivers it;
when the dossier is down the delivery is retried with exponential back-off until it comes
back. Since the dossier keeps the first answer per key, a delivery repeated after a crash
(the bot died between the dossier's answer and our "done") writes once.

Tables live in ``<var>/bot/outbox.sqlite3`` (or any connection handed in). Document bodies
waiting for delivery are kept beside it in ``outbox-blobs/`` (0600) and removed once
delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deployment.conventions import open_private_sqlite, wait_set, write_private

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dossier_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,         -- idempotency key sent to the dossier
    operation TEXT NOT NULL,          -- e.g. 'notebook.add'
    payload TEXT NOT NULL,            -- JSON arguments of the operation
    room_id TEXT,                     -- where to tell the outcome, if anywhere
    status TEXT NOT NULL,             -- 'pending' | 'done' | 'failed'
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error TEXT,                  -- errcode only (never patient data)
    result TEXT,                      -- JSON answer of the dossier once done
    created_ms INTEGER NOT NULL,
    done_ms INTEGER,
    told_pending INTEGER NOT NULL DEFAULT 0  -- its requester was told « ⏳ »: tell the landing
);
CREATE INDEX IF NOT EXISTS dossier_outbox_due ON dossier_outbox(status, next_attempt_ms);
"""

PENDING, DONE, FAILED = "pending", "done", "failed"


def now_ms() -> int:
    return int(time.time() * 1000)


def idempotency_key(event_id: str, purpose: str) -> str:
    """The same key every time the same Matrix event asks for the same write."""
    digest = hashlib.sha256(f"{event_id}|{purpose}".encode()).hexdigest()[:40]
    return f"mx-{digest}"


def backoff_ms(attempts: int, *, base_ms: int = 500, cap_ms: int = 60_000) -> int:
    """Pure: delay before the next try after ``attempts`` failures (500 ms doubling, capped)."""
    if attempts <= 0:
        return 0
    return int(min(cap_ms, base_ms * (2 ** min(attempts - 1, 20))))


class Unavailable(Exception):
    """The dossier could not be reached or answered 5xx / 429: try again later."""

    def __init__(self, errcode: str = "CERCLE_UNAVAILABLE") -> None:
        super().__init__(errcode)
        self.errcode = errcode


class Refused(Exception):
    """The dossier refused the write for good (4xx): no retry."""

    def __init__(self, errcode: str, message: str = "", status: int = 400) -> None:
        super().__init__(f"{errcode} ({status})")
        self.errcode = errcode
        self.message = message
        self.status = status


@dataclass(frozen=True)
class OutboxItem:
    id: int
    key: str
    operation: str
    payload: dict[str, Any]
    room_id: str | None
    status: str
    attempts: int
    next_attempt_ms: int
    last_error: str | None
    result: dict[str, Any] | None
    told_pending: bool = False  # its requester was told it waits: the room hears when it lands

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> OutboxItem:
        return cls(
            id=row[0],
            key=row[1],
            operation=row[2],
            payload=json.loads(row[3]),
            room_id=row[4],
            status=row[5],
            attempts=row[6],
            next_attempt_ms=row[7],
            last_error=row[8],
            result=json.loads(row[9]) if row[9] else None,
            told_pending=bool(row[10]),
        )


_COLUMNS = (
    "id, key, operation, payload, room_id, status, attempts, next_attempt_ms, last_error, "
    "result, told_pending"
)


def open_outbox_database(path: Path) -> sqlite3.Connection:
    # synchronous=NORMAL: after a power cut the WAL tail may be lost, but so is the bot's sync
    # token (same setting in the ledger), so the commands are read again and queued again.
    return open_private_sqlite(path, busy_timeout_ms=5000)


class Outbox:
    """The durable queue itself (synchronous, a few rows per command)."""

    def __init__(self, conn: sqlite3.Connection, blob_dir: Path) -> None:
        self._db = conn
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(dossier_outbox)")}
        if "told_pending" not in columns:  # an outbox written by an older bot
            self._db.execute(
                "ALTER TABLE dossier_outbox ADD COLUMN told_pending INTEGER NOT NULL DEFAULT 0"
            )
        self.blob_dir = blob_dir

    # -- writing --
    def enqueue(
        self,
        key: str,
        operation: str,
        payload: Mapping[str, Any],
        *,
        room_id: str | None = None,
        at_ms: int | None = None,
    ) -> bool:
        """Record a write; False when the key is already known (the same event replayed)."""
        cur = self._db.execute(
            "INSERT INTO dossier_outbox(key, operation, payload, room_id, status, attempts, "
            "next_attempt_ms, created_ms) VALUES(?, ?, ?, ?, 'pending', 0, ?, ?) "
            "ON CONFLICT(key) DO NOTHING",
            (key, operation, json.dumps(dict(payload)), room_id, at_ms or 0, now_ms()),
        )
        return cur.rowcount > 0

    def release(self, key: str) -> bool:
        """A held item (enqueued with a future ``at_ms`` and never tried) is due now."""
        cur = self._db.execute(
            "UPDATE dossier_outbox SET next_attempt_ms=0 WHERE key=? AND status='pending' "
            "AND attempts=0",
            (key,),
        )
        return cur.rowcount > 0

    def cancel(self, key: str) -> bool:
        """Forget an item never tried (its cause did not happen after all)."""
        cur = self._db.execute(
            "DELETE FROM dossier_outbox WHERE key=? AND status='pending' AND attempts=0", (key,)
        )
        return cur.rowcount > 0

    def store_blob(self, data: bytes) -> str:
        """Keep a document body until delivered; returns its SHA-256 (its file name)."""
        digest = hashlib.sha256(data).hexdigest()
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.blob_dir, 0o700)
        path = self.blob_dir / digest
        if not path.exists():
            write_private(path, data)
        return digest

    def read_blob(self, digest: str) -> bytes:
        return (self.blob_dir / digest).read_bytes()

    def _drop_blob(self, item: OutboxItem) -> None:
        digest = item.payload.get("blob")
        if not isinstance(digest, str):
            return
        still_used = self._db.execute(
            "SELECT count(*) FROM dossier_outbox WHERE status='pending' AND id != ? "
            "AND payload LIKE ?",
            (item.id, f'%"{digest}"%'),
        ).fetchone()[0]
        if not still_used:
            with contextlib.suppress(FileNotFoundError):
                (self.blob_dir / digest).unlink()

    # -- state changes --
    def mark_done(self, item: OutboxItem, result: Mapping[str, Any] | None) -> None:
        self._db.execute(
            "UPDATE dossier_outbox SET status='done', result=?, done_ms=?, last_error=NULL "
            "WHERE id=?",
            (json.dumps(dict(result or {})), now_ms(), item.id),
        )
        self._drop_blob(item)

    def mark_retry(self, item: OutboxItem, errcode: str, *, at_ms: int | None = None) -> int:
        attempts = item.attempts + 1
        delay = backoff_ms(attempts)
        self._db.execute(
            "UPDATE dossier_outbox SET attempts=?, next_attempt_ms=?, last_error=? WHERE id=?",
            (attempts, (at_ms or now_ms()) + delay, errcode[:60], item.id),
        )
        return delay

    def mark_told_pending(self, key: str) -> None:
        """Its requester was answered « ⏳ … dès son retour »: the landing is owed to the room."""
        self._db.execute("UPDATE dossier_outbox SET told_pending=1 WHERE key=?", (key,))

    def mark_failed(self, item: OutboxItem, errcode: str) -> None:
        self._db.execute(
            "UPDATE dossier_outbox SET status='failed', attempts=attempts+1, last_error=?, "
            "done_ms=? WHERE id=?",
            (errcode[:60], now_ms(), item.id),
        )
        self._drop_blob(item)

    # -- reading --
    def get(self, key: str) -> OutboxItem | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM dossier_outbox WHERE key=?", (key,)
        ).fetchone()
        return OutboxItem.from_row(row) if row else None

    def due(self, at_ms: int | None = None, limit: int = 50) -> list[OutboxItem]:
        """Pending items in order, up to the first one whose retry time has not come (FIFO:
        a write never overtakes an earlier one, e.g. a task closed before it is created)."""
        at = at_ms if at_ms is not None else now_ms()
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM dossier_outbox WHERE status='pending' ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        out: list[OutboxItem] = []
        for row in rows:
            item = OutboxItem.from_row(row)
            if item.next_attempt_ms > at:
                break
            out.append(item)
        return out

    def next_due_ms(self) -> int | None:
        row = self._db.execute(
            "SELECT min(next_attempt_ms) FROM dossier_outbox WHERE status='pending'"
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def pending_count(self) -> int:
        return int(
            self._db.execute(
                "SELECT count(*) FROM dossier_outbox WHERE status='pending'"
            ).fetchone()[0]
        )

    def prune(self, older_than_ms: int) -> None:
        """Forget delivered items (their keys live on in the dossier's idempotency records)."""
        self._db.execute(
            "DELETE FROM dossier_outbox WHERE status!='pending' AND done_ms < ?", (older_than_ms,)
        )


Deliver = Callable[[OutboxItem], Awaitable[Mapping[str, Any] | None]]
Outcome = Callable[[OutboxItem, Mapping[str, Any] | None, Refused | None], Awaitable[None]]


class OutboxWorker:
    """Delivers due items in order, one at a time; sleeps until the next due item or a wake-up.

    ``deliver`` performs one item (raises ``Unavailable`` to retry later, ``Refused`` to give
    up). ``on_outcome`` is told of each final outcome (e.g. to answer in the room when the
    delivery happened late or was refused).
    """

    def __init__(
        self,
        outbox: Outbox,
        deliver: Deliver,
        *,
        on_outcome: Outcome | None = None,
        idle_seconds: float = 30.0,
    ) -> None:
        self.outbox = outbox
        self._deliver = deliver
        self._on_outcome = on_outcome
        self._idle = idle_seconds
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._waiters: dict[str, list[asyncio.Future[OutboxItem]]] = {}

    def wake(self) -> None:
        self._wake.set()

    async def submit(
        self,
        key: str,
        operation: str,
        payload: Mapping[str, Any],
        *,
        room_id: str | None = None,
        wait_seconds: float = 5.0,
    ) -> OutboxItem:
        """Enqueue (idempotently) then wait a little for the delivery; returns the item as it
        stands (``status`` tells whether it is done, failed, or still pending)."""
        self.outbox.enqueue(key, operation, payload, room_id=room_id)
        item = self.outbox.get(key)
        assert item is not None
        if item.status != PENDING:
            return item
        future: asyncio.Future[OutboxItem] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append(future)
        self.wake()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_seconds):  # not wait_for: see conventions.wait_set
                return await asyncio.shield(future)
        waiters = self._waiters.get(key, [])
        if future in waiters:
            waiters.remove(future)
        current = self.outbox.get(key)
        assert current is not None
        if current.status == PENDING:  # the caller says « ⏳ »: the room hears the landing
            self.outbox.mark_told_pending(key)
            current = replace(current, told_pending=True)
        return current

    async def run_once(self) -> int:
        """Deliver every due item; returns how many reached a final state."""
        finished = 0
        async with self._lock:
            for item in self.outbox.due():
                try:
                    result = await self._deliver(item)
                except Unavailable as exc:
                    delay = self.outbox.mark_retry(item, exc.errcode)
                    log.info(
                        "dossier indisponible (%s) : envoi %s réessayé dans %d ms",
                        exc.errcode,
                        item.key,
                        delay,
                    )
                    break  # keep the order: later items wait for this one
                except Refused as exc:
                    self.outbox.mark_failed(item, exc.errcode)
                    log.warning(
                        "dossier a refusé l'envoi %s (%s) : %s %s",
                        item.key,
                        item.operation,
                        exc.errcode,
                        exc.message[:200],
                    )
                    await self._finish(item.key, None, exc)
                    finished += 1
                    continue
                except Exception:
                    delay = self.outbox.mark_retry(item, "CERCLE_INTERNAL")
                    log.exception(
                        "envoi %s en échec inattendu, réessai dans %d ms", item.key, delay
                    )
                    break
                self.outbox.mark_done(item, result)
                await self._finish(item.key, result, None)
                finished += 1
        return finished

    async def _finish(
        self, key: str, result: Mapping[str, Any] | None, refused: Refused | None
    ) -> None:
        item = self.outbox.get(key)
        assert item is not None
        waiters = self._waiters.pop(key, [])
        for future in waiters:
            if not future.done():
                future.set_result(item)
        if self._on_outcome is not None and not waiters:
            try:
                await self._on_outcome(item, result, refused)
            except Exception:
                log.exception("suite d'envoi %s en échec", key)

    async def run(self, *, keep_days: float = 7.0) -> None:
        """Forever: deliver what is due, then sleep until the next due time or a wake-up.
        Delivered items are forgotten after ``keep_days`` (checked hourly)."""
        pruned_at = 0.0
        while True:
            await self.run_once()
            if time.monotonic() - pruned_at > 3600:
                self.outbox.prune(now_ms() - int(keep_days * 86_400_000))
                pruned_at = time.monotonic()
            next_due = self.outbox.next_due_ms()
            timeout = self._idle
            if next_due is not None:
                timeout = max(0.05, min(self._idle, (next_due - now_ms()) / 1000))
            self._wake.clear()
            await wait_set(self._wake, timeout)
