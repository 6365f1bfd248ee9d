"""Pure tests of shared history: two real nio Olm machines (in-memory stores), no server.

The receiver decrypts the actual Olm to-device payload the patched sender produced, so the
flag and ``sender_device_keys`` are checked where a client would see them.
"""

from __future__ import annotations

import hashlib
import inspect
import json

import pytest
from nio.crypto import Olm
from nio.crypto.device import OlmDevice
from nio.crypto.sessions import InboundGroupSession
from nio.events import OlmEvent
from nio.store import SqliteMemoryStore

from bots.matrix.cross_signing import (
    CrossSigningKeys,
    device_signing_upload_body,
    sign_device_keys,
)
from bots.matrix.history import SHARED_HISTORY_FIELD, SessionLedger, SharedHistory
from bots.matrix.history_bundles import (
    HISTORY_NOT_SHARED,
    build_bundle,
    cross_signed_device_ids,
    room_sessions,
)

ROOM = "!patient:cercle.test"
BOT = "@cercle-bot:cercle.test"
PRO = "@infirmiere:cercle.test"

# sha256 of nio 0.26's Olm._olm_encrypt, which SharedHistory.olm_encrypt re-implements.
NIO_OLM_ENCRYPT_SHA256 = "d39136aa04e40d446bb5d1538e3945436e36517ea3828f9b6b7de0968cea1db7"


def machine(user_id: str, device_id: str) -> Olm:
    return Olm(user_id, device_id, SqliteMemoryStore(user_id, device_id, "test"))


def device_of(olm: Olm) -> OlmDevice:
    keys = olm.account.identity_keys
    return OlmDevice(
        olm.user_id,
        olm.device_id,
        {"ed25519": keys["ed25519"], "curve25519": keys["curve25519"]},
    )


def connect(sender: Olm, receiver: Olm) -> None:
    """Give ``sender`` an outbound Olm session to ``receiver`` (as after a /keys/claim)."""
    receiver.account.generate_one_time_keys(1)
    otk = next(iter(receiver.account.one_time_keys["curve25519"].values()))
    receiver.account.mark_keys_as_published()
    device = device_of(receiver)
    sender.device_store.add(device)
    sender.store.save_device_keys({device.user_id: {device.device_id: device}})
    sender.create_session(otk, device.curve25519)


def deliver(sender: Olm, receiver: Olm, to_device: dict) -> list[dict]:
    """Decrypt on ``receiver`` what ``sender`` sent; return the Olm plaintext payloads."""
    seen: list[dict] = []
    original = receiver._handle_olm_event

    def spy(sender_id, sender_key, payload):
        seen.append(payload)
        return original(sender_id, sender_key, payload)

    receiver._handle_olm_event = spy  # type: ignore[method-assign]
    receiver.device_store.add(device_of(sender))
    for olm_dict in to_device["messages"][receiver.user_id].values():
        event = OlmEvent.from_dict(
            {"sender": sender.user_id, "type": "m.room.encrypted", "content": olm_dict}
        )
        receiver.decrypt_event(event)
    return seen


@pytest.fixture
def pair():
    bot, pro = machine(BOT, "BOTDEV"), machine(PRO, "PRODEV")
    connect(bot, pro)
    return bot, pro


def patched(bot: Olm, visibility: dict[str, str], tmp_path) -> SharedHistory:
    ledger = SessionLedger(tmp_path / "ledger.db")
    return SharedHistory(bot, visibility.get, ledger).install()


def share(bot: Olm) -> dict:
    _, to_device = bot.share_group_session(ROOM, [PRO], ignore_unverified_devices=True)
    bot.outbound_group_sessions[ROOM].mark_as_shared()
    return to_device


def test_nio_olm_encrypt_is_the_one_we_reimplement() -> None:
    source = inspect.getsource(Olm._olm_encrypt)
    digest = hashlib.sha256(source.encode()).hexdigest()
    assert digest == NIO_OLM_ENCRYPT_SHA256, (
        "nio a changé Olm._olm_encrypt : revoir SharedHistory.olm_encrypt"
    )


