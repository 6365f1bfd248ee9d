"""Pure: the writes the bot asks of the dossier, as typed operations.

Each operation is a frozen dataclass named by ``name`` (the string the durable outbox stores,
unchanged so that an outbox written by an older bot is still delivered) and read back from its
JSON payload by ``parse``. ``words`` is how the room is told about it when it lands late.
``bots.dossier_link.delivery`` performs them through its handler table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True)
class Operation:
    name: ClassVar[str]
    words: ClassVar[str]

    def payload(self) -> dict[str, Any]:
        """The JSON the outbox stores (the same keys as older bots wrote)."""
        return asdict(self)

    @classmethod
    def parse(cls, payload: Mapping[str, Any]) -> Operation:
        """Missing required fields raise ``TypeError`` (the worker retries, logs a reference)."""
        return cls(**{f.name: payload[f.name] for f in fields(cls) if f.name in payload})


@dataclass(frozen=True, kw_only=True)
class OnFile(Operation):
    """An operation on a room's file: ``patient_id`` when known, else found from the room."""

    room_id: str | None = None
    patient_id: str | None = None
    actor: str | None = None


@dataclass(frozen=True, kw_only=True)
class CreatePatient(Operation):
    name = "patient.create"
    words = "la création du dossier"
    room_id: str
    label: str = ""
    actor: str | None = None
    actor_name: str | None = None
    pseudonym: str | None = None  # the file takes the room's pseudonymous id


@dataclass(frozen=True, kw_only=True)
class LinkRoom(Operation):
    name = "patient.link"
    words = "la liaison au dossier"
    room_id: str
    patient_id: str
    actor: str | None = None


@dataclass(frozen=True, kw_only=True)
class LeftRoom(OnFile):
    name = "circle.left"
    words = "le départ de la conversation"
    user_id: str
    removed_by: str | None = None  # removed in a client by this member (a kick, a ban)
    was_invited: bool = False  # an invitation declined (or withdrawn), not a departure


@dataclass(frozen=True, kw_only=True)
class BackInRoom(OnFile):
    name = "circle.back"
    words = "le retour dans la conversation"
    user_id: str


@dataclass(frozen=True, kw_only=True)
class AddNotebookEntry(OnFile):
    name = "notebook.add"
    words = "l'entrée du cahier de liaison"
    text: str
    kind: str = "note"


@dataclass(frozen=True, kw_only=True)
class CreateTask(OnFile):
    name = "task.create"
    words = "la tâche"
    label: str
    type: str | None = None
    assignees: list[str] = field(default_factory=list)
    due_date: str | None = None
    command: str | None = None  # the !tache event: the room's notice answers it


@dataclass(frozen=True, kw_only=True)
class CloseTask(OnFile):
    name = "task.close"
    words = "la clôture de la tâche"
    task_id: str


@dataclass(frozen=True, kw_only=True)
class UploadDocument(OnFile):
    name = "document.upload"
    words = "le document"
    category: str
    filename: str
    blob: str  # the bytes, kept by the outbox under their digest


@dataclass(frozen=True, kw_only=True)
class AddToCircle(OnFile):
    name = "circle.add"
    words = "l'ajout au cercle de soins"
    member: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class EndInCircle(OnFile):
    name = "circle.end"
    words = "le retrait du cercle de soins"
    member_id: str


@dataclass(frozen=True, kw_only=True)
class RecordActivity(Operation):
    """Counts and timestamps for the activity extraction (``bots.dossier_link.activity``):
    never content; the dossier finds the file from the room and keeps a day's largest total."""

    name = "activity.record"
    words = "l'activité du salon"
    kind: str
    room_id: str
    ref: str
    at_ms: int
    of_ref: str | None = None
    flag_kind: str = ""
    day: str | None = None
    count: int = 1


OPERATIONS: dict[str, type[Operation]] = {
    op.name: op
    for op in (
        CreatePatient,
        LinkRoom,
        LeftRoom,
        BackInRoom,
        AddNotebookEntry,
        CreateTask,
        CloseTask,
        UploadDocument,
        AddToCircle,
        EndInCircle,
        RecordActivity,
    )
}


def parse_operation(name: str, payload: Mapping[str, Any]) -> Operation | None:
    """The typed operation of an outbox item; None for a name this bot does not know."""
    kind = OPERATIONS.get(name)
    return kind.parse(payload) if kind is not None else None


def words_of(name: str) -> str:
    kind = OPERATIONS.get(name)
    return kind.words if kind is not None else "la demande"
