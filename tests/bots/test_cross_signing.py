"""Pure tests of the cross-signing core: canonical JSON signing, the key file at rest."""

from __future__ import annotations

import json
import os
import stat

import nacl.signing
import pytest

from bots.matrix.cross_signing import (
    CrossSigningKeys,
    KeyFileError,
    canonical_json,
    decode_unpadded_b64,
    device_is_signed,
    device_signing_upload_body,
    load_or_create_keys,
    open_keys,
    seal_keys,
    sign_device_keys,
    sign_json,
    unpadded_b64,
    verify_signature,
)

# Test vector of the Matrix specification (appendix "Signing JSON").
SPEC_SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
USER = "@cercle-bot:cercle.test"


def spec_key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(decode_unpadded_b64(SPEC_SEED))


def test_signing_matches_the_specification_vectors() -> None:
    empty = sign_json({}, spec_key(), "domain", "1")
    assert empty["signatures"]["domain"]["ed25519:1"] == (
        "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
    )
    data = sign_json({"one": 1, "two": "Two"}, spec_key(), "domain", "1")
    assert data["signatures"]["domain"]["ed25519:1"] == (
        "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
    )


def test_canonical_json_sorts_strips_and_keeps_unicode() -> None:
    obj = {"b": 1, "a": "é", "signatures": {"x": {}}, "unsigned": {"age": 3}}
    assert canonical_json(obj) == '{"a":"é","b":1}'.encode()


def test_signature_ignores_unsigned_and_existing_signatures_and_detects_changes() -> None:
    key = nacl.signing.SigningKey.generate()
    public = unpadded_b64(bytes(key.verify_key))
    obj = {"keys": {"a": "b"}, "unsigned": {"device_display_name": "x"}}
    signed = sign_json(obj, key, USER, public)
    assert "unsigned" not in signed and "unsigned" in obj  # input untouched
    signed["unsigned"] = {"other": True}
    signed["signatures"]["@someone:else"] = {"ed25519:Z": "zz"}
    assert verify_signature(signed, USER, public, public)
    signed["keys"]["a"] = "c"
    assert not verify_signature(signed, USER, public, public)
    assert not verify_signature({"keys": {}}, USER, public, public)  # no signature at all


def test_upload_body_is_signed_by_the_master_key() -> None:
    keys = CrossSigningKeys.generate()
    body = device_signing_upload_body(USER, keys)
    assert body["master_key"] == {
        "user_id": USER,
        "usage": ["master"],
        "keys": {f"ed25519:{keys.master_public}": keys.master_public},
    }
    for name, usage, public in (
        ("self_signing_key", "self_signing", keys.self_signing_public),
        ("user_signing_key", "user_signing", keys.user_signing_public),
    ):
        assert body[name]["usage"] == [usage]
        assert body[name]["keys"] == {f"ed25519:{public}": public}
        assert verify_signature(body[name], USER, keys.master_public, keys.master_public)


def test_device_signature_by_the_self_signing_key() -> None:
    keys = CrossSigningKeys.generate()
    device = {
        "user_id": USER,
        "device_id": "BOTDEVICE",
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {"curve25519:BOTDEVICE": "c", "ed25519:BOTDEVICE": "e"},
        "signatures": {USER: {"ed25519:BOTDEVICE": "self"}},
        "unsigned": {"device_display_name": "Cercle"},
    }
    signed = sign_device_keys(device, USER, keys)
    assert set(signed["signatures"][USER]) == {f"ed25519:{keys.self_signing_public}"}
    assert "unsigned" not in signed
    # as the server returns it later: device self-signature and ours merged, unsigned back
    merged = dict(device)
    merged["signatures"] = {USER: {**device["signatures"][USER], **signed["signatures"][USER]}}
    assert device_is_signed(merged, USER, keys.self_signing_public)
    assert not device_is_signed(device, USER, keys.self_signing_public)
    assert not device_is_signed(None, USER, keys.self_signing_public)


def test_key_file_round_trip(tmp_path) -> None:
    keys = CrossSigningKeys.generate()
    blob = seal_keys(keys, user_id=USER, encryption_key="secret")
    for seed in keys.seeds().values():  # no private seed in clear in the file
        assert seed.encode() not in blob
    again = open_keys(blob, user_id=USER, encryption_key="secret")
    assert again.seeds() == keys.seeds()


@pytest.mark.parametrize(
    "mutation",
    ["ciphertext", "nonce", "master_public", "user_id", "version"],
)
def test_key_file_tampering_is_detected(mutation: str) -> None:
    keys = CrossSigningKeys.generate()
    document = json.loads(seal_keys(keys, user_id=USER, encryption_key="secret"))
    if mutation in ("ciphertext", "nonce"):
        raw = bytearray(decode_unpadded_b64(document[mutation]))
        raw[0] ^= 0x01
        document[mutation] = unpadded_b64(bytes(raw))
    elif mutation == "master_public":
        document[mutation] = CrossSigningKeys.generate().master_public
    elif mutation == "user_id":
        document[mutation] = "@intrus:cercle.test"
    else:
        document[mutation] = 99
    with pytest.raises(KeyFileError):
        open_keys(json.dumps(document).encode(), user_id=USER, encryption_key="secret")


def test_key_file_needs_the_right_secret_and_the_right_account() -> None:
    blob = seal_keys(CrossSigningKeys.generate(), user_id=USER, encryption_key="secret")
    with pytest.raises(KeyFileError):
        open_keys(blob, user_id=USER, encryption_key="autre secret")
    with pytest.raises(KeyFileError):
        open_keys(blob, user_id="@other:cercle.test", encryption_key="secret")
    with pytest.raises(KeyFileError):
        open_keys(b"not json", user_id=USER, encryption_key="secret")


def test_load_or_create_writes_once_with_mode_0600(tmp_path) -> None:
    path = tmp_path / "bot" / "cross_signing.json"
    keys, created = load_or_create_keys(path, user_id=USER, encryption_key="s")
    assert created
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again, created_again = load_or_create_keys(path, user_id=USER, encryption_key="s")
    assert not created_again
    assert again.seeds() == keys.seeds()
    with pytest.raises(KeyFileError):
        load_or_create_keys(path, user_id=USER, encryption_key="wrong")
