"""Thematic form answers, one row per version (who changed what, when)."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field

from dossier_service.models.types import FileRow, UTCDateTime, utcnow


class FormAnswer(FileRow, table=True):
    __tablename__ = "form_answers"
    __table_args__ = (
        Index("ix_form_answers_patient_id", "patient_id"),
        UniqueConstraint("patient_id", "form_id", "version", name="uq_form_answers_version"),
    )

    form_id: str = Field(max_length=100)
    version: int
    answers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    changed_fields: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    initiated_at: datetime = Field(sa_type=UTCDateTime)
    created_by: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
