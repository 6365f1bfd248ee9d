"""Retention the way care needs it: a file's conversation and documents stay while the file
is active, and for ``retention.years_after_closure`` after it was closed (the legal period
for medical records: 20 years, Code de la santé publique, art. R1112-7); then they are
archived (file export, documents, PDF transcript of the conversation, in one encrypted
archive verified before anything is deleted) and the room is purged with Synapse's own room
deletion API (``DELETE /_synapse/admin/v2/rooms/…`` with ``purge``).

The choice is a pure function of the dossier's file status and closure date: a quiet room is
never a reason (Synapse's message-age retention stays off; see test_retention).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from deployment.profile import Profile, ProfileError

CLOSED = "clos"


@dataclass(frozen=True)
class RetentionPolicy:
    years_after_closure: int


@dataclass(frozen=True)
class ClosedFile:
    patient_id: str
    room_id: str | None
    closed_at: datetime


def policy_from_profile(profile: Profile) -> RetentionPolicy:
    section = profile.data.get("retention") or {}
    years = section.get("years_after_closure", 20)
    if isinstance(years, bool) or not isinstance(years, int) or years < 0:
        raise ProfileError("retention.years_after_closure : un nombre d'années ≥ 0 est attendu")
    return RetentionPolicy(years)


def closed_file(export: dict[str, Any]) -> ClosedFile | None:
    """The file's closure from its full export (GET /api/v1/patients/{id}); None while the
    file is not closed (actif, en veille … whatever the conversation's activity)."""
    patient = export.get("patient", export)
    if patient.get("file_status") != CLOSED:
        return None
    closures = [
        h["changed_at"] for h in export.get("status_history", []) if h.get("status") == CLOSED
    ]
    if not closures:
        return None
    closed_at = datetime.fromisoformat(str(max(closures)).replace("Z", "+00:00"))
    if closed_at.tzinfo is None:
        closed_at = closed_at.replace(tzinfo=UTC)
    return ClosedFile(str(patient["id"]), patient.get("room_id"), closed_at)


def purge_after(closed_at: datetime, policy: RetentionPolicy) -> datetime:
    try:
        return closed_at.replace(year=closed_at.year + policy.years_after_closure)
    except ValueError:  # 29 February
        return closed_at.replace(year=closed_at.year + policy.years_after_closure, day=28)


def is_due(file: ClosedFile | None, now: datetime, policy: RetentionPolicy) -> bool:
    return file is not None and purge_after(file.closed_at, policy) <= now
