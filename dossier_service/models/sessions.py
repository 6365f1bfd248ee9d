"""Dossier sessions ended on the server: one row per logged-out session, and one per person
whose every session up to a moment ends (account deactivated, access withdrawn)."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from dossier_service.models.types import UTCDateTime, new_id, utcnow


class SessionRevocation(SQLModel, table=True):
    __tablename__ = "session_revocations"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    user_id: str = Field(max_length=255, index=True)
    # the sha256 of one session's nonce (logout); None: every session issued up to revoked_at
    nonce_sha256: str | None = Field(default=None, max_length=64, index=True)
    revoked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # when the row may be purged (the revoked session expires by itself then)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str = Field(default="", max_length=40)
