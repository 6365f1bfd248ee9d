"""Memos and hospitalisations: the day-to-day follow-up of a file."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from dossier_service.models.types import UTCDateTime, new_id, utcnow


class Memo(SQLModel, table=True):
    __tablename__ = "memos"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    patient_id: str = Field(foreign_key="patients.id", max_length=40, index=True)
    text: str = Field(max_length=4000)
    archived: bool = False
    created_by: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Hospitalisation(SQLModel, table=True):
    """A stay: planned (admission ahead), current (admitted, not discharged) or past."""

    __tablename__ = "hospitalisations"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    patient_id: str = Field(foreign_key="patients.id", max_length=40, index=True)
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
