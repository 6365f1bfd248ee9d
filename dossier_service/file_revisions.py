"""Which version of each patient's file this process has committed: the key of the file cache.

Every change to a file writes a liaison entry in its transaction (the notebook's rule);
the two writers of entries mark the session (`mark_changed`), and once that transaction
has committed the file's revision goes up by one. Reading a revision is a dict lookup: the
database's own (count, newest) of the entries cost a scan of every entry of the file on
every read, growing with the file.

Only valid when this process is the only writer of the database and its transactions
never overlap: the SQLite deployment (one service process, one pooled connection, so a
reader's revision and sections come from one transaction no writer can interleave with).
With PostgreSQL and several processes (region profile), :class:`ChangeNotices` tells every
process of the changes the others commit and keeps the same keys from what it hears; while
it hears nothing, the file's revision is read from the database (`read_models.revision`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event, text

log = logging.getLogger(__name__)

CHANGED_FILES = "cercle.changed_files"


def mark_changed(session: Any, patient_id: str | None) -> None:
    """In a writer of liaison entries: this transaction changes that file. ``None``: a change
    outside any file that views across files show (a task without a patient)."""
    session.info.setdefault(CHANGED_FILES, set()).add(patient_id)


class FileRevisions:
    def __init__(self) -> None:
        self._revisions: dict[str, int] = {}
        self.total = 0  # every committed change, in any file or none: views across files

    def of(self, patient_id: str) -> int:
        return self._revisions.get(patient_id, 0)

    def bump(self, patient_ids: Iterable[str | None]) -> None:
        for patient_id in patient_ids:
            self.total += 1
            if patient_id is not None:
                self._revisions[patient_id] = self._revisions.get(patient_id, 0) + 1

    def watch(self, session_class: type) -> None:
        """Follow the commits of sessions of ``session_class`` (a class of its own per
        database: the listeners stay with it)."""
        event.listen(session_class, "after_commit", self._after_commit)
        event.listen(session_class, "after_rollback", self._after_rollback)

    def _after_commit(self, session: Any) -> None:
        self.bump(session.info.pop(CHANGED_FILES, ()))

    def _after_rollback(self, session: Any) -> None:
        session.info.pop(CHANGED_FILES, None)  # nothing of it was written


CHANNEL = "cercle_file_changes"
ALL = "*"  # "anything may have changed" (the listener was away)


class ChangeNotices:
    """Several dossier processes on one PostgreSQL database (region profile): what one
    process keeps in memory about files must not outlive a change committed by another.

    The transaction that changes files NOTIFYs their ids (``pg_notify`` in the same
    transaction: PostgreSQL delivers it only if it commits); every process LISTENs
    (:func:`listen`) and calls its subscribers, which forget what they derived (the pages'
    names of people).

    :meth:`epoch` is the key of what is kept across files (the task dashboards), and
    :meth:`revision_of` the key of one file's sections: they move at each of this process's
    own commits that change a file (at once, in the commit) and at each notice heard from the
    others. While the listener is not connected they are ``None``: nothing may be served from
    memory then (the file's key is read from the database, ``read_models.revision``), since
    the others' changes would go unheard. What remains is the notice's own delay — from another
    process's commit to its notice being handled here, on one machine well under a
    millisecond, and a read here starts with a query to the database that the notice
    precedes — during which what is in memory may be served once more; Synapse's workers
    invalidate their caches across processes the same way (its replication stream).
    """

    def __init__(self) -> None:
        self._subscribers: list[Callable[[str], None]] = []
        self._also: dict[str, Callable[[Any], list[str]]] = {}  # see also_tell
        # the changes counted since "anything may have changed" was last heard (how many times:
        # ``_anything``), own commits and others' notices alike
        self._counts = FileRevisions()
        self._anything = 0
        self.hearing = False  # the listener is connected: set and cleared by `listen`

    def epoch(self) -> tuple[int, int] | None:
        """A key that moves with every change committed by any process; ``None`` while the
        others' changes cannot be heard."""
        return (self._anything, self._counts.total) if self.hearing else None

    def revision_of(self, patient_id: str) -> tuple[int, int] | None:
        """The same for one file: moves with every change committed to it by any process;
        ``None`` while the others' changes cannot be heard."""
        return (self._anything, self._counts.of(patient_id)) if self.hearing else None

    def subscribe(self, callback: Callable[[str], None]) -> None:
        self._subscribers.append(callback)

    def also_tell(self, info_key: str, words: Callable[[Any], list[str]]) -> None:
        """A transaction whose ``session.info`` holds ``info_key`` adds ``words(that value)`` to
        its notice (the sessions it ended: ``revoked_sessions``). Words never hold a comma."""
        self._also[info_key] = words

    def deliver(self, payload: str) -> None:
        if payload == ALL:
            self._anything += 1
            self._counts = FileRevisions()
        else:  # file ids, "-" (a change outside any file), and other subscribers' "!" words
            words = payload.split(",")
            self._counts.bump(None if w == "-" else w for w in words if not w.startswith("!"))
        for callback in self._subscribers:
            try:
                callback(payload)
            except Exception:  # one subscriber's bug never stops the others
                log.exception("abonné aux changements en erreur")

    def watch(self, session_class: type) -> None:
        event.listen(session_class, "before_commit", self._before_commit)
        event.listen(session_class, "after_commit", self._after_commit)
        event.listen(session_class, "after_rollback", self._forget)

    def _before_commit(self, session: Any) -> None:
        said = sorted(p or "-" for p in session.info.get(CHANGED_FILES) or ())
        for key, words in self._also.items():
            if session.info.get(key):
                said += words(session.info[key])
        if said:
            payload = ",".join(said)
            if len(payload) > 7000:  # NOTIFY payloads stay under 8000 bytes
                payload = ALL
            session.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": payload})

    def _after_commit(self, session: Any) -> None:
        # this process's next read sees its own change, notice or not
        self._counts.bump(session.info.pop(CHANGED_FILES, ()))

    def _forget(self, session: Any) -> None:
        session.info.pop(CHANGED_FILES, None)


async def listen(dsn: str, notices: ChangeNotices, ready: asyncio.Event | None = None) -> None:
    """LISTEN on ``dsn`` (asyncpg) until cancelled; reconnects after a lost connection and
    then tells the subscribers that anything may have changed."""
    import asyncpg

    while True:
        try:
            connection = await asyncpg.connect(dsn)
        except (OSError, asyncpg.PostgresError):
            log.warning("écoute des changements impossible ; nouvel essai dans 1 s")
            await asyncio.sleep(1)
            continue
        closed = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _c, done=closed: done.set())
            await connection.add_listener(
                CHANNEL, lambda _c, _pid, _channel, payload: notices.deliver(payload)
            )
            notices.deliver(ALL)
            notices.hearing = True
            if ready is not None:
                ready.set()
            await closed.wait()
            log.warning("écoute des changements interrompue ; reconnexion")
        finally:
            notices.hearing = False
            with contextlib.suppress(Exception):
                await connection.close(timeout=2)
