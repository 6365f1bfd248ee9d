"""Which sessions ended before their time, kept in memory by every dossier process.

Every request carrying a session asks whether it was ended (``api/session.py``). Asked of
the table, that is a transaction of its own before the request's: measured side by side with
the code before it (``bench/compare_trees.py``), it doubled the cost of the cheapest requests.
So the table is read once into memory, and then kept up to date row by row:

* a transaction that ends sessions lists the rows it writes (``services.sessions.ENDED``);
  once it commits, this process adds them — a logout answers at once, with no reload;
* with several processes (PostgreSQL, region profile) the same rows travel in the
  transaction's notice (``file_revisions.ChangeNotices``, words ``!n:`` and ``!u:``), and
  every process that hears them adds them too. Memory answers only while this process hears
  the others (``trusted``); with its listener away it asks the table on every request, and
  after the listener reconnects ("anything may have changed") it reads the table again;
* a read of the table racing a commit that ended sessions is not kept (a generation number),
  so memory never holds a view older than a commit it has seen;
* what memory holds of sessions past their expiry goes by itself (their tokens are refused
  by their signature anyway), as ``purge_expired`` deletes their rows.

What is left with several processes is a notice's own delay, from another process's commit
to its notice handled here (on one machine well under a millisecond), during which this
process may still accept the ended session once: Synapse's workers forget a logged-out
access token the same way, through their replication stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.auth import Session
from dossier_service.file_revisions import ALL
from dossier_service.models.sessions import SessionRevocation
from dossier_service.services.sessions import ENDED, Ended, is_revoked, nonce_hash

NONCE, USER = "!n:", "!u:"  # the words of a notice that carry a row of the table
EPOCH, MICROSECOND = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // MICROSECOND  # exact, where a float timestamp may round


def words(rows: Iterable[Ended]) -> list[str]:
    """Pure: the rows a transaction ended, as words of its notice."""
    said = []
    for nonce, user_id, revoked_at, expires_at in rows:
        if nonce is not None:
            expires = _micros(expires_at) if expires_at is not None else ""
            said.append(f"{NONCE}{nonce}:{expires}")
        else:  # a Matrix id holds ':' (and never ','): last
            said.append(f"{USER}{_micros(revoked_at)}:{user_id}")
    return said


def rows_of(payload: str) -> list[Ended]:
    """Pure: the rows a notice carries (the inverse of :func:`words`); other words ignored."""
    found: list[Ended] = []
    for word in payload.split(","):
        if word.startswith(NONCE):
            nonce, _, expires = word[len(NONCE) :].partition(":")
            until = EPOCH + int(expires) * MICROSECOND if expires else None
            found.append((nonce, "", EPOCH, until))
        elif word.startswith(USER):
            revoked, _, user_id = word[len(USER) :].partition(":")
            found.append((None, user_id, EPOCH + int(revoked) * MICROSECOND, None))
    return found


class RevokedSessions:
    def __init__(self, trusted: Callable[[], bool] | None = None) -> None:
        """``trusted``: whether memory may answer now (PostgreSQL: the listener is connected);
        None: always (SQLite: this process is its database's only writer)."""
        self._nonces: dict[str, datetime | None] | None = None  # None: not read, ask the table
        self._until: dict[str, datetime] = {}  # every session of a user issued up to then
        self._pruned_at = 0  # how many nonces memory held after its last pruning
        self.generation = 0
        self._trusted = trusted or (lambda: True)

    def watch(self, session_class: type) -> None:
        """Follow the commits of sessions of ``session_class`` (this database's own class)."""
        event.listen(session_class, "after_commit", self._after_commit)
        event.listen(session_class, "after_rollback", lambda s: s.info.pop(ENDED, None))

    def _after_commit(self, session: Any) -> None:
        rows = session.info.pop(ENDED, None)
        if rows:
            self.add(rows)

    def heard(self, payload: str) -> None:
        """A notice of any process: its rows added, or the table read again after the listener
        was away (anything may have changed)."""
        if payload == ALL:
            self.ended()
        else:
            rows = rows_of(payload)
            if rows:
                self.add(rows)

    def ended(self) -> None:
        """What memory holds may be stale: read the table again."""
        self.generation += 1
        self._nonces = None

    def add(self, rows: Iterable[Ended]) -> None:
        """Rows just committed. A read of the table in progress may have missed them: not kept."""
        self.generation += 1
        if self._nonces is not None:
            self._merge(self._nonces, rows)
            if len(self._nonces) > 2 * self._pruned_at + 1000:  # now and then, not each time
                now = datetime.now(UTC)
                self._nonces = {n: t for n, t in self._nonces.items() if t is None or t >= now}
                self._pruned_at = len(self._nonces)

    def keep(self, generation: int, rows: Iterable[Ended]) -> None:
        """The table as read from ``generation`` on, kept unless sessions ended meanwhile."""
        if generation != self.generation:
            return
        nonces: dict[str, datetime | None] = {}
        self._until = {}
        self._merge(nonces, rows)
        self._nonces, self._pruned_at = nonces, len(nonces)

    def _merge(self, nonces: dict[str, datetime | None], rows: Iterable[Ended]) -> None:
        for nonce, user_id, revoked_at, expires_at in rows:
            if nonce is not None:
                nonces[nonce] = expires_at
            elif user_id not in self._until or revoked_at > self._until[user_id]:
                self._until[user_id] = revoked_at

    def answer(self, session: Session) -> bool | None:
        """Whether ``session`` ended, or None when memory does not know."""
        if self._nonces is None or not self._trusted():
            return None
        if nonce_hash(session.nonce) in self._nonces:
            return True
        until = self._until.get(session.user_id)
        return until is not None and until >= datetime.fromtimestamp(session.issued_at, UTC)

    async def is_revoked(self, db: AsyncSession, session: Session) -> bool:
        if not self._trusted():
            return await is_revoked(db, session)
        known = self.answer(session)
        if known is None:
            generation = self.generation
            read = select(
                col(SessionRevocation.nonce_sha256),
                col(SessionRevocation.user_id),
                col(SessionRevocation.revoked_at),
                col(SessionRevocation.expires_at),
            )
            self.keep(generation, (await db.exec(read)).all())
            known = self.answer(session)
        # still unknown: a commit ended sessions while the table was read
        return known if known is not None else await is_revoked(db, session)
