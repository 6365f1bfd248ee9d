"""Cross-signing for the bot's own device (matrix-nio 0.26 has none).

At first start the bot creates its master, self-signing and user-signing ed25519 keys,
publishes them (``/keys/device_signing/upload``) and signs its own device with the
self-signing key (``/keys/signatures/upload``). Clients in "only signed devices" mode
(MSC4153) then trust the bot's device as "signed by its owner".

The private seeds are kept encrypted at rest (AES-256-GCM, key derived from the deployment
secret ``bot_cross_signing_key``, the user id bound as associated data) in a 0600 file and
reused at every start. Replacing published keys would show a warning to everyone who trusted
the bot, so a server holding a *different* master key is an error, never a silent reset.

Layout: a pure core (canonical JSON, signing, verification, sealing the key file, building
request bodies) and one async entry point, :func:`ensure_cross_signed`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nacl.exceptions
import nacl.signing
from canonicaljson import encode_canonical_json
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from deployment.conventions import write_private

if TYPE_CHECKING:
    import nio

logger = logging.getLogger(__name__)

KEY_FILE_VERSION = 1
_AAD_PREFIX = b"cercle/cross-signing/v1|"


class CrossSigningError(Exception):
    """Cross-signing cannot be set up; the message is French, for the operator."""


class KeyFileError(CrossSigningError):
    """The key file is unreadable: wrong secret, tampered with, or not ours."""


# --- pure core ---------------------------------------------------------------------------


def unpadded_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def decode_unpadded_b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def canonical_json(obj: dict[str, Any]) -> bytes:
    """The bytes that Matrix signs: canonical JSON without ``signatures`` and ``unsigned``."""
    stripped = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    return bytes(encode_canonical_json(stripped))


def sign_json(
    obj: dict[str, Any], signing_key: nacl.signing.SigningKey, user_id: str, key_id: str
) -> dict[str, Any]:
    """Return a copy of ``obj`` carrying one more signature ``user_id`` / ``ed25519:key_id``."""
    signature = signing_key.sign(canonical_json(obj)).signature
    signed: dict[str, Any] = json.loads(json.dumps(obj))
    signed.pop("unsigned", None)
    signed.setdefault("signatures", {}).setdefault(user_id, {})[f"ed25519:{key_id}"] = unpadded_b64(
        signature
    )
    return signed


def verify_signature(obj: dict[str, Any], user_id: str, key_id: str, public_key: str) -> bool:
    """True if ``obj`` carries a valid signature ``user_id`` / ``ed25519:key_id``."""
    try:
        signature = obj["signatures"][user_id][f"ed25519:{key_id}"]
        verify_key = nacl.signing.VerifyKey(decode_unpadded_b64(public_key))
        verify_key.verify(canonical_json(obj), decode_unpadded_b64(signature))
    except (KeyError, TypeError, ValueError, nacl.exceptions.BadSignatureError):
        return False
    return True


@dataclass(frozen=True)
class CrossSigningKeys:
    """The three private ed25519 keys of one account's cross-signing identity."""

    master: nacl.signing.SigningKey
    self_signing: nacl.signing.SigningKey
    user_signing: nacl.signing.SigningKey

    @classmethod
    def generate(cls) -> CrossSigningKeys:
        return cls(
            nacl.signing.SigningKey.generate(),
            nacl.signing.SigningKey.generate(),
            nacl.signing.SigningKey.generate(),
        )

    @staticmethod
    def public(key: nacl.signing.SigningKey) -> str:
        return unpadded_b64(bytes(key.verify_key))

    @property
    def master_public(self) -> str:
        return self.public(self.master)

    @property
    def self_signing_public(self) -> str:
        return self.public(self.self_signing)

    @property
    def user_signing_public(self) -> str:
        return self.public(self.user_signing)

    def seeds(self) -> dict[str, str]:
        return {
            "master": unpadded_b64(bytes(self.master)),
            "self_signing": unpadded_b64(bytes(self.self_signing)),
            "user_signing": unpadded_b64(bytes(self.user_signing)),
        }

    @classmethod
    def from_seeds(cls, seeds: dict[str, str]) -> CrossSigningKeys:
        return cls(
            *(
                nacl.signing.SigningKey(decode_unpadded_b64(seeds[name]))
                for name in ("master", "self_signing", "user_signing")
            )
        )


