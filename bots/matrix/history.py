"""Shared history for members invited later: MSC3061 flag and MSC4268 room-key bundles.

matrix-nio 0.26 neither marks the Megolm keys it sends as shareable nor knows key bundles.
This module adds both at **one seam**: the Olm machine's ``_olm_encrypt(session, device,
message_type, content)``, through which nio sends every Olm-encrypted to-device message
(``share_group_session``, ``share_group_session_parallel``, key forwards, dummies). The
replacement, installed on the client's ``Olm`` instance by :func:`install_shared_history`:

* adds exactly one flag, ``org.matrix.msc3061.shared_history: true``, to ``m.room_key``
  content when the room's ``history_visibility`` is ``shared`` or ``world_readable`` (never
  the stable ``m.shared_history`` as well: Rust crypto rejects a key carrying both names as a
  "duplicate field"). The decision is taken once per Megolm session, recorded in a small
  ledger next to nio's store, and reused for every later recipient of that session;
* adds ``sender_device_keys`` (MSC4147: our device keys as ``/keys/query`` returns them,
  cross-signing signature included) to the Olm plaintext once they are known — Rust crypto
  drops a key bundle without them;
* otherwise builds exactly the payload nio builds (see ``nio/crypto/olm_machine.py``; a unit
  test pins the source of the original so a nio upgrade is noticed).

A second, read-only wrap of ``Olm._handle_room_key_event`` records the flag of the keys the
bot *receives* (nio accepts the key but drops the flag), so a bundle can also pass on the
other members' sessions that their creators marked as shareable.

When a room's history visibility changes, the outgoing Megolm session is rotated so that the
next messages are encrypted with a session whose flag matches the new visibility.

:func:`share_history_bundle` then implements MSC4268: it exports the room's Megolm sessions
(export format, ``AQAA…``), puts the ones flagged as shareable in ``room_keys`` and the
others in ``withheld`` (code ``m.history_not_shared``), encrypts the JSON blob as an
attachment, uploads it and sends ``io.element.msc4268.room_key_bundle`` Olm-encrypted to every
cross-signed device of the invitee. The bot must send the invite itself, *after* the bundle
(the receiver only accepts a bundle from the user who invited it).
"""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nio import RoomHistoryVisibilityEvent, ToDeviceError, ToDeviceMessage, UploadResponse
from nio.api import Api
from nio.crypto.attachments import encrypt_attachment
from unpaddedbase64 import encode_base64

from bots.matrix.cross_signing import published_key, verify_signature

if TYPE_CHECKING:
    import nio

logger = logging.getLogger(__name__)

SHARED_HISTORY_FIELD = "org.matrix.msc3061.shared_history"
SHAREABLE_VISIBILITIES = frozenset({"shared", "world_readable"})
MEGOLM = "m.megolm.v1.aes-sha2"
# matrix-sdk-crypto-wasm 18.9 (matrix-js-sdk 43) accepts both this unstable name and the
# stable ``m.room_key_bundle`` (both checked by tests/interop); older Rust crypto releases only
# match the unstable one, so that is what we send.
BUNDLE_EVENT_TYPE = "io.element.msc4268.room_key_bundle"
HISTORY_NOT_SHARED = "m.history_not_shared"
HISTORY_NOT_SHARED_REASON = "The sender disabled sharing encrypted history."


def history_is_shareable(visibility: str | None) -> bool:
    return visibility in SHAREABLE_VISIBILITIES


# --- the ledger of shareable sessions --------------------------------------------------


