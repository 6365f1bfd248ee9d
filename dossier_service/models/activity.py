"""Activity facts reported by the bot, for the activity extraction (issue 18): counts and
timestamps only, never content.

- ``messages``: the number of messages of a patient room on a Paris day (``ref`` =
  ``<room>|<day>``; the bot sends the day's running total, so a replay overwrites, never adds);
- ``signalement``: a flag raised (``ref`` = the command's event id, ``flag_kind``);
- ``prise_en_compte``: a flag acknowledged (``ref`` = the acknowledgement's event id,
  ``of_ref`` = the raised flag's ``ref``);
- ``export``: a PDF export of the conversation (``ref`` = the command's event id).
"""

from datetime import date, datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from dossier_service.models.types import FileRow, UTCDateTime, new_id, utcnow

ACTIVITY_KINDS = ("messages", "signalement", "prise_en_compte", "export")
PENDING, READY, FAILED = "en cours", "prête", "échec"  # extraction report statuses


class ActivityEvent(FileRow, table=True):
    __tablename__ = "activity_events"
    __table_args__ = (
        UniqueConstraint("kind", "ref", name="uq_activity_events_kind_ref"),
        Index("ix_activity_events_kind_day", "kind", "day", "patient_id"),
        Index("ix_activity_events_of_ref", "of_ref"),
    )

    kind: str = Field(max_length=20)
    ref: str = Field(max_length=300)
    of_ref: str | None = Field(default=None, max_length=300)
    flag_kind: str = Field(default="", max_length=20)
    at: datetime = Field(sa_type=UTCDateTime)
    day: str = Field(max_length=10)  # Paris day, YYYY-MM-DD
    count: int = Field(default=1)


class ExtractionReport(SQLModel, table=True):
    """An activity extraction asked for (``dossier_service/extraction/reports.py``)."""

    __tablename__ = "extraction_reports"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    requested_by: str = Field(max_length=255, index=True)
    scope_kind: str = Field(max_length=20)  # "plateforme" | "structure"
    structure_id: str | None = Field(default=None, max_length=64)
    scope_label: str = Field(max_length=300)
    period_start: date
    period_end: date
    status: str = Field(default=PENDING, max_length=20)
    reason: str = Field(default="", max_length=300)
    title: str = Field(default="", max_length=400)
    xlsx_sha256: str = Field(default="", max_length=64)
    csv_sha256: str = Field(default="", max_length=64)
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
