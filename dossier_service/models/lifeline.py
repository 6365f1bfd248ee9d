"""The life line (ligne de vie): pathway episodes by theme on a time axis."""

from datetime import date, datetime

from sqlmodel import Field, SQLModel

from dossier_service.models.types import UTCDateTime, new_id, utcnow


class Episode(SQLModel, table=True):
    __tablename__ = "lifeline_episodes"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    patient_id: str = Field(foreign_key="patients.id", max_length=40, index=True)
    theme: str = Field(max_length=200)
    title: str = Field(default="", max_length=300)
    starts_on: date
    ends_on: date | None = None
    form_id: str | None = Field(default=None, max_length=100)
    description: str = Field(default="", max_length=4000)
    created_by: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