@pytest.mark.parametrize("visibility", ["shared", "world_readable"])
def test_room_key_carries_exactly_one_shared_history_flag(pair, tmp_path, visibility) -> None:
    bot, pro = pair
    patched(bot, {ROOM: visibility}, tmp_path)
    (payload,) = deliver(bot, pro, share(bot))
    assert payload["type"] == "m.room_key"
    content = payload["content"]
    assert content[SHARED_HISTORY_FIELD] is True
    assert "m.shared_history" not in content and "shared_history" not in content
    # the receiver got a working key: nio created the inbound session from it
    assert pro.inbound_group_store.get(
        ROOM, bot.account.identity_keys["curve25519"], content["session_id"]
    )


@pytest.mark.parametrize("visibility", ["joined", "invited", None])
def test_no_flag_when_history_is_not_shared(pair, tmp_path, visibility) -> None:
    bot, pro = pair
    patched(bot, {ROOM: visibility} if visibility else {}, tmp_path)
    (payload,) = deliver(bot, pro, share(bot))
    assert not any("shared_history" in key for key in payload["content"])


def test_payload_is_nio_payload_plus_sender_device_keys(pair, tmp_path) -> None:
    bot, pro = pair
    state = patched(bot, {ROOM: "shared"}, tmp_path)
    device_keys = {"user_id": BOT, "device_id": "BOTDEV", "keys": {}, "signatures": {}}
    state.sender_device_keys = device_keys
    (payload,) = deliver(bot, pro, share(bot))
    assert payload["sender_device_keys"] == device_keys
    assert payload["sender"] == BOT and payload["sender_device"] == "BOTDEV"
    assert payload["recipient"] == PRO
    assert payload["recipient_keys"] == {"ed25519": pro.account.identity_keys["ed25519"]}
    assert payload["keys"] == {"ed25519": bot.account.identity_keys["ed25519"]}


def test_visibility_change_rotates_the_outgoing_session(pair, tmp_path) -> None:
    bot, pro = pair
    visibility = {ROOM: "shared"}
    state = patched(bot, visibility, tmp_path)
    (first,) = deliver(bot, pro, share(bot))
    assert state.on_visibility_change(ROOM, "shared") is False  # no change, no rotation
    visibility[ROOM] = "joined"
    assert state.on_visibility_change(ROOM, "joined") is True
    (second,) = deliver(bot, pro, share(bot))
    assert second["content"]["session_id"] != first["content"]["session_id"]
    assert SHARED_HISTORY_FIELD not in second["content"]
    assert state.ledger.get(first["content"]["session_id"]) is True
    assert state.ledger.get(second["content"]["session_id"]) is False


def test_flag_decided_once_per_session(pair, tmp_path) -> None:
    """A later recipient of the same session gets the same flag, whatever happened since."""
    bot, _pro = pair
    visibility = {ROOM: "shared"}
    state = patched(bot, visibility, tmp_path)
    session = bot.outbound_group_sessions.get(ROOM)
    assert session is None
    bot.create_outbound_group_session(ROOM)
    session_id = bot.outbound_group_sessions[ROOM].id
    content = {"algorithm": "m.megolm.v1.aes-sha2", "room_id": ROOM, "session_id": session_id}
    assert state.room_key_content(content)[SHARED_HISTORY_FIELD] is True
    visibility[ROOM] = "joined"
    assert state.room_key_content(content)[SHARED_HISTORY_FIELD] is True


def test_ledger_survives_a_restart(tmp_path) -> None:
    path = tmp_path / "l.db"
    SessionLedger(path).record("S1", ROOM, True)
    SessionLedger(path).record("S2", ROOM, False)
    again = SessionLedger(path)
    assert (again.get("S1"), again.get("S2"), again.get("S3")) == (True, False, None)
    assert (path.stat().st_mode & 0o777) == 0o600