def _aes_key(encryption_key: str) -> bytes:
    if not encryption_key:
        raise KeyFileError("Clé de chiffrement des clés de signature croisée absente.")
    return hashlib.blake2b(
        encryption_key.encode("utf-8"), digest_size=32, person=b"cercle-xsign-v1"
    ).digest()


def seal_keys(keys: CrossSigningKeys, *, user_id: str, encryption_key: str) -> bytes:
    """Serialise ``keys`` encrypted with AES-256-GCM; the user id is authenticated data."""
    nonce = os.urandom(12)
    plaintext = json.dumps(keys.seeds(), sort_keys=True).encode("utf-8")
    ciphertext = AESGCM(_aes_key(encryption_key)).encrypt(
        nonce, plaintext, _AAD_PREFIX + user_id.encode("utf-8")
    )
    document = {
        "version": KEY_FILE_VERSION,
        "user_id": user_id,
        "master_public": keys.master_public,
        "nonce": unpadded_b64(nonce),
        "ciphertext": unpadded_b64(ciphertext),
    }
    return json.dumps(document, sort_keys=True, indent=2).encode("utf-8") + b"\n"


def open_keys(blob: bytes, *, user_id: str, encryption_key: str) -> CrossSigningKeys:
    """Inverse of :func:`seal_keys`; raises :class:`KeyFileError` on any tampering."""
    try:
        document = json.loads(blob)
        if document.get("version") != KEY_FILE_VERSION:
            raise KeyFileError("Version du fichier de clés de signature croisée inconnue.")
        if document.get("user_id") != user_id:
            raise KeyFileError(
                "Le fichier de clés de signature croisée appartient à un autre compte."
            )
        nonce = decode_unpadded_b64(document["nonce"])
        ciphertext = decode_unpadded_b64(document["ciphertext"])
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyFileError("Fichier de clés de signature croisée illisible.") from exc
    try:
        plaintext = AESGCM(_aes_key(encryption_key)).decrypt(
            nonce, ciphertext, _AAD_PREFIX + user_id.encode("utf-8")
        )
    except (InvalidTag, ValueError) as exc:
        raise KeyFileError(
            "Fichier de clés de signature croisée altéré ou clé de chiffrement incorrecte."
        ) from exc
    keys = CrossSigningKeys.from_seeds(json.loads(plaintext))
    if document.get("master_public") != keys.master_public:
        raise KeyFileError("Fichier de clés de signature croisée incohérent.")
    return keys


def load_or_create_keys(
    key_file: Path, *, user_id: str, encryption_key: str
) -> tuple[CrossSigningKeys, bool]:
    """Read the key file, or create it (mode 0600). Returns ``(keys, created)``."""
    if key_file.exists():
        os.chmod(key_file, 0o600)
        return open_keys(
            key_file.read_bytes(), user_id=user_id, encryption_key=encryption_key
        ), False
    keys = CrossSigningKeys.generate()
    blob = seal_keys(keys, user_id=user_id, encryption_key=encryption_key)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    write_private(key_file, blob)
    return keys, True


def cross_signing_key(
    user_id: str, usage: str, public: str, signer: nacl.signing.SigningKey | None = None
) -> dict[str, Any]:
    """A ``CrossSigningKey`` object, signed by the master key ``signer`` when given."""
    obj: dict[str, Any] = {
        "user_id": user_id,
        "usage": [usage],
        "keys": {f"ed25519:{public}": public},
    }
    if signer is not None:
        obj = sign_json(obj, signer, user_id, CrossSigningKeys.public(signer))
    return obj


