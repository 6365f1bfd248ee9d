"""MSC4268 room-key bundles: the history of an encrypted room given to a newcomer.

``share_history_bundle`` implements MSC4268: it exports the room's Megolm sessions
(export format, ``AQAA…``), puts the ones flagged as shareable in ``room_keys`` and the
others in ``withheld`` (code ``m.history_not_shared``), encrypts the JSON blob as an
attachment, uploads it and sends ``io.element.msc4268.room_key_bundle`` Olm-encrypted to every
cross-signed device of the invitee. The bot must send the invite itself, *after* the bundle
(the receiver only accepts a bundle from the user who invited it).
The keys it may pass on carry the MSC3061 flag set by ``bots.matrix.history``.
"""

from __future__ import annotations

import io
import json
import logging
from typing import TYPE_CHECKING, Any

from nio import ToDeviceError, UploadResponse
from nio.crypto.attachments import encrypt_attachment

from bots.matrix.cross_signing import published_key, verify_signature
from bots.matrix.history import (
    MEGOLM,
    SessionLedger,
    SharedHistory,
    install_shared_history,
    send_olm_encrypted,
)

if TYPE_CHECKING:
    import nio

logger = logging.getLogger(__name__)

# matrix-sdk-crypto-wasm 18.9 (matrix-js-sdk 43) accepts both this unstable name and the
# stable ``m.room_key_bundle`` (both checked by tests/interop); older Rust crypto releases only
# match the unstable one, so that is what we send.
BUNDLE_EVENT_TYPE = "io.element.msc4268.room_key_bundle"
HISTORY_NOT_SHARED = "m.history_not_shared"
HISTORY_NOT_SHARED_REASON = "The sender disabled sharing encrypted history."


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
        response = await send_olm_encrypted(
            client, olm_session, device, user_id, "m.room_key", key_content
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
        response = await send_olm_encrypted(
            client, session, device, invitee_user_id, BUNDLE_EVENT_TYPE, content
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
