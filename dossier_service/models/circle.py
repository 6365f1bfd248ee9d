"""The care circle (cercle de soins): professionals, caregivers, representatives, structures."""

from datetime import datetime
from typing import Literal, get_args

import sqlalchemy as sa
from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from dossier_service.models.types import FileRow, UTCDateTime, new_id, utcnow

# Who a member is, and her role in the circle: written once, the API's inputs take these types.
MemberKind = Literal["professionnel", "aidant", "representant_legal", "structure"]
CircleRole = Literal[
    "intervenant",
    "coordinateur",
    "medecin_traitant",
    "aidant_principal",
    "aidant",
    "representant_legal",
    "structure",
]
MEMBER_KINDS: tuple[str, ...] = get_args(MemberKind)
ROLES: tuple[str, ...] = get_args(CircleRole)
COORDINATOR_ROLES = frozenset({"coordinateur"})
ROLE_LABELS = {
    "intervenant": "intervenant",
    "coordinateur": "coordinateur / gestionnaire de cas",
    "medecin_traitant": "médecin traitant",
    "aidant_principal": "aidant principal",
    "aidant": "aidant",
    "representant_legal": "représentant légal",
    "structure": "structure",
}


class CircleMember(FileRow, table=True):
    """One membership; ending it keeps the row (ended_on) for the history."""

    __tablename__ = "circle_members"
    __table_args__ = (
        Index("ix_circle_members_patient", "patient_id", "ended_at"),
        Index("ix_circle_members_user", "matrix_user_id", "ended_at"),
        Index("ix_circle_members_via", "via_member_id"),
    )

    kind: str = Field(max_length=30)
    display_name: str = Field(max_length=300)
    matrix_user_id: str | None = Field(default=None, max_length=255)
    directory_id: str | None = Field(default=None, max_length=64)
    profession: str = Field(default="", max_length=200)
    specialty: str = Field(default="", max_length=200)
    role: str = Field(max_length=40)
    has_access: bool = False
    description: str = Field(default="", max_length=1000)
    added_by: str = Field(max_length=255)
    added_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ended_by: str | None = Field(default=None, max_length=255)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    left_room_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # issue 18: a professional in the circle because her structure is "avec accès au dossier"
    # (the id of the structure's row in this circle); ends with it or when she leaves it
    via_member_id: str | None = Field(default=None, max_length=36)


STRUCTURE_ROLES = ("referent", "membre")
STRUCTURE_SOURCES = ("admin", "rpps", "demande")


class StructureMember(SQLModel, table=True):
    """Someone working for a FINESS structure (issue 18): its referents manage its members;
    when a structure is in a care circle "avec accès au dossier", its members are too.
    Ending it keeps the row (ended_at) for the history."""

    __tablename__ = "structure_members"
    __table_args__ = (
        Index("ix_structure_members_finess", "finess", "ended_at"),
        Index("ix_structure_members_user", "matrix_user_id", "ended_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    finess: str = Field(max_length=9)
    matrix_user_id: str = Field(max_length=255)
    display_name: str = Field(max_length=300)
    role: str = Field(default="membre", max_length=20)  # referent | membre
    source: str = Field(default="admin", max_length=20)  # admin | rpps | demande
    without_rpps: bool = False
    # without RPPS: " <words of name, role, structure, city>" folded, what the directory's
    # search reads (a LIKE per word; the RPPS professionals have their own search keys)
    search_text: str = Field(default="", sa_type=sa.Text, sa_column_kwargs={"server_default": ""})
    added_by: str = Field(max_length=255)
    added_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ended_by: str | None = Field(default=None, max_length=255)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
