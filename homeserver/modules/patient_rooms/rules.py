"""The patient-room policy, as pure functions over plain data.

A *patient room* is a room whose state carries the marker event
(`fr.cercle.patient` by default, any state key). In a patient room:

- encryption stays: `m.room.encryption` cannot be removed, emptied or changed
  to another algorithm, and the only algorithm it can be set to is Megolm;
- it stays invite-only: `m.room.join_rules` can only take an allowed rule
  (`invite` by default; never public, knock or knock_restricted);
- `m.room.history_visibility` is never `world_readable`;
- it is never published in the room directory (at creation or later);
- the marker itself cannot be redacted, and can only be added to a room that
  already follows these rules (linking an existing room);
- message-like events (`m.room.message`, stickers, polls) are refused in clear,
  even if encryption is somehow missing.

In every encrypted room (patient or not), a message-like event sent in clear
is refused, and the encryption event can neither change algorithm nor be
redacted (a redacted `m.room.encryption` loses its algorithm).
Reactions are allowed in clear: see `config.DEFAULT_PLAINTEXT_REFUSED`.

Nothing here knows Synapse: the module converts events and state into these
types, which keeps the rules testable without a homeserver.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .config import MEGOLM, PatientRoomsConfig

ENCRYPTION = "m.room.encryption"
JOIN_RULES = "m.room.join_rules"
HISTORY_VISIBILITY = "m.room.history_visibility"
REDACTION = "m.room.redaction"
WORLD_READABLE = "world_readable"

# Join rule of each `createRoom` preset (the spec's table; Synapse follows it).
_PRESET_JOIN_RULES = {
    "public_chat": "public",
    "private_chat": "invite",
    "trusted_private_chat": "invite",
}


@dataclass(frozen=True)
class StateEntry:
    """One current state event: its id and its content."""

    event_id: str
    content: Mapping[str, Any]


RoomState = Mapping[tuple[str, str], StateEntry]


@dataclass(frozen=True)
class Event:
    """The parts of an event the policy looks at."""

    type: str
    state_key: str | None
    content: Mapping[str, Any]
    redacts: str | None = None

    @property
    def is_state(self) -> bool:
        return self.state_key is not None


@dataclass(frozen=True)
class Refusal:
    """Why something is refused: a stable rule name (for logs) and a French message."""

    rule: str
    message: str


def relevant_state_types(config: PatientRoomsConfig) -> frozenset[str]:
    """The state event types the rules read (the rest of the state can be skipped)."""
    return frozenset({config.marker_event_type, ENCRYPTION, JOIN_RULES, HISTORY_VISIBILITY})


def is_patient_room(state: RoomState, config: PatientRoomsConfig) -> bool:
    return any(event_type == config.marker_event_type for event_type, _ in state)


def encryption_algorithm(state: RoomState) -> str | None:
    """The room's current encryption algorithm, or None if it is not encrypted."""
    entry = state.get((ENCRYPTION, ""))
    if entry is None:
        return None
    algorithm = entry.content.get("algorithm")
    return algorithm if isinstance(algorithm, str) and algorithm else None


def _join_rule(state: RoomState) -> str | None:
    entry = state.get((JOIN_RULES, ""))
    value = entry.content.get("join_rule") if entry else None
    return value if isinstance(value, str) else None


def _history_visibility(state: RoomState) -> str | None:
    entry = state.get((HISTORY_VISIBILITY, ""))
    value = entry.content.get("history_visibility") if entry else None
    return value if isinstance(value, str) else None


def check_event(event: Event, state: RoomState, config: PatientRoomsConfig) -> Refusal | None:
    """Decide on a new event given the room state *before* it. None = allowed."""
    patient = is_patient_room(state, config)
    current_algorithm = encryption_algorithm(state)

    if event.is_state and event.state_key == "":
        if event.type == ENCRYPTION:
            return _check_encryption_change(event, current_algorithm, patient)
        if patient and event.type == JOIN_RULES:
            return _check_join_rule(event.content.get("join_rule"), config)
        if patient and event.type == HISTORY_VISIBILITY:
            return _check_history_visibility(event.content.get("history_visibility"))
    if event.is_state and event.type == config.marker_event_type and not patient:
        return _check_marking(state, current_algorithm, config)
    if event.type == REDACTION and event.redacts is not None:
        return _check_redaction(event.redacts, state, config)
    if (
        not event.is_state
        and event.type in config.plaintext_refused_event_types
        and (current_algorithm is not None or patient)
    ):
        return Refusal(
            "plaintext_in_encrypted_room",
            "Message en clair refusé : cette salle est chiffrée de bout en bout.",
        )
    return None


def _check_encryption_change(
    event: Event, current_algorithm: str | None, patient: bool
) -> Refusal | None:
    algorithm = event.content.get("algorithm")
    if current_algorithm is not None:
        if algorithm != current_algorithm:
            return Refusal(
                "encryption_change",
                "Le chiffrement d'une salle ne peut être ni retiré ni modifié.",
            )
        return None
    if patient and algorithm != MEGOLM:
        return Refusal(
            "patient_room_encryption",
            f"Une salle patient ne peut être chiffrée qu'avec {MEGOLM}.",
        )
    return None


