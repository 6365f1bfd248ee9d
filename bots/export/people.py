"""Who the transcript is about and who speaks in it, as the dossier knows them.

The room itself only knows display names (the patient's identity never lives in room
state).  When the bot has a dossier client, the header shows the patient's name and the
professions of the care circle; without one, or when the dossier is unreachable, the
export goes on without them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoomPeople:
    patient: str | None = None
    professions: Mapping[str, str] = field(default_factory=dict)  # Matrix user id -> profession


DescribeRoom = Callable[[str], Awaitable[RoomPeople]]


class PatientDirectory(Protocol):
    """The part of `bots.dossier_client.DossierClient` used here."""

    async def patient_by_room(self, room_id: str) -> dict[str, Any] | None: ...

    async def circle(
        self, patient_id: str, *, include_ended: bool = False
    ) -> list[dict[str, Any]]: ...


def patient_name(patient: Mapping[str, Any]) -> str | None:
    """« Prénom NOM » from the identity traits (used names first), else the file's label."""
    first = str(patient.get("used_first_name") or patient.get("first_birth_first_name") or "")
    last = str(patient.get("used_name") or patient.get("birth_name") or "")
    name = " ".join(part for part in (first.strip(), last.strip().upper()) if part)
    return name or (str(patient.get("label") or "").strip() or None)


class DossierRoomPeople:
    def __init__(self, dossier: PatientDirectory) -> None:
        self.dossier = dossier

    async def __call__(self, room_id: str) -> RoomPeople:
        try:
            patient = await self.dossier.patient_by_room(room_id)
            if not patient:
                return RoomPeople()
            members = await self.dossier.circle(str(patient["id"]), include_ended=True)
        except Exception:
            log.warning("export: dossier unavailable for room=%s", room_id)
            return RoomPeople()
        professions = {
            str(m["matrix_user_id"]): str(m["profession"])
            for m in members
            if m.get("matrix_user_id") and m.get("profession")
        }
        return RoomPeople(patient_name(patient), professions)
