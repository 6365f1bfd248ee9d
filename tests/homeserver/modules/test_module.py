"""The module through Synapse's own entry points, with `Mock(spec=ModuleApi)`.

Events are real Synapse events (built by `make_event_from_dict`), so the
conversion from Synapse's objects to the pure rules is exercised too.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import AsyncMock, Mock

import pytest
from synapse.api.room_versions import RoomVersions
from synapse.module_api import NOT_SPAM, EventBase, ModuleApi
from synapse.module_api.errors import Codes, ConfigError, SynapseError

from homeserver.modules.patient_rooms import PatientRoomsConfig, PatientRoomsModule
from homeserver.modules.patient_rooms.config import MEGOLM
from tests.homeserver.modules.synapse_events import ALICE, ROOM, ev


def patient_room_state(*, encrypted: bool = True) -> dict[tuple[str, str], EventBase]:
    events = [
        ev("m.room.create", {"creator": ALICE}, ""),
        ev("m.room.member", {"membership": "join"}, ALICE),
        ev("m.room.join_rules", {"join_rule": "invite"}, ""),
        ev("m.room.history_visibility", {"history_visibility": "shared"}, ""),
        ev("fr.cercle.patient", {"id": "P-7Q2K"}, ""),
    ]
    if encrypted:
        events.append(ev("m.room.encryption", {"algorithm": MEGOLM}, ""))
    return {(e.type, e.get_state_key() or ""): e for e in events}


def load(raw: dict[str, Any] | None = None) -> tuple[PatientRoomsModule, Mock]:
    """What Synapse does: parse_config, then the constructor with the ModuleApi."""
    api = Mock(spec=ModuleApi)
    module = PatientRoomsModule(PatientRoomsModule.parse_config(raw or {}), api)
    return module, api


def registered(api: Mock) -> dict[str, Any]:
    callbacks: dict[str, Any] = {}
    for call in (
        api.register_third_party_rules_callbacks.call_args,
        api.register_spam_checker_callbacks.call_args,
    ):
        assert call is not None
        callbacks.update(call.kwargs)
    return callbacks


def test_constructor_registers_the_callbacks_and_nothing_else() -> None:
    _, api = load()
    callbacks = registered(api)
    assert set(callbacks) == {"check_event_allowed", "on_create_room", "user_may_publish_room"}
    assert [name for name, _, _ in api.mock_calls] == [
        "register_third_party_rules_callbacks",
        "register_spam_checker_callbacks",
    ]


async def test_check_event_allowed_refuses_removing_encryption() -> None:
    _, api = load()
    check = registered(api)["check_event_allowed"]
    allowed, replacement = await check(ev("m.room.encryption", {}, ""), patient_room_state())
    assert (allowed, replacement) == (False, None)


async def test_check_event_allowed_refuses_plaintext_message() -> None:
    _, api = load()
    check = registered(api)["check_event_allowed"]
    message = ev("m.room.message", {"msgtype": "m.text", "body": "tension 14/8"})
    assert await check(message, patient_room_state()) == (False, None)


async def test_check_event_allowed_lets_encrypted_messages_through() -> None:
    _, api = load()
    check = registered(api)["check_event_allowed"]
    encrypted = ev(
        "m.room.encrypted",
        {
            "algorithm": MEGOLM,
            "ciphertext": "AwgA",
            "session_id": "s",
            "sender_key": "k",
            "device_id": "D",
        },
    )
    assert await check(encrypted, patient_room_state()) == (True, None)


@pytest.mark.parametrize(
    ("event_type", "content"),
    [
        ("m.room.join_rules", {"join_rule": "public"}),
        ("m.room.join_rules", {"join_rule": "knock"}),
        ("m.room.history_visibility", {"history_visibility": "world_readable"}),
    ],
)
async def test_check_event_allowed_refuses_opening_a_patient_room(
    event_type: str, content: dict[str, Any]
) -> None:
    _, api = load()
    check = registered(api)["check_event_allowed"]
    assert await check(ev(event_type, content, ""), patient_room_state()) == (False, None)


async def test_check_event_allowed_refuses_redacting_the_encryption_event() -> None:
    _, api = load()
    check = registered(api)["check_event_allowed"]
    state = patient_room_state()
    target = state[("m.room.encryption", "")].event_id
    redaction = ev("m.room.redaction", {}, redacts=target)
    assert await check(redaction, state) == (False, None)


async def test_redaction_target_is_read_from_content_in_room_v11_and_later() -> None:
    _, api = load()
    check = registered(api)["check_event_allowed"]
    state = patient_room_state()
    target = state[("fr.cercle.patient", "")].event_id
    redaction = ev("m.room.redaction", {"redacts": target}, room_version=RoomVersions.V11)
    assert await check(redaction, state) == (False, None)


async def test_check_event_allowed_plaintext_allowed_in_ordinary_unencrypted_room() -> None:
    _, api = load()
    check = registered(api)["check_event_allowed"]
    state = {
        k: v for k, v in patient_room_state(encrypted=False).items() if k[0] != "fr.cercle.patient"
    }
    assert await check(ev("m.room.message", {"body": "x", "msgtype": "m.text"}), state) == (
        True,
        None,
    )


async def create_patient_room(preset: str) -> object:
    """What the module's ``on_create_room`` says of a patient room created with ``preset``."""
    _, api = load()
    on_create_room = registered(api)["on_create_room"]
    request = {
        "preset": preset,
        "initial_state": [{"type": "fr.cercle.patient", "state_key": "", "content": {"id": "P"}}],
    }
    return await on_create_room(Mock(), request, False)


