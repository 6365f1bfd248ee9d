"""WAL checkpoints of the dossier's SQLite file, in a thread of their own.

SQLite copies the write-ahead log back into the database (a checkpoint, with an fsync)
inside whichever commit crosses 1,000 pages of log. The service runs its statements in
the event loop's thread (``sqlite_driver.InlineDBAPI``), so that commit would hold every
request for the length of an fsync. Here the service's connections never checkpoint
(``wal_autocheckpoint=0``) and a thread with its own connection runs a PASSIVE checkpoint
every ``interval`` seconds: it never blocks readers or writers, and the log stays small.
When the service stops, SQLite checkpoints on closing the last connection, as always.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)


class WalCheckpointer:
    def __init__(self, path: str, *, interval: float = 0.5) -> None:
        self.path = path
        self.interval = interval
        self.checkpoints = 0  # completed calls, for tests and diagnostics
        self.last: tuple[int, int, int] | None = None  # what the last call reported
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="dossier-sqlite-checkpoint", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def checkpoint_once(self, connection: sqlite3.Connection) -> tuple[int, int, int]:
        """(busy, frames in the log, frames copied back) as SQLite reports them."""
        busy, log_frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1
        self.last = (int(busy), int(log_frames), int(copied))
        return self.last

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        failures = 0
        while not self._stop.wait(self.interval):
            try:
                if connection is None:
                    connection = sqlite3.connect(self.path, timeout=1.0, check_same_thread=True)
                self.checkpoint_once(connection)
                failures = 0
            except sqlite3.Error:
                failures += 1
                if failures in (1, 100):  # once, then once more if it persists; no detail
                    log.warning("checkpoint SQLite du dossier différé (échecs : %d)", failures)
                if connection is not None:
                    connection.close()
                    connection = None
        if connection is not None:
            connection.close()
