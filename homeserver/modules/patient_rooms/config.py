"""Typed, frozen configuration of the patient-room policy module.

Synapse hands the module the `config:` mapping of its entry in `modules:`;
`parse_config` turns it into a `PatientRoomsConfig` or raises Synapse's
`ConfigError` whose path points at the offending key, so that Synapse refuses
to start with a message naming it.

Sample (in config/default.yaml, `homeserver.modules`; every key is optional)::

    - module: homeserver.modules.patient_rooms.PatientRoomsModule
      config:
        marker_event_type: fr.cercle.patient     # state event that makes a patient room
        allowed_join_rules: [invite]             # never public / knock / knock_restricted
        plaintext_refused_event_types:           # refused in clear in encrypted rooms;
          - m.room.message                       # must stay in the list
          - m.sticker
          - m.poll.start
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from synapse.module_api.errors import ConfigError

from ..config_checks import known_keys_only

MEGOLM = "m.megolm.v1.aes-sha2"

# Join rules that would let someone in without an invitation, or let anyone
# ask to be let in: never acceptable for a patient room, whatever the config.
OPEN_JOIN_RULES = frozenset({"public", "knock", "knock_restricted"})
KNOWN_JOIN_RULES = frozenset({"invite", "private", "restricted"}) | OPEN_JOIN_RULES

# Message-like events that carry what people write or show. Sent in clear in an
# encrypted room, they are refused. Reactions (`m.reaction`) are deliberately
# absent: Matrix keeps the relation in clear by design and several clients send
# reactions unencrypted; an emoji on an event is not a care record. Redactions
# are plaintext by construction and are not message-like either.
DEFAULT_PLAINTEXT_REFUSED = (
    "m.room.message",
    "m.sticker",
    "m.poll.start",
    "org.matrix.msc3381.poll.start",
    "m.poll.response",
    "org.matrix.msc3381.poll.response",
    "m.poll.end",
    "org.matrix.msc3381.poll.end",
)

_KEYS = frozenset({"marker_event_type", "allowed_join_rules", "plaintext_refused_event_types"})


@dataclass(frozen=True)
class PatientRoomsConfig:
    """What the module enforces.

    marker_event_type: the state event type that makes a room a patient room.
    allowed_join_rules: the only join rules a patient room may carry.
    plaintext_refused_event_types: message-like event types refused when sent
        unencrypted in an encrypted room (or in any patient room).
    """

    marker_event_type: str = "fr.cercle.patient"
    allowed_join_rules: frozenset[str] = field(default_factory=lambda: frozenset({"invite"}))
    plaintext_refused_event_types: frozenset[str] = field(
        default_factory=lambda: frozenset(DEFAULT_PLAINTEXT_REFUSED)
    )


def parse_config(raw: Mapping[str, Any] | None) -> PatientRoomsConfig:
    """Validate the module's `config:` mapping (``None`` or ``{}`` = defaults)."""
    if raw is None:
        return PatientRoomsConfig()
    raw = known_keys_only(raw, _KEYS)
    defaults = PatientRoomsConfig()

    marker = raw.get("marker_event_type", defaults.marker_event_type)
    if not isinstance(marker, str) or not marker.strip():
        raise ConfigError(
            "doit être un type d'événement non vide, par ex. fr.cercle.patient",
            path=["marker_event_type"],
        )

    join_rules = _string_set(raw, "allowed_join_rules", defaults.allowed_join_rules)
    if not join_rules:
        raise ConfigError("au moins une règle d'accès est nécessaire", path=["allowed_join_rules"])
    for rule in sorted(join_rules):
        if rule not in KNOWN_JOIN_RULES:
            raise ConfigError(f"règle d'accès inconnue : {rule}", path=["allowed_join_rules"])
        if rule in OPEN_JOIN_RULES:
            raise ConfigError(
                f"une salle patient ne peut pas être « {rule} » (invitation seulement)",
                path=["allowed_join_rules"],
            )

    plaintext = _string_set(
        raw, "plaintext_refused_event_types", defaults.plaintext_refused_event_types
    )
    if "m.room.message" not in plaintext:
        raise ConfigError("doit contenir m.room.message", path=["plaintext_refused_event_types"])

    return PatientRoomsConfig(
        marker_event_type=marker.strip(),
        allowed_join_rules=join_rules,
        plaintext_refused_event_types=plaintext,
    )


def _string_set(raw: Mapping[str, Any], key: str, default: frozenset[str]) -> frozenset[str]:
    if key not in raw:
        return default
    value = raw[key]
    if not isinstance(value, list | tuple) or not all(
        isinstance(item, str) and item for item in value
    ):
        raise ConfigError("doit être une liste de chaînes non vides", path=[key])
    return frozenset(value)
