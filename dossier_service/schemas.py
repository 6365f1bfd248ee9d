"""Validated request bodies (pydantic): unknown keys and wrong types are refused.

JSON bodies are parsed with ``Model.model_validate_json(raw)`` (strict types; ISO dates
accepted as strings). Web forms may use ``Model.model_validate(data, strict=False)``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from deployment.conventions import MATRIX_USER_ID_PATTERN as MATRIX_USER_ID
from dossier_service.bounded import TEXT_PATTERN, BoundedDate, BoundedDatetime, check_text
from dossier_service.models.circle import CircleRole, MemberKind

# room versions >= 12 (MSC4291) have no ":server" part: "!<hash of the create event>"
ROOM_ID = r"^![A-Za-z0-9._=\-/+]+(:[A-Za-z0-9.\-]+(:\d{1,5})?)?$"

Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
UserId = Annotated[str, StringConstraints(pattern=MATRIX_USER_ID, max_length=255)]
RoomId = Annotated[str, StringConstraints(pattern=ROOM_ID, max_length=255)]


# One bounded type for every date and timestamp received (see dossier_service.bounded).
AwareDatetime = BoundedDatetime


def _describe_text(schema: dict[str, Any]) -> None:
    """The OpenAPI description says that text fields refuse control characters (below)."""
    for prop in schema.get("properties", {}).values():
        for variant in (prop, *prop.get("anyOf", ()), prop.get("items", {})):
            if variant.get("type") == "string" and not variant.keys() & {"pattern", "enum"}:
                variant["pattern"] = TEXT_PATTERN


class Input(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, str_strip_whitespace=True, json_schema_extra=_describe_text
    )

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        """NUL and the other control characters are refused in every text field."""
        if isinstance(value, str):
            return check_text(value)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    check_text(item)
        return value


# --------------------------------------------------------------------------- identity
class IdentityFields(Input):
    label: ShortText | None = None
    birth_name: ShortText | None = None
    used_name: ShortText | None = None
    birth_first_names: (
        list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] | None
    ) = Field(default=None, max_length=10)
    used_first_name: ShortText | None = None
    sex: Literal["M", "F", "I"] | None = None
    birth_date: BoundedDate | None = None
    birth_insee_code: Annotated[str, StringConstraints(max_length=5)] | None = None
    birth_commune: ShortText | None = None
    birth_country: ShortText | None = None
    identity_status: Literal["PROV", "RECUP", "VALI", "QUAL"] | None = None
    ins_number: Annotated[str, StringConstraints(max_length=20)] | None = None
    identity_document_type: ShortText | None = None
    identity_document_date: BoundedDate | None = None
    postcode: Annotated[str, StringConstraints(pattern=r"^(\d{5})?$")] | None = None
    address: Annotated[str, StringConstraints(max_length=500)] | None = None
    phones: list[Annotated[str, StringConstraints(pattern=r"^\+?[0-9 .\-]{6,20}$")]] | None = Field(
        default=None, max_length=5
    )
    email: (
        Annotated[str, StringConstraints(pattern=r"^([^@\s]+@[^@\s]+\.[^@\s]+)?$", max_length=254)]
        | None
    ) = None


class PatientCreate(IdentityFields):
    room_id: RoomId | None = None
    # Who becomes the file's first coordinator when the bot opens it on someone's behalf.
    coordinator: UserId | None = None
    coordinator_name: ShortText | None = None
    # issue 6: the pseudonymous id the bot already gave the patient's room (service only)
    id: Annotated[str, StringConstraints(pattern=r"^P-[0-9A-Z]{8,32}$")] | None = None


class IdentityUpdate(IdentityFields):
    pass


class FileStatusIn(Input):
    status: Label
    comment: Text = ""


class DeathIn(Input):
    death_date: BoundedDate


class DeathCancelIn(Input):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class RoomLinkIn(Input):
    room_id: RoomId


# --------------------------------------------------------------------------- follow-up
class MemoIn(Input):
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class MemoUpdate(Input):
    text: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
        | None
    ) = None
    archived: bool | None = None


class HospitalisationIn(Input):
    structure: Label
    service: ShortText = ""
    admission_at: AwareDatetime
    discharge_at: AwareDatetime | None = None
    comment: Text = ""


class HospitalisationUpdate(Input):
    service: ShortText | None = None
    admission_at: AwareDatetime | None = None
    discharge_at: AwareDatetime | None = None
    comment: Text | None = None


# --------------------------------------------------------------------------- care circle
class CircleMemberIn(Input):
    kind: MemberKind
    display_name: Label
    matrix_user_id: UserId | None = None
    directory_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    profession: ShortText = ""
    specialty: ShortText = ""
    role: CircleRole
    has_access: bool = False
    description: Text = ""


class CircleMemberUpdate(Input):
    role: CircleRole | None = None
    has_access: bool | None = None
    profession: ShortText | None = None
    specialty: ShortText | None = None
    description: Text | None = None


class LeftRoomIn(Input):
    matrix_user_id: UserId
    removed_by: UserId | None = None  # who removed her from the room in a client
    was_invited: bool = False  # she had been invited, not joined: declined, or withdrawn


class BackInRoomIn(Input):
    matrix_user_id: UserId


class StructureMemberIn(Input):
    """Someone working for a structure (issue 18), added by an admin or its referent."""

    matrix_user_id: UserId
    display_name: Label
    role: Literal["referent", "membre"] = "membre"


# --------------------------------------------------------------------------- life line
class EpisodeIn(Input):
    theme: Label
    title: ShortText = ""
    starts_on: BoundedDate
    ends_on: BoundedDate | None = None
    form_id: Annotated[str, StringConstraints(max_length=100)] | None = None
    description: Text = ""


class EpisodeUpdate(Input):
    title: ShortText | None = None
    starts_on: BoundedDate | None = None
    ends_on: BoundedDate | None = None
    description: Text | None = None


# --------------------------------------------------------------------------- notebook, forms
class NotebookIn(Input):
    kind: Literal["note", "transmission", "signalement"] = "note"
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=8000)]
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class FormAnswersIn(Input):
    answers: dict[str, Any]
    base_version: int | None = None


# --------------------------------------------------------------------------- tasks
class AssigneeIn(Input):
    kind: Literal["personne", "structure"]
    ref: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class TaskIn(Input):
    patient_id: Annotated[str, StringConstraints(max_length=40)] | None = None
    type: Label
    subtypes: list[ShortText] = Field(default_factory=list, max_length=10)
    level: Literal["basse", "normale", "haute", "urgente"] = "normale"
    label: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    due_date: BoundedDate | None = None
    comment: Text = ""
    form_id: Annotated[str, StringConstraints(max_length=100)] | None = None
    assignees: list[AssigneeIn] = Field(default_factory=list, max_length=20)
    document_ids: list[Annotated[str, StringConstraints(max_length=36)]] = Field(
        default_factory=list, max_length=20
    )
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class TaskUpdate(Input):
    state: Literal["à faire", "en cours", "fait", "annulé"] | None = None
    level: Literal["basse", "normale", "haute", "urgente"] | None = None
    label: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
        | None
    ) = None
    subtypes: list[ShortText] | None = Field(default=None, max_length=10)
    due_date: BoundedDate | None = None
    comment: Text | None = None
    assignees: list[AssigneeIn] | None = Field(default=None, max_length=20)
    document_ids: list[Annotated[str, StringConstraints(max_length=36)]] | None = Field(
        default=None, max_length=20
    )


# --------------------------------------------------------------------------- agenda
class EventIn(Input):
    type: Label
    title: Label
    patient_id: Annotated[str, StringConstraints(max_length=40)] | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    rrule: Annotated[str, StringConstraints(max_length=300)] | None = None
    location: ShortText = ""
    description: Text = ""
    attendees: list[UserId] = Field(default_factory=list, max_length=50)
    owner: UserId | None = None


class EventUpdate(Input):
    type: Label | None = None
    title: Label | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    rrule: Annotated[str, StringConstraints(max_length=300)] | None = None
    location: ShortText | None = None
    description: Text | None = None
    attendees: list[UserId] | None = Field(default=None, max_length=50)
    cancelled: bool | None = None


# --------------------------------------------------------------------------- login
class OpenIdLoginIn(BaseModel):
    """The object Synapse returns from ``/user/{userId}/openid/request_token``."""

    model_config = ConfigDict(extra="ignore", strict=True)

    access_token: Annotated[str, StringConstraints(min_length=1, max_length=512)] = Field(
        repr=False
    )
    token_type: str = "Bearer"
    matrix_server_name: Annotated[str, StringConstraints(max_length=255)] | None = None
    expires_in: int | None = None


class SessionsRevokeIn(Input):
    user_id: UserId
    reason: Annotated[str, StringConstraints(max_length=40)] = "désactivation"