class SessionLedger:
    """``session_id -> (room_id, shared_history)`` for Megolm sessions the bot knows about.

    Holds the flag we announced for the sessions we created, and the flag announced to us
    for the sessions we received (nio drops it). SQLite (a file next to nio's store, 0600),
    so a bundle built after a restart still knows what may be shared; ``None`` = in memory.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(":memory:" if path is None else str(path))
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS megolm_sessions ("
            " session_id TEXT PRIMARY KEY, room_id TEXT NOT NULL,"
            " shared_history INTEGER NOT NULL)"
        )
        self._db.commit()

    def get(self, session_id: str) -> bool | None:
        row = self._db.execute(
            "SELECT shared_history FROM megolm_sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        return None if row is None else bool(row[0])

    def shareable(self, session_id: str, room_id: str) -> bool:
        row = self._db.execute(
            "SELECT shared_history FROM megolm_sessions WHERE session_id = ? AND room_id = ?",
            (session_id, room_id),
        ).fetchone()
        return bool(row and row[0])

    def record(self, session_id: str, room_id: str, shared: bool) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO megolm_sessions (session_id, room_id, shared_history)"
                " VALUES (?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET"
                " room_id = excluded.room_id, shared_history = excluded.shared_history",
                (session_id, room_id, int(shared)),
            )

    def close(self) -> None:
        self._db.close()


# --- the seam: Olm plaintext payloads -------------------------------------------------------


@dataclass
class SharedHistory:
    """State of the patched Olm machine (one per client)."""

    olm: Any
    visibility_of: Callable[[str], str | None]
    ledger: SessionLedger
    sender_device_keys: dict[str, Any] | None = None
    original_olm_encrypt: Callable[..., dict[str, Any]] | None = field(default=None, repr=False)
    original_handle_room_key: Callable[..., Any] | None = field(default=None, repr=False)

    def room_key_content(self, content: dict[str, Any]) -> dict[str, Any]:
        """The ``m.room_key`` content with the shared-history flag decided for its session."""
        room_id, session_id = content["room_id"], content["session_id"]
        shared = self.ledger.get(session_id)
        if shared is None:
            shared = history_is_shareable(self.visibility_of(room_id))
            self.ledger.record(session_id, room_id, shared)
        out = {
            k: v for k, v in content.items() if k not in (SHARED_HISTORY_FIELD, "m.shared_history")
        }
        if shared:
            out[SHARED_HISTORY_FIELD] = True
        return out

    def olm_encrypt(
        self, session: Any, recipient_device: Any, message_type: str, content: dict[str, Any]
    ) -> dict[str, Any]:
        """Replacement of ``Olm._olm_encrypt`` (same payload + flag + sender_device_keys)."""
        olm = self.olm
        if message_type == "m.room_key" and content.get("algorithm") == MEGOLM:
            content = self.room_key_content(content)
        payload: dict[str, Any] = {
            "sender": olm.user_id,
            "sender_device": olm.device_id,
            "keys": {"ed25519": olm.account.identity_keys["ed25519"]},
            "recipient": recipient_device.user_id,
            "recipient_keys": {"ed25519": recipient_device.ed25519},
            "type": message_type,
            "content": content,
        }
        if self.sender_device_keys is not None:
            payload["sender_device_keys"] = self.sender_device_keys
        olm_message = session.encrypt(Api.to_json(payload))
        olm.store.save_session(recipient_device.curve25519, session)
        wire_type, ciphertext = olm_message.to_parts()
        return {
            "algorithm": olm._olm_algorithm,
            "sender_key": olm.account.identity_keys["curve25519"],
            "ciphertext": {
                recipient_device.curve25519: {"type": wire_type, "body": encode_base64(ciphertext)}
            },
        }

    def handle_room_key_event(self, sender: str, sender_key: str, payload: dict[str, Any]) -> Any:
        """Wrapper of ``Olm._handle_room_key_event``: remember the flag nio drops.

        Only for a key nio actually accepted (its inbound session now exists), so that the
        bundle can pass on other members' shareable sessions, as Element does.
        """
        assert self.original_handle_room_key is not None
        event = self.original_handle_room_key(sender, sender_key, payload)
        content = payload.get("content") or {}
        flagged = (
            content.get(SHARED_HISTORY_FIELD) is True or content.get("m.shared_history") is True
        )
        room_id, session_id = content.get("room_id"), content.get("session_id")
        if (
            isinstance(room_id, str)
            and isinstance(session_id, str)
            and self.olm.inbound_group_store.get(room_id, sender_key, session_id) is not None
            and self.ledger.get(session_id) is None
        ):
            self.ledger.record(session_id, room_id, flagged)
        return event

    def install(self) -> SharedHistory:
        if self.original_olm_encrypt is None:
            self.original_olm_encrypt = self.olm._olm_encrypt
            self.olm._olm_encrypt = self.olm_encrypt
        if self.original_handle_room_key is None:
            self.original_handle_room_key = self.olm._handle_room_key_event
            self.olm._handle_room_key_event = self.handle_room_key_event
        return self

    def settle_current_session(self, room_id: str) -> None:
        """Decide the flag of the room's current outgoing session if nobody received it yet.

        A session whose key was never sent (the bot alone in the room) is unknown to the
        ledger; deciding now, from the current visibility, stays consistent: every later
        recipient gets the same flag, and a visibility change rotates the session.
        """
        session = self.olm.outbound_group_sessions.get(room_id)
        if session is not None and self.ledger.get(session.id) is None:
            self.ledger.record(
                session.id, room_id, history_is_shareable(self.visibility_of(room_id))
            )

    def on_visibility_change(self, room_id: str, visibility: str) -> bool:
        """Rotate the outgoing session if its flag no longer matches. True if rotated."""
        session = self.olm.outbound_group_sessions.get(room_id)
        if session is None:
            return False
        recorded = self.ledger.get(session.id)
        if recorded is None or recorded != history_is_shareable(visibility):
            self.olm.rotate_outbound_group_session(room_id)
            logger.info("Session Megolm sortante renouvelée (visibilité de l'historique changée).")
            return True
        return False


def ledger_path_for(client: Any) -> Path | None:
    if not getattr(client, "store_path", None):
        return None
    return Path(client.store_path) / f"{client.user_id}_{client.device_id}.shared_history.db"


def install_shared_history(client: nio.AsyncClient) -> SharedHistory:
    """Patch the client's Olm machine (call after login / ``restore_login``). Idempotent."""
    existing: SharedHistory | None = getattr(client, "cercle_shared_history", None)
    if existing is not None and existing.olm is client.olm:
        return existing
    if client.olm is None:
        raise RuntimeError("install_shared_history : le chiffrement du client n'est pas chargé")

    def visibility_of(room_id: str) -> str | None:
        room = client.rooms.get(room_id)
        return None if room is None else room.history_visibility

    state = SharedHistory(client.olm, visibility_of, SessionLedger(ledger_path_for(client)))
    # published by ensure_cross_signed (bots.matrix.cross_signing) when it ran first
    state.sender_device_keys = getattr(client, "cercle_own_device_keys", None)
    state.install()

    async def on_visibility(room: Any, event: RoomHistoryVisibilityEvent) -> None:
        state.on_visibility_change(room.room_id, event.history_visibility)

    client.add_event_callback(on_visibility, RoomHistoryVisibilityEvent)
    client.cercle_shared_history = state
    return state