def _check_join_rule(join_rule: object, config: PatientRoomsConfig) -> Refusal | None:
    if join_rule in config.allowed_join_rules:
        return None
    return Refusal(
        "patient_room_join_rules",
        "Une salle patient reste sur invitation : elle ne peut être ni publique ni ouverte "
        "aux demandes d'accès.",
    )


def _check_history_visibility(visibility: object) -> Refusal | None:
    if visibility == WORLD_READABLE:
        return Refusal(
            "patient_room_history_visibility",
            "L'historique d'une salle patient ne peut pas être lisible par tous.",
        )
    return None


def _check_marking(
    state: RoomState, current_algorithm: str | None, config: PatientRoomsConfig
) -> Refusal | None:
    """A room becomes a patient room only if it already follows the rules.

    Encryption may still be missing here: at creation Synapse sends the default
    `m.room.encryption` after the `initial_state` events. The room gets it right
    after, and until then plaintext messages are refused anyway.
    """
    join_rule = _join_rule(state)
    if join_rule is not None and join_rule not in config.allowed_join_rules:
        return Refusal(
            "patient_marker_join_rules",
            "Seule une salle sur invitation peut devenir une salle patient.",
        )
    if _history_visibility(state) == WORLD_READABLE:
        return Refusal(
            "patient_marker_history_visibility",
            "Une salle à l'historique lisible par tous ne peut pas devenir une salle patient.",
        )
    if current_algorithm is not None and current_algorithm != MEGOLM:
        return Refusal(
            "patient_marker_encryption",
            f"Une salle patient doit être chiffrée avec {MEGOLM}.",
        )
    return None


def _check_redaction(
    target_event_id: str, state: RoomState, config: PatientRoomsConfig
) -> Refusal | None:
    encryption = state.get((ENCRYPTION, ""))
    if encryption is not None and encryption.event_id == target_event_id:
        return Refusal(
            "encryption_redaction",
            "L'événement de chiffrement d'une salle ne peut pas être effacé.",
        )
    for (event_type, _), entry in state.items():
        if event_type == config.marker_event_type and entry.event_id == target_event_id:
            return Refusal(
                "patient_marker_redaction",
                "Le marqueur de salle patient ne peut pas être effacé.",
            )
    return None


def check_publication(state: RoomState, config: PatientRoomsConfig) -> Refusal | None:
    """Publishing a room in the room directory: never for a patient room."""
    if is_patient_room(state, config):
        return Refusal(
            "patient_room_directory",
            "Une salle patient ne peut pas être publiée dans l'annuaire des salles.",
        )
    return None


def check_room_creation(request: Mapping[str, Any], config: PatientRoomsConfig) -> Refusal | None:
    """Decide on a `createRoom` request body before anything is created.

    Synapse sends the preset's join rules and history visibility *before* the
    `initial_state` events, and publishes the room from the `visibility` field,
    so a patient room asked for as public must be refused here, as a whole.
    """
    initial_state = _initial_state(request.get("initial_state"))
    if not any(event_type == config.marker_event_type for event_type, _ in initial_state):
        return None

    if request.get("visibility") == "public":
        return Refusal(
            "patient_room_directory",
            "Une salle patient ne peut pas être publiée dans l'annuaire des salles.",
        )

    join_rules = initial_state.get((JOIN_RULES, ""))
    if join_rules is not None:
        join_rule: object = join_rules.get("join_rule")
    else:
        preset = request.get("preset")
        if not isinstance(preset, str):
            preset = "public_chat" if request.get("visibility") == "public" else "private_chat"
        join_rule = _PRESET_JOIN_RULES.get(preset, "invite")
    refusal = _check_join_rule(join_rule, config)
    if refusal is not None:
        return refusal

    history = initial_state.get((HISTORY_VISIBILITY, ""))
    if history is not None:
        refusal = _check_history_visibility(history.get("history_visibility"))
        if refusal is not None:
            return refusal

    encryption = initial_state.get((ENCRYPTION, ""))
    if encryption is not None and encryption.get("algorithm") != MEGOLM:
        return Refusal(
            "patient_room_encryption",
            f"Une salle patient ne peut être chiffrée qu'avec {MEGOLM}.",
        )
    return None


def _initial_state(raw: object) -> dict[tuple[str, str], Mapping[str, Any]]:
    """`initial_state` as Synapse reads it: the last event for a (type, state_key) wins."""
    result: dict[tuple[str, str], Mapping[str, Any]] = {}
    if not isinstance(raw, Iterable) or isinstance(raw, str | bytes | Mapping):
        return result
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        event_type = item.get("type")
        state_key = item.get("state_key", "")
        content = item.get("content")
        if isinstance(event_type, str) and isinstance(state_key, str):
            result[(event_type, state_key)] = content if isinstance(content, Mapping) else {}
    return result
