"""Which sessions ended before their time, kept in memory by the database's only writer.

Every request carrying a session asks whether it was ended (``api/session.py``). Asked of
the table, that is a transaction of its own before the request's: measured side by side with
the code before it (``bench/compare_trees.py``), it doubled the cost of the cheapest requests.
Where this process is the only writer of its database (SQLite: one service process, the
assumption the file cache already rests on, ``file_revisions.py``), the table changes only
through this process's own commits, so the answer can come from memory:

* the rows are read once, then again after any commit that ended a session (the writers mark
  their transaction, ``services.sessions.ENDED``) — a logout answers at once, as before;
* a reload racing such a commit is not kept (a generation number), so memory never holds a
  view older than a commit it has seen.

With several processes (PostgreSQL, region profile) another process may end a session at
any moment and a notice would arrive late: the table is asked on every request, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.auth import Session
from dossier_service.models.sessions import SessionRevocation
from dossier_service.services.sessions import ENDED, is_revoked, nonce_hash

Row = tuple[str | None, str, datetime]  # (nonce_sha256, user_id, revoked_at)


class RevokedSessions:
    def __init__(self) -> None:
        self._nonces: frozenset[str] | None = None  # None: not known, ask the table
        self._until: dict[str, datetime] = {}  # every session of a user issued up to then
        self.generation = 0

    def watch(self, session_class: type) -> None:
        """Follow the commits of sessions of ``session_class`` (this database's own class)."""
        event.listen(session_class, "after_commit", self._after_commit)
        event.listen(session_class, "after_rollback", lambda s: s.info.pop(ENDED, None))

    def _after_commit(self, session: Any) -> None:
        if session.info.pop(ENDED, False):
            self.ended()

    def ended(self) -> None:
        """A commit ended sessions: what memory holds is stale."""
        self.generation += 1
        self._nonces = None

    def keep(self, generation: int, rows: Iterable[Row]) -> None:
        """The table as read from ``generation`` on, kept unless sessions ended meanwhile."""
        if generation != self.generation:
            return
        rows = list(rows)
        until: dict[str, datetime] = {}
        for nonce, user_id, revoked_at in rows:
            if nonce is None and (user_id not in until or revoked_at > until[user_id]):
                until[user_id] = revoked_at
        self._nonces = frozenset(nonce for nonce, _, _ in rows if nonce is not None)
        self._until = until

    def answer(self, session: Session) -> bool | None:
        """Whether ``session`` ended, or None when memory does not know."""
        if self._nonces is None:
            return None
        if nonce_hash(session.nonce) in self._nonces:
            return True
        until = self._until.get(session.user_id)
        return until is not None and until >= datetime.fromtimestamp(session.issued_at, UTC)

    async def is_revoked(self, db: AsyncSession, session: Session) -> bool:
        known = self.answer(session)
        if known is None:
            generation = self.generation
            read = select(
                col(SessionRevocation.nonce_sha256),
                col(SessionRevocation.user_id),
                col(SessionRevocation.revoked_at),
            )
            self.keep(generation, (await db.exec(read)).all())
            known = self.answer(session)
        # still unknown: a commit ended sessions while the table was read
        return known if known is not None else await is_revoked(db, session)