# --- MSC4268 key bundles ----------------------------------------------------------------


def build_bundle(
    sessions: list[Any],
    *,
    room_id: str,
    own_device_id: str,
    ledger: SessionLedger,
) -> dict[str, Any]:
    """The bundle blob ``{"room_keys": [...], "withheld": [...]}`` for ``room_id``.

    Sessions recorded as shareable in the ledger (ours, and received ones whose creator set
    the flag) are exported; every other session is listed as withheld.
    """
    room_keys: list[dict[str, Any]] = []
    withheld: list[dict[str, Any]] = []
    for session in sessions:
        if session.room_id != room_id:
            continue
        if ledger.shareable(session.id, room_id):
            room_keys.append(
                {
                    "algorithm": MEGOLM,
                    "room_id": room_id,
                    "sender_key": session.sender_key,
                    "session_id": session.id,
                    "session_key": session.export_session(session.first_known_index),
                    "sender_claimed_keys": {"ed25519": session.ed25519},
                }
            )
        else:
            withheld.append(
                {
                    "algorithm": MEGOLM,
                    "code": HISTORY_NOT_SHARED,
                    "reason": HISTORY_NOT_SHARED_REASON,
                    "room_id": room_id,
                    "session_id": session.id,
                    "sender_key": session.sender_key,
                    "from_device": own_device_id,
                }
            )
    return {"room_keys": room_keys, "withheld": withheld}


def room_sessions(olm: Any, room_id: str) -> list[Any]:
    """All inbound Megolm sessions nio holds for ``room_id`` (ours included)."""
    by_sender = olm.inbound_group_store[room_id]
    return [session for sessions in by_sender.values() for session in sessions.values()]


async def _keys_query(client: Any, user_id: str) -> dict[str, Any]:
    from bots.matrix.cross_signing import _api

    status, answer = await _api(
        client, "POST", "/_matrix/client/v3/keys/query", {"device_keys": {user_id: []}}
    )
    if status != 200:
        raise RuntimeError(f"keys/query HTTP {status}")
    return answer


def cross_signed_device_ids(answer: dict[str, Any], user_id: str) -> list[str]:
    """Devices of ``user_id`` signed by its self-signing key (itself signed by its master)."""
    master = answer.get("master_keys", {}).get(user_id)
    ssk_obj = answer.get("self_signing_keys", {}).get(user_id)
    master_pub, ssk = published_key(master), published_key(ssk_obj)
    if not master_pub or not ssk or not ssk_obj:
        return []
    if not verify_signature(ssk_obj, user_id, master_pub, master_pub):
        return []
    devices = answer.get("device_keys", {}).get(user_id, {})
    return sorted(
        device_id
        for device_id, keys in devices.items()
        if verify_signature(keys, user_id, ssk, ssk)
    )


async def capable_devices(client: Any, user_id: str) -> list[str]:
    """The devices of ``user_id`` that can take room keys from Element's crypto (cross-signed
    by their owner, MSC4153), as the server publishes them now."""
    return cross_signed_device_ids(await _keys_query(client, user_id), user_id)


async def device_ids(client: Any, user_id: str) -> list[str]:
    """Every device of ``user_id`` with published keys, cross-signed or not."""
    answer = await _keys_query(client, user_id)
    return sorted(answer.get("device_keys", {}).get(user_id, {}))