async def test_on_create_room_refuses_a_public_patient_room() -> None:
    with pytest.raises(SynapseError) as raised:
        await create_patient_room("public_chat")
    assert raised.value.code == 403
    assert raised.value.errcode == Codes.FORBIDDEN


async def test_on_create_room_lets_a_private_patient_room_through() -> None:
    assert await create_patient_room("private_chat") is None


async def test_user_may_publish_room_reads_the_marker_from_the_room_state() -> None:
    _, api = load()
    state = patient_room_state()
    api.get_room_state = AsyncMock(
        return_value={("fr.cercle.patient", ""): state[("fr.cercle.patient", "")]}
    )
    publish = registered(api)["user_may_publish_room"]
    assert await publish(ALICE, ROOM) == Codes.FORBIDDEN
    api.get_room_state.assert_awaited_once_with(ROOM, [("fr.cercle.patient", None)])


async def test_user_may_publish_room_allows_ordinary_rooms() -> None:
    _, api = load()
    api.get_room_state = AsyncMock(return_value={})
    publish = registered(api)["user_may_publish_room"]
    assert await publish(ALICE, ROOM) is NOT_SPAM


async def test_configured_marker_type_is_used() -> None:
    _, api = load({"marker_event_type": "org.example.patient"})
    check = registered(api)["check_event_allowed"]
    # The Cercle marker means nothing under another configured type: ordinary encrypted room.
    assert await check(
        ev("m.room.join_rules", {"join_rule": "public"}, ""), patient_room_state()
    ) == (
        True,
        None,
    )


# --- parse_config -----------------------------------------------------------------------


def test_parse_config_defaults() -> None:
    assert PatientRoomsModule.parse_config({}) == PatientRoomsConfig()
    assert PatientRoomsModule.parse_config(None) == PatientRoomsConfig()


def test_parse_config_values() -> None:
    config = PatientRoomsModule.parse_config(
        {
            "marker_event_type": "org.example.patient",
            "allowed_join_rules": ["invite", "restricted"],
            "plaintext_refused_event_types": ["m.room.message"],
        }
    )
    assert config.marker_event_type == "org.example.patient"
    assert config.allowed_join_rules == frozenset({"invite", "restricted"})
    assert config.plaintext_refused_event_types == frozenset({"m.room.message"})


@pytest.mark.parametrize(
    ("raw", "bad_key"),
    [
        ({"marker": "x"}, "marker"),
        ({"marker_event_type": ""}, "marker_event_type"),
        ({"marker_event_type": 3}, "marker_event_type"),
        ({"allowed_join_rules": "invite"}, "allowed_join_rules"),
        ({"allowed_join_rules": []}, "allowed_join_rules"),
        ({"allowed_join_rules": ["invite", "public"]}, "allowed_join_rules"),
        ({"allowed_join_rules": ["knock"]}, "allowed_join_rules"),
        ({"allowed_join_rules": ["everyone"]}, "allowed_join_rules"),
        ({"plaintext_refused_event_types": ["m.sticker"]}, "plaintext_refused_event_types"),
        ({"plaintext_refused_event_types": [1]}, "plaintext_refused_event_types"),
    ],
)
def test_parse_config_points_at_the_bad_key(raw: dict[str, Any], bad_key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        PatientRoomsModule.parse_config(raw)
    assert raised.value.path == [bad_key]
    assert raised.value.msg


def test_parse_config_refuses_a_non_mapping() -> None:
    with pytest.raises(ConfigError):
        PatientRoomsModule.parse_config(["invite"])  # type: ignore[arg-type]
