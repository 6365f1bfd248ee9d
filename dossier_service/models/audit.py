"""Audit log, outbox events for the bot, and idempotency records: append-only tables."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer
from sqlmodel import Field, SQLModel

from dossier_service.models.types import UTCDateTime, utcnow

# BigInteger on PostgreSQL, INTEGER on SQLite (so SQLite keeps ROWID autoincrement).
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class AuditEntry(SQLModel, table=True):
    """Who did what to which file, when, from where, and whether it was allowed."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_patient", "patient_id", "seq"),
        Index("ix_audit_log_actor", "actor", "seq"),
    )

    seq: int | None = Field(
        default=None, sa_column=Column(SeqType, primary_key=True, autoincrement=True)
    )
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=255)
    actor_kind: str = Field(max_length=20)
    action: str = Field(max_length=20)
    resource: str = Field(max_length=200)
    patient_id: str | None = Field(default=None, max_length=40)
    outcome: str = Field(default="ok", max_length=20)
    remote: str = Field(default="", max_length=100)
    request_id: str = Field(default="", max_length=40)


class OutboxEvent(SQLModel, table=True):
    """File → conversation notifications, read by the bot with a monotonic cursor."""

    __tablename__ = "outbox_events"

    seq: int | None = Field(
        default=None, sa_column=Column(SeqType, primary_key=True, autoincrement=True)
    )
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    type: str = Field(max_length=60)
    patient_id: str | None = Field(default=None, max_length=40, index=True)
    room_id: str | None = Field(default=None, max_length=255)
    actor: str = Field(max_length=255)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class IdempotencyRecord(SQLModel, table=True):
    """The first answer to a keyed write; a replay with the same key gets it back."""

    __tablename__ = "idempotency_records"

    actor: str = Field(primary_key=True, max_length=255)
    key: str = Field(primary_key=True, max_length=200)
    request_fingerprint: str = Field(max_length=64)
    status: int
    body: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