def test_bundle_exports_flagged_sessions_and_withholds_the_rest(pair, tmp_path) -> None:
    bot, pro = pair
    visibility = {ROOM: "shared"}
    state = patched(bot, visibility, tmp_path)
    share(bot)
    flagged = bot.outbound_group_sessions[ROOM]
    ciphertext = flagged.encrypt(json.dumps({"type": "m.room.message", "content": {"body": "x"}}))
    visibility[ROOM] = "joined"
    state.on_visibility_change(ROOM, "joined")
    share(bot)
    unflagged_id = bot.outbound_group_sessions[ROOM].id

    # sessions received from another member: one announced as shareable, one not
    connect(pro, bot)
    pro_visibility = {ROOM: "shared"}
    pro_state = SharedHistory(pro, pro_visibility.get, SessionLedger(None)).install()
    pro.create_outbound_group_session(ROOM)
    _, to_bot = pro.share_group_session(ROOM, [BOT], ignore_unverified_devices=True)
    deliver(pro, bot, to_bot)
    foreign_flagged_id = pro.outbound_group_sessions[ROOM].id
    pro_visibility[ROOM] = "joined"
    assert pro_state.on_visibility_change(ROOM, "joined")
    _, to_bot = pro.share_group_session(ROOM, [BOT], ignore_unverified_devices=True)
    deliver(pro, bot, to_bot)
    foreign_unflagged_id = pro.outbound_group_sessions[ROOM].id

    sessions = room_sessions(bot, ROOM)
    assert len(sessions) == 4
    bundle = build_bundle(sessions, room_id=ROOM, own_device_id="BOTDEV", ledger=state.ledger)
    assert set(bundle) == {"room_keys", "withheld"}
    keys = {k["session_id"]: k for k in bundle["room_keys"]}
    assert set(keys) == {flagged.id, foreign_flagged_id}
    key = keys[flagged.id]
    assert key["session_key"].startswith("AQAA")  # export format, not the AgAA room-key one
    assert key["sender_claimed_keys"] == {"ed25519": bot.account.identity_keys["ed25519"]}
    assert key["sender_key"] == bot.account.identity_keys["curve25519"]
    assert key["algorithm"] == "m.megolm.v1.aes-sha2" and key["room_id"] == ROOM
    foreign = keys[foreign_flagged_id]
    assert foreign["sender_key"] == pro.account.identity_keys["curve25519"]
    assert foreign["sender_claimed_keys"] == {"ed25519": pro.account.identity_keys["ed25519"]}
    # the exported key really decrypts what the bot sent
    imported = InboundGroupSession.import_session(
        key["session_key"], key["sender_claimed_keys"]["ed25519"], key["sender_key"], ROOM
    )
    plaintext, _ = imported.decrypt(ciphertext)
    assert json.loads(plaintext)["content"]["body"] == "x"

    withheld = {w["session_id"]: w for w in bundle["withheld"]}
    assert set(withheld) == {unflagged_id, foreign_unflagged_id}
    for entry in withheld.values():
        assert entry["code"] == HISTORY_NOT_SHARED
        assert entry["room_id"] == ROOM and entry["algorithm"] == "m.megolm.v1.aes-sha2"
        assert entry["sender_key"]
    # another room's sessions never leak into this room's bundle
    assert build_bundle(
        sessions, room_id="!autre:cercle.test", own_device_id="D", ledger=state.ledger
    ) == {"room_keys": [], "withheld": []}


def test_only_cross_signed_devices_receive_a_bundle() -> None:
    keys = CrossSigningKeys.generate()
    body = device_signing_upload_body(PRO, keys)

    def device(device_id: str) -> dict:
        return {"user_id": PRO, "device_id": device_id, "keys": {f"ed25519:{device_id}": "e"}}

    answer = {
        "master_keys": {PRO: body["master_key"]},
        "self_signing_keys": {PRO: body["self_signing_key"]},
        "device_keys": {
            PRO: {
                "SIGNED": sign_device_keys(device("SIGNED"), PRO, keys),
                "UNSIGNED": device("UNSIGNED"),
            }
        },
    }
    assert cross_signed_device_ids(answer, PRO) == ["SIGNED"]
    # a self-signing key not signed by the master key makes every device untrusted
    forged = dict(answer, self_signing_keys={PRO: {**body["self_signing_key"], "signatures": {}}})
    assert cross_signed_device_ids(forged, PRO) == []
    assert cross_signed_device_ids({"device_keys": answer["device_keys"]}, PRO) == []
