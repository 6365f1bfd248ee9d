"""Memos and hospitalisations: the day-to-day follow-up of a file."""

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field

from dossier_service.models.types import FileRow, UTCDateTime, utcnow


class Memo(FileRow, table=True):
    __tablename__ = "memos"
    __table_args__ = (Index("ix_memos_patient_id", "patient_id"),)

    text: str = Field(max_length=4000)
    archived: bool = False
    created_by: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Hospitalisation(FileRow, table=True):
    """A stay: planned (admission ahead), current (admitted, not discharged) or past."""

    __tablename__ = "hospitalisations"
    __table_args__ = (Index("ix_hospitalisations_patient_id", "patient_id"),)

    structure: str = Field(max_length=300)
    service: str = Field(default="", max_length=300)
    admission_at: datetime = Field(sa_type=UTCDateTime)
    discharge_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    comment: str = Field(default="", max_length=2000)
    created_by: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    def state(self, now: datetime) -> str:
        if self.admission_at > now:
            return "prévue"
        if self.discharge_at is None or self.discharge_at > now:
            return "en cours"
        return "passée"