def device_signing_upload_body(user_id: str, keys: CrossSigningKeys) -> dict[str, Any]:
    """Body of ``POST /keys/device_signing/upload``."""
    return {
        "master_key": cross_signing_key(user_id, "master", keys.master_public),
        "self_signing_key": cross_signing_key(
            user_id, "self_signing", keys.self_signing_public, keys.master
        ),
        "user_signing_key": cross_signing_key(
            user_id, "user_signing", keys.user_signing_public, keys.master
        ),
    }


def sign_device_keys(
    device_keys: dict[str, Any], user_id: str, keys: CrossSigningKeys
) -> dict[str, Any]:
    """The device keys exactly as the server stores them, with only the new signature."""
    stripped = {k: v for k, v in device_keys.items() if k not in ("signatures", "unsigned")}
    return sign_json(stripped, keys.self_signing, user_id, keys.self_signing_public)


def published_key(key_obj: dict[str, Any] | None) -> str | None:
    """The single ed25519 public key of a published cross-signing key object."""
    if not key_obj:
        return None
    values = [v for k, v in key_obj.get("keys", {}).items() if k.startswith("ed25519:")]
    return values[0] if len(values) == 1 else None


def device_is_signed(
    device_keys: dict[str, Any] | None, user_id: str, self_signing_public: str
) -> bool:
    return bool(device_keys) and verify_signature(
        device_keys or {}, user_id, self_signing_public, self_signing_public
    )


# --- talking to the homeserver -----------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What :func:`cross_sign` had to do (both False: everything was already in place)."""

    uploaded_keys: bool
    signed_device: bool
    created_key_file: bool


async def _api(
    client: Any, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {client.access_token}"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body)
    response = await client.send(method, path, data=data, headers=headers)
    async with response:
        try:
            payload = await response.json(content_type=None)
        except (ValueError, json.JSONDecodeError):
            payload = {}
        return response.status, payload if isinstance(payload, dict) else {}


async def own_keys_once(
    client: Any, shown: Callable[[dict[str, Any]], bool], tries: int = 20, pause: float = 0.25
) -> dict[str, Any]:
    """``query_own_keys`` again until ``shown`` holds, or ``tries`` answers later (the last
    answer): on Synapse's workers the upload is written by one process and ``/keys/query``
    answered by another, which sees it once replication has carried it (found on the region
    profile: a bot stopped at start, « signature … n'apparaît pas », restarted 2 s later)."""
    answer = await query_own_keys(client)
    for _ in range(tries - 1):
        if shown(answer):
            break
        await asyncio.sleep(pause)
        answer = await query_own_keys(client)
    return answer


async def query_own_keys(client: Any) -> dict[str, Any]:
    """``/keys/query`` for our own user: ``{master, self_signing, device}`` (None if absent)."""
    status, answer = await _api(
        client, "POST", "/_matrix/client/v3/keys/query", {"device_keys": {client.user_id: []}}
    )
    if status != 200:
        raise CrossSigningError(
            f"Lecture des clés du bot impossible (HTTP {status}, {answer.get('errcode')})."
        )
    uid = client.user_id
    return {
        "master": answer.get("master_keys", {}).get(uid),
        "self_signing": answer.get("self_signing_keys", {}).get(uid),
        "device": answer.get("device_keys", {}).get(uid, {}).get(client.device_id),
    }


async def _upload_cross_signing_keys(client: Any, body: dict[str, Any], password: str) -> None:
    path = "/_matrix/client/v3/keys/device_signing/upload"
    status, answer = await _api(client, "POST", path, body)
    if status == 401 and "flows" in answer:
        auth = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": client.user_id},
            "password": password,
            "session": answer.get("session"),
        }
        status, answer = await _api(client, "POST", path, {**body, "auth": auth})
    if status != 200:
        raise CrossSigningError(
            "Publication des clés de signature croisée du bot refusée "
            f"(HTTP {status}, {answer.get('errcode')})."
        )


