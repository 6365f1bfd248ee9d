"""The life line (ligne de vie): pathway episodes by theme on a time axis."""

from datetime import date, datetime

from sqlalchemy import Index
from sqlmodel import Field

from dossier_service.models.types import FileRow, UTCDateTime, utcnow


class Episode(FileRow, table=True):
    __tablename__ = "lifeline_episodes"
    __table_args__ = (Index("ix_lifeline_episodes_patient_id", "patient_id"),)

    theme: str = Field(max_length=200)
    title: str = Field(default="", max_length=300)
    starts_on: date
    ends_on: date | None = None
    form_id: str | None = Field(default=None, max_length=100)
    description: str = Field(default="", max_length=4000)
    created_by: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