async def refresh_sender_device_keys(client: Any, state: SharedHistory) -> None:
    """Fetch our own device keys as the server publishes them (with cross-signatures)."""
    answer = await _keys_query(client, client.user_id)
    keys = answer.get("device_keys", {}).get(client.user_id, {}).get(client.device_id)
    if keys:
        keys = dict(keys)
        keys.pop("unsigned", None)
        state.sender_device_keys = keys


async def _hand_over_fresh_session(
    client: Any, room_id: str, user_id: str, devices: list[tuple[Any, Any]]
) -> None:
    """Rotate our outgoing session and give the new one to the invitee's devices now.

    The bundle carried our current session as *forwarded* (from index 0): if we kept using
    it, Rust crypto would keep that copy and show our next messages with an "authenticity
    not guaranteed" shield. The fresh session is sent directly (Olm, authenticated) before
    the invite, so our next message decrypts cleanly even if it is sent before our sync has
    seen the invite (nio only shares with the members it knows).
    """
    olm = client.olm
    olm.rotate_outbound_group_session(room_id)
    session = olm.outbound_group_sessions[room_id]
    key_content = {
        "algorithm": MEGOLM,
        "room_id": room_id,
        "session_id": session.id,
        "session_key": session.session_key,
    }
    for device, olm_session in devices:
        olm_dict = olm._olm_encrypt(olm_session, device, "m.room_key", key_content)
        response = await client.to_device(
            ToDeviceMessage("m.room.encrypted", user_id, device.id, olm_dict)
        )
        if not isinstance(response, ToDeviceError):
            session.users_shared_with.add((user_id, device.id))


async def share_history_bundle(
    client: nio.AsyncClient,
    room_id: str,
    invitee_user_id: str,
    *,
    already: frozenset[str] | set[str] = frozenset(),
) -> list[str]:
    """Send the room's shareable keys to the invitee (MSC4268). Send the invite afterwards.

    The bundle goes to each of the invitee's cross-signed devices not in ``already`` (the
    devices served by an earlier call: at the invitation, at the join, when a device appears
    or gets cross-signed later, see :mod:`bots.dossier_link.arrivals`). Returns the ids of the
    devices it reached; empty, sending nothing, when no new device can take keys (the caller
    then waits for one, or falls back to a PDF transcript).
    """
    state = install_shared_history(client)
    answer = await _keys_query(client, invitee_user_id)
    targets = [d for d in cross_signed_device_ids(answer, invitee_user_id) if d not in already]
    if not targets:
        logger.info("Aucun nouvel appareil à signature croisée chez l'invité : pas de lot.")
        return []
    await refresh_sender_device_keys(client, state)
    if state.sender_device_keys is None:
        logger.warning("Clés de l'appareil du bot introuvables : pas de lot de clés.")
        return []

    # Olm sessions with the invitee's devices (nio only tracks users it shares rooms with).
    olm = client.olm
    assert olm is not None
    olm.users_for_key_query.add(invitee_user_id)
    await client.keys_query()
    missing = {
        user: [d for d in devices if d in targets]
        for user, devices in olm.get_missing_sessions([invitee_user_id]).items()
    }
    missing = {user: devices for user, devices in missing.items() if devices}
    if missing:
        await client.keys_claim(missing)

    state.settle_current_session(room_id)
    bundle = build_bundle(
        room_sessions(olm, room_id),
        room_id=room_id,
        own_device_id=client.device_id,
        ledger=state.ledger,
    )
    ciphertext, keys = encrypt_attachment(json.dumps(bundle).encode("utf-8"))
    upload, _ = await client.upload(
        io.BytesIO(ciphertext),
        content_type="application/octet-stream",
        filename="room_key_bundle",
        filesize=len(ciphertext),
    )
    if not isinstance(upload, UploadResponse):
        raise RuntimeError("envoi du lot de clés refusé par le serveur")
    content = {"room_id": room_id, "file": {**keys, "url": upload.content_uri}}

    devices = [
        (device, session)
        for device in olm.device_store.active_user_devices(invitee_user_id)
        if device.id in targets and (session := olm.session_store.get(device.curve25519))
    ]
    sent: list[str] = []
    for device, session in devices:
        olm_dict = olm._olm_encrypt(session, device, BUNDLE_EVENT_TYPE, content)
        response = await client.to_device(
            ToDeviceMessage("m.room.encrypted", invitee_user_id, device.id, olm_dict)
        )
        if isinstance(response, ToDeviceError):
            logger.warning("Envoi du lot de clés à un appareil refusé (%s).", response.status_code)
            continue
        sent.append(device.id)
    if sent:
        await _hand_over_fresh_session(
            client, room_id, invitee_user_id, [(d, s) for d, s in devices if d.id in sent]
        )
    logger.info(
        "Lot de clés d'historique envoyé à %d appareil(s) (%d clés, %d retenues).",
        len(sent),
        len(bundle["room_keys"]),
        len(bundle["withheld"]),
    )
    return sent
