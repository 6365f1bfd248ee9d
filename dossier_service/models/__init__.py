"""SQLModel tables, one module per aggregate. Importing this package registers them all."""

from sqlmodel import SQLModel

from dossier_service.models import directory as directory
from dossier_service.models.activity import ActivityEvent, ExtractionReport
from dossier_service.models.agenda import AgendaAttendee, AgendaEvent, AgendaFeedToken
from dossier_service.models.audit import AuditEntry, IdempotencyRecord, OutboxEvent
from dossier_service.models.circle import CircleMember, StructureMember
from dossier_service.models.documents import Document
from dossier_service.models.followup import Hospitalisation, Memo
from dossier_service.models.forms import FormAnswer
from dossier_service.models.lifeline import Episode
from dossier_service.models.notebook import NotebookEntry
from dossier_service.models.patient import (
    DeathDeclaration,
    FileStatusChange,
    IdentityStatusChange,
    Patient,
)
from dossier_service.models.sessions import SessionRevocation
from dossier_service.models.tasks import Task, TaskAssignee

metadata = SQLModel.metadata

__all__ = [
    "ActivityEvent",
    "AgendaAttendee",
    "AgendaEvent",
    "AgendaFeedToken",
    "AuditEntry",
    "CircleMember",
    "DeathDeclaration",
    "Document",
    "Episode",
    "ExtractionReport",
    "FileStatusChange",
    "FormAnswer",
    "Hospitalisation",
    "IdempotencyRecord",
    "IdentityStatusChange",
    "Memo",
    "NotebookEntry",
    "OutboxEvent",
    "Patient",
    "SessionRevocation",
    "StructureMember",
    "Task",
    "TaskAssignee",
    "metadata",
]
