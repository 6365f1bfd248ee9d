"""The patient aggregate: INS identity traits, file status and its history, death declaration."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from dossier_service.models.types import FileRow, UTCDateTime, new_patient_id, utcnow


class Patient(SQLModel, table=True):
    __tablename__ = "patients"

    id: str = Field(default_factory=new_patient_id, primary_key=True, max_length=40)
    room_id: str | None = Field(default=None, max_length=255, unique=True)
    label: str = Field(default="", max_length=200)
    birth_name: str = Field(default="", max_length=200)
    used_name: str = Field(default="", max_length=200)
    birth_first_names: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    first_birth_first_name: str = Field(default="", max_length=100)
    used_first_name: str = Field(default="", max_length=100)
    sex: str | None = Field(default=None, max_length=1)
    birth_date: date | None = None
    birth_insee_code: str | None = Field(default=None, max_length=5)
    birth_commune: str = Field(default="", max_length=200)
    birth_country: str = Field(default="France", max_length=100)
    identity_status: str = Field(default="PROV", max_length=5)
    ins_number: str | None = Field(default=None, max_length=15)
    identity_document_type: str | None = Field(default=None, max_length=60)
    identity_document_date: date | None = None
    postcode: str = Field(default="", max_length=10)
    address: str = Field(default="", max_length=500)
    phones: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    email: str = Field(default="", max_length=254)
    registered_on: date = Field(default_factory=lambda: utcnow().date())
    file_status: str = Field(default="actif", max_length=40)
    death_date: date | None = None
    created_by: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FileStatusChange(FileRow, table=True):
    """One line of the file status history (actif, en veille, clos …)."""

    __tablename__ = "file_status_changes"
    __table_args__ = (Index("ix_file_status_changes_patient", "patient_id", "changed_at"),)

    status: str = Field(max_length=40)
    previous_status: str | None = Field(default=None, max_length=40)
    comment: str = Field(default="", max_length=1000)
    changed_by: str = Field(max_length=255)
    changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IdentityStatusChange(FileRow, table=True):
    """Trace of every identity status transition (PROV → VALI → QUAL …)."""

    __tablename__ = "identity_status_changes"
    __table_args__ = (Index("ix_identity_status_changes_patient", "patient_id", "changed_at"),)

    status: str = Field(max_length=5)
    previous_status: str = Field(max_length=5)
    changed_by: str = Field(max_length=255)
    changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DeathDeclaration(FileRow, table=True):
    """A declared death; a cancellation keeps the row and records who cancelled, when, why."""

    __tablename__ = "death_declarations"
    __table_args__ = (Index("ix_death_declarations_patient_id", "patient_id"),)

    death_date: date
    declared_by: str = Field(max_length=255)
    declared_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    cancelled_by: str | None = Field(default=None, max_length=255)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancel_reason: str = Field(default="", max_length=1000)


def patient_public(patient: Patient) -> dict[str, Any]:
    """The identity as shown: the INS number only when the identity is qualified (QUAL)."""
    return {
        "id": patient.id,
        "room_id": patient.room_id,
        "label": patient.label,
        "birth_name": patient.birth_name,
        "used_name": patient.used_name,
        "birth_first_names": list(patient.birth_first_names),
        "first_birth_first_name": patient.first_birth_first_name,
        "used_first_name": patient.used_first_name,
        "sex": patient.sex,
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
        "birth_insee_code": patient.birth_insee_code,
        "birth_commune": patient.birth_commune,
        "birth_country": patient.birth_country,
        "identity_status": patient.identity_status,
        "ins_number": patient.ins_number if patient.identity_status == "QUAL" else None,
        "identity_document_type": patient.identity_document_type,
        "identity_document_date": (
            patient.identity_document_date.isoformat() if patient.identity_document_date else None
        ),
        "postcode": patient.postcode,
        "address": patient.address,
        "phones": list(patient.phones),
        "email": patient.email,
        "registered_on": patient.registered_on.isoformat(),
        "file_status": patient.file_status,
        "death_date": patient.death_date.isoformat() if patient.death_date else None,
        "created_at": patient.created_at.isoformat(),
        "updated_at": patient.updated_at.isoformat(),
    }
