"""Ending dossier sessions on the server (logout, deactivated account), checked on every
request by :func:`dossier_service.app.session_middleware`.

A session token stays a signed value (no lookup to know who is calling); what the server
keeps is the list of sessions that ended before their time: one row per logged-out session
(by its nonce's hash, kept until the session would have expired anyway) and one row per
person whose every session issued up to a moment ends (account deactivated, erased).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import and_, or_
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.auth import Session
from dossier_service.models.sessions import SessionRevocation
from dossier_service.models.types import utcnow

# the rows a transaction writes to session_revocations, as ``Ended``: what the processes keep
# in memory of the table gets them once it commits (dossier_service/revoked_sessions.py)
ENDED = "cercle.sessions_ended"
Ended = tuple[str | None, str, datetime, datetime | None]  # nonce hash, user, revoked, expires


def _ended(db: AsyncSession, row: SessionRevocation) -> None:
    db.add(row)
    db.info.setdefault(ENDED, []).append(
        (row.nonce_sha256, row.user_id, row.revoked_at, row.expires_at)
    )


def nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("utf-8")).hexdigest()


async def is_revoked(db: AsyncSession, session: Session) -> bool:
    issued = datetime.fromtimestamp(session.issued_at, UTC)
    found = await db.exec(
        select(SessionRevocation.id)
        .where(
            or_(
                col(SessionRevocation.nonce_sha256) == nonce_hash(session.nonce),
                and_(
                    col(SessionRevocation.user_id) == session.user_id,
                    col(SessionRevocation.nonce_sha256).is_(None),
                    col(SessionRevocation.revoked_at) >= issued,
                ),
            )
        )
        .limit(1)
    )
    return found.first() is not None


async def end_session(db: AsyncSession, session: Session) -> None:
    """Logout: this session stops answering at once."""
    _ended(
        db,
        SessionRevocation(
            user_id=session.user_id,
            nonce_sha256=nonce_hash(session.nonce),
            expires_at=datetime.fromtimestamp(session.expires_at, UTC),
            reason="logout",
        ),
    )
    await db.flush()


async def end_all_sessions(db: AsyncSession, *, user_id: str, reason: str) -> None:
    """Every session of ``user_id`` issued until now ends (a new login makes a new one)."""
    _ended(db, SessionRevocation(user_id=user_id, nonce_sha256=None, reason=reason[:40]))
    await db.flush()


async def purge_expired(db: AsyncSession) -> None:
    """Logged-out sessions past their expiry need no row any more (what memory keeps of them
    goes by itself: ``RevokedSessions``)."""
    await db.exec(delete(SessionRevocation).where(col(SessionRevocation.expires_at) < utcnow()))
