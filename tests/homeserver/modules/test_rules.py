"""The patient-room policy as pure functions: no Synapse, no mocks."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.modules.patient_rooms import rules
from homeserver.modules.patient_rooms.config import MEGOLM, PatientRoomsConfig
from homeserver.modules.patient_rooms.rules import Event, StateEntry

CONFIG = PatientRoomsConfig()


def room(
    *,
    patient: bool = True,
    encrypted: bool = True,
    join_rule: str | None = "invite",
    history: str | None = "shared",
    algorithm: str = MEGOLM,
) -> dict[tuple[str, str], StateEntry]:
    state: dict[tuple[str, str], StateEntry] = {
        ("m.room.create", ""): StateEntry("$create", {"room_version": "11"}),
        ("m.room.member", "@alice:test"): StateEntry("$alice", {"membership": "join"}),
    }
    if patient:
        state[("fr.cercle.patient", "")] = StateEntry("$marker", {"id": "P-7Q2K"})
    if encrypted:
        state[("m.room.encryption", "")] = StateEntry("$enc", {"algorithm": algorithm})
    if join_rule is not None:
        state[("m.room.join_rules", "")] = StateEntry("$jr", {"join_rule": join_rule})
    if history is not None:
        state[("m.room.history_visibility", "")] = StateEntry(
            "$hv", {"history_visibility": history}
        )
    return state


def state_event(event_type: str, content: dict[str, Any], state_key: str = "") -> Event:
    return Event(type=event_type, state_key=state_key, content=content)


def message(event_type: str = "m.room.message", **content: Any) -> Event:
    return Event(type=event_type, state_key=None, content=content or {"msgtype": "m.text"})


def check(event: Event, state: dict[tuple[str, str], StateEntry]) -> str | None:
    refusal = rules.check_event(event, state, CONFIG)
    return refusal.rule if refusal else None


# --- what makes a patient room --------------------------------------------------------


def test_patient_room_is_a_room_with_the_marker_whatever_its_state_key() -> None:
    assert rules.is_patient_room(room(), CONFIG)
    assert not rules.is_patient_room(room(patient=False), CONFIG)
    other_key = room(patient=False) | {("fr.cercle.patient", "x"): StateEntry("$m", {})}
    assert rules.is_patient_room(other_key, CONFIG)


def test_a_redacted_marker_still_makes_a_patient_room() -> None:
    state = room(patient=False) | {("fr.cercle.patient", ""): StateEntry("$m", {})}
    assert rules.is_patient_room(state, CONFIG)


def test_marker_type_comes_from_config() -> None:
    config = PatientRoomsConfig(marker_event_type="org.example.patient")
    assert not rules.is_patient_room(room(), config)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"algorithm": MEGOLM}, MEGOLM),
        ({}, None),
        ({"algorithm": ""}, None),
        ({"algorithm": 3}, None),
    ],
)
def test_encryption_algorithm(content: dict[str, Any], expected: str | None) -> None:
    state = room(encrypted=False) | {("m.room.encryption", ""): StateEntry("$e", content)}
    assert rules.encryption_algorithm(state) == expected


# --- encryption stays -------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [{}, {"algorithm": ""}, {"algorithm": "m.olm.v1.curve25519-aes-sha2"}, {"algorithm": None}],
)
@pytest.mark.parametrize("patient", [True, False])
def test_encryption_cannot_be_removed_or_changed(content: dict[str, Any], patient: bool) -> None:
    assert (
        check(state_event("m.room.encryption", content), room(patient=patient))
        == "encryption_change"
    )


def test_encryption_same_algorithm_new_rotation_is_allowed() -> None:
    event = state_event("m.room.encryption", {"algorithm": MEGOLM, "rotation_period_ms": 3600000})
    assert check(event, room()) is None


def test_unencrypted_patient_room_can_only_get_megolm() -> None:
    state = room(encrypted=False)
    assert check(state_event("m.room.encryption", {"algorithm": MEGOLM}), state) is None
    assert (
        check(state_event("m.room.encryption", {"algorithm": "none"}), state)
        == "patient_room_encryption"
    )
    assert check(state_event("m.room.encryption", {}), state) == "patient_room_encryption"


def test_unencrypted_ordinary_room_is_not_policed_for_encryption() -> None:
    state = room(patient=False, encrypted=False)
    assert check(state_event("m.room.encryption", {"algorithm": "custom"}), state) is None


def test_encryption_event_with_other_state_key_is_not_the_room_encryption() -> None:
    assert check(state_event("m.room.encryption", {}, state_key="x"), room()) is None


# --- invite only ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "join_rule", ["public", "knock", "knock_restricted", "restricted", "", None]
)
def test_patient_room_join_rules_stay_invite(join_rule: str | None) -> None:
    event = state_event("m.room.join_rules", {"join_rule": join_rule})
    assert check(event, room()) == "patient_room_join_rules"


def test_patient_room_join_rules_invite_is_allowed() -> None:
    assert check(state_event("m.room.join_rules", {"join_rule": "invite"}), room()) is None


def test_allowed_join_rules_come_from_config() -> None:
    config = PatientRoomsConfig(allowed_join_rules=frozenset({"invite", "restricted"}))
    event = state_event("m.room.join_rules", {"join_rule": "restricted", "allow": []})
    assert rules.check_event(event, room(), config) is None


def test_ordinary_room_may_become_public() -> None:
    event = state_event("m.room.join_rules", {"join_rule": "public"})
    assert check(event, room(patient=False)) is None


# --- history visibility -----------------------------------------------------------------


def test_patient_room_history_never_world_readable() -> None:
    event = state_event("m.room.history_visibility", {"history_visibility": "world_readable"})
    assert check(event, room()) == "patient_room_history_visibility"
    assert check(event, room(patient=False)) is None


@pytest.mark.parametrize("visibility", ["shared", "invited", "joined"])
def test_patient_room_history_other_values_allowed(visibility: str) -> None:
    event = state_event("m.room.history_visibility", {"history_visibility": visibility})
    assert check(event, room()) is None


# --- plaintext in encrypted rooms -------------------------------------------------------


@pytest.mark.parametrize("patient", [True, False])
def test_plaintext_message_refused_in_every_encrypted_room(patient: bool) -> None:
    assert check(message(body="hello"), room(patient=patient)) == "plaintext_in_encrypted_room"


@pytest.mark.parametrize(
    "event_type", ["m.sticker", "m.poll.start", "org.matrix.msc3381.poll.start", "m.poll.response"]
)
def test_other_plaintext_message_like_events_refused(event_type: str) -> None:
    assert (
        check(message(event_type, body="x"), room(patient=False)) == "plaintext_in_encrypted_room"
    )


def test_plaintext_message_refused_in_patient_room_even_without_encryption() -> None:
    assert check(message(), room(encrypted=False)) == "plaintext_in_encrypted_room"


def test_plaintext_message_allowed_in_unencrypted_ordinary_room() -> None:
    assert check(message(), room(patient=False, encrypted=False)) is None


def test_encrypted_message_allowed() -> None:
    event = Event(
        "m.room.encrypted",
        None,
        {"algorithm": MEGOLM, "ciphertext": "AwgAEn…", "session_id": "s", "sender_key": "k"},
    )
    assert check(event, room()) is None


@pytest.mark.parametrize("event_type", ["m.reaction", "m.room.redaction", "m.call.invite"])
def test_events_plaintext_by_design_are_allowed(event_type: str) -> None:
    event = Event(event_type, None, {"m.relates_to": {"rel_type": "m.annotation", "key": "👍"}})
    assert check(event, room()) is None


def test_state_event_of_message_type_is_not_a_message() -> None:
    assert check(state_event("m.room.message", {"body": "x"}, state_key="k"), room()) is None


def test_plaintext_types_come_from_config() -> None:
    config = PatientRoomsConfig(plaintext_refused_event_types=frozenset({"m.room.message"}))
    assert rules.check_event(message("m.sticker"), room(), config) is None


# --- marking a room as a patient room ---------------------------------------------------


def test_marker_accepted_in_a_compliant_room() -> None:
    marker = state_event("fr.cercle.patient", {"id": "P-1"})
    assert check(marker, room(patient=False)) is None


def test_marker_accepted_before_default_encryption_at_creation() -> None:
    marker = state_event("fr.cercle.patient", {"id": "P-1"})
    assert check(marker, room(patient=False, encrypted=False)) is None


def test_marker_accepted_without_join_rules_yet() -> None:
    marker = state_event("fr.cercle.patient", {"id": "P-1"})
    assert check(marker, room(patient=False, join_rule=None, history=None)) is None


@pytest.mark.parametrize(
    ("state_kwargs", "rule"),
    [
        ({"join_rule": "public"}, "patient_marker_join_rules"),
        ({"join_rule": "knock"}, "patient_marker_join_rules"),
        ({"history": "world_readable"}, "patient_marker_history_visibility"),
        ({"algorithm": "org.example.weak"}, "patient_marker_encryption"),
    ],
)
def test_marker_refused_in_a_room_that_breaks_the_rules(
    state_kwargs: dict[str, Any], rule: str
) -> None:
    marker = state_event("fr.cercle.patient", {"id": "P-1"})
    assert check(marker, room(patient=False, **state_kwargs)) == rule


def test_marker_update_in_a_patient_room_is_allowed() -> None:
    assert check(state_event("fr.cercle.patient", {"id": "P-2"}), room()) is None


# --- redactions -------------------------------------------------------------------------


def redaction(target: str) -> Event:
    return Event("m.room.redaction", None, {}, redacts=target)


def test_redacting_the_encryption_event_is_refused_in_any_room() -> None:
    assert check(redaction("$enc"), room()) == "encryption_redaction"
    assert check(redaction("$enc"), room(patient=False)) == "encryption_redaction"


def test_redacting_the_marker_is_refused() -> None:
    assert check(redaction("$marker"), room()) == "patient_marker_redaction"


def test_redacting_a_message_is_allowed() -> None:
    assert check(redaction("$some-message"), room()) is None


# --- room directory ---------------------------------------------------------------------


def test_patient_room_never_published() -> None:
    refusal = rules.check_publication(room(), CONFIG)
    assert refusal is not None and refusal.rule == "patient_room_directory"
    assert rules.check_publication(room(patient=False), CONFIG) is None


# --- createRoom requests ----------------------------------------------------------------

MARKER = {"type": "fr.cercle.patient", "state_key": "", "content": {"id": "P-1"}}


def creation(rule_or_none: dict[str, Any]) -> str | None:
    refusal = rules.check_room_creation(rule_or_none, CONFIG)
    return refusal.rule if refusal else None


def test_creation_of_a_private_patient_room_is_allowed() -> None:
    assert creation({"preset": "private_chat", "initial_state": [MARKER]}) is None
    assert creation({"initial_state": [MARKER]}) is None
    assert creation({"preset": "trusted_private_chat", "initial_state": [MARKER]}) is None


def test_creation_with_explicit_compliant_state_is_allowed() -> None:
    request = {
        "preset": "private_chat",
        "initial_state": [
            {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}},
            {"type": "m.room.history_visibility", "content": {"history_visibility": "shared"}},
            MARKER,
        ],
    }
    assert creation(request) is None


@pytest.mark.parametrize(
    ("request_body", "rule"),
    [
        ({"visibility": "public", "preset": "private_chat"}, "patient_room_directory"),
        ({"preset": "public_chat"}, "patient_room_join_rules"),
        (
            {"initial_state": [{"type": "m.room.join_rules", "content": {"join_rule": "knock"}}]},
            "patient_room_join_rules",
        ),
        (
            {
                "initial_state": [
                    {
                        "type": "m.room.history_visibility",
                        "content": {"history_visibility": "world_readable"},
                    }
                ]
            },
            "patient_room_history_visibility",
        ),
        (
            {"initial_state": [{"type": "m.room.encryption", "state_key": "", "content": {}}]},
            "patient_room_encryption",
        ),
    ],
)
def test_creation_of_an_open_patient_room_is_refused(
    request_body: dict[str, Any], rule: str
) -> None:
    body = dict(request_body)
    body["initial_state"] = [*body.get("initial_state", []), MARKER]
    assert creation(body) == rule


def test_public_preset_with_invite_join_rules_in_initial_state_is_allowed() -> None:
    request = {
        "preset": "public_chat",
        "initial_state": [
            {"type": "m.room.join_rules", "content": {"join_rule": "invite"}},
            MARKER,
        ],
    }
    assert creation(request) is None


def test_creation_without_marker_is_not_policed() -> None:
    assert creation({"visibility": "public", "preset": "public_chat"}) is None
    assert creation({}) is None


@pytest.mark.parametrize("initial_state", ["garbage", {"a": 1}, [1, None, {"type": 3}], None])
def test_creation_with_malformed_initial_state_is_not_a_patient_room(initial_state: Any) -> None:
    assert creation({"initial_state": initial_state}) is None


def test_refusals_speak_french() -> None:
    refusal = rules.check_event(message(), room(), CONFIG)
    assert refusal is not None
    assert "chiffrée" in refusal.message