async def _upload_device_signature(client: Any, signed_device: dict[str, Any]) -> None:
    body = {client.user_id: {client.device_id: signed_device}}
    status, answer = await _api(client, "POST", "/_matrix/client/v3/keys/signatures/upload", body)
    failures = answer.get("failures") or {}
    if status != 200 or failures:
        codes = sorted(
            {
                str(f.get("errcode"))
                for per_user in failures.values()
                for f in per_user.values()
                if isinstance(f, dict)
            }
        )
        raise CrossSigningError(
            "Signature de l'appareil du bot refusée par le serveur "
            f"(HTTP {status}, {', '.join(codes) or answer.get('errcode')})."
        )


async def cross_sign(client: Any, *, key_file: Path, encryption_key: str, password: str) -> Outcome:
    """Make the bot's device cross-signed; returns what had to be done."""
    user_id = client.user_id
    keys, created = load_or_create_keys(key_file, user_id=user_id, encryption_key=encryption_key)

    if getattr(client, "should_upload_keys", False):
        await client.keys_upload()  # the device must be known before it can be signed

    published = await query_own_keys(client)
    server_master = published_key(published["master"])
    uploaded = False
    if server_master is None:
        await _upload_cross_signing_keys(
            client, device_signing_upload_body(user_id, keys), password
        )
        uploaded = True
        logger.info("Clés de signature croisée du bot publiées (maître %s).", keys.master_public)
        published = await own_keys_once(client, lambda k: published_key(k["master"]) is not None)
    elif server_master != keys.master_public:
        message = (
            "Le serveur détient une autre clé maîtresse de signature croisée pour le bot "
            f"({server_master}) que celle du fichier {key_file} ({keys.master_public}). "
            "Refus de la remplacer silencieusement : les utilisateurs qui font confiance au bot "
            "verraient un avertissement. Restaurez le bon fichier de clés ou réinitialisez "
            "volontairement l'identité du bot."
        )
        logger.error(message)
        raise CrossSigningError(message)
    elif published_key(published["self_signing"]) != keys.self_signing_public:
        message = (
            "La clé d'auto-signature publiée pour le bot ne correspond pas au fichier de clés "
            f"{key_file} : refus de continuer."
        )
        logger.error(message)
        raise CrossSigningError(message)

    device = published["device"]
    if device is None:
        raise CrossSigningError(
            f"L'appareil {client.device_id} du bot n'est pas publié sur le serveur."
        )
    signed = False
    if not device_is_signed(device, user_id, keys.self_signing_public):
        await _upload_device_signature(client, sign_device_keys(device, user_id, keys))
        check = await own_keys_once(
            client, lambda k: device_is_signed(k["device"], user_id, keys.self_signing_public)
        )
        if not device_is_signed(check["device"], user_id, keys.self_signing_public):
            raise CrossSigningError(
                "La signature de l'appareil du bot n'apparaît pas sur le serveur."
            )
        signed = True
        device = check["device"]
        logger.info("Appareil %s du bot signé par sa clé d'auto-signature.", client.device_id)
    # Our device keys as /keys/query publishes them (cross-signature included): the
    # shared-history module puts them in every Olm payload as ``sender_device_keys``
    # (MSC4147) once installed on this client.
    client.cercle_own_device_keys = {k: v for k, v in device.items() if k != "unsigned"}
    return Outcome(uploaded_keys=uploaded, signed_device=signed, created_key_file=created)


async def ensure_cross_signed(
    client: nio.AsyncClient, *, key_file: Path, encryption_key: str, password: str
) -> None:
    """Idempotent start-up step: the bot's device ends up signed by its own identity.

    Raises :class:`CrossSigningError` (French message, also logged) when the server holds
    another identity for the bot, the key file is unreadable, or the server refuses.
    """
    await cross_sign(client, key_file=key_file, encryption_key=encryption_key, password=password)
