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

The MSC4268 room-key bundles given to newcomers are in ``bots.matrix.history_bundles``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nio import RoomHistoryVisibilityEvent, ToDeviceError, ToDeviceMessage, ToDeviceResponse
from nio.api import Api
from unpaddedbase64 import encode_base64

if TYPE_CHECKING:
    import nio

logger = logging.getLogger(__name__)

SHARED_HISTORY_FIELD = "org.matrix.msc3061.shared_history"
SHAREABLE_VISIBILITIES = frozenset({"shared", "world_readable"})
MEGOLM = "m.megolm.v1.aes-sha2"


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


async def send_olm_encrypted(
    client: nio.AsyncClient,
    session: Any,
    device: Any,
    user_id: str,
    message_type: str,
    content: dict[str, Any],
) -> ToDeviceResponse | ToDeviceError:
    """One Olm-encrypted to-device message of ``message_type`` to one device, its payload
    built by nio's ``_olm_encrypt`` (patched above: the one module that touches it)."""
    assert client.olm is not None
    payload = client.olm._olm_encrypt(session, device, message_type, content)
    return await client.to_device(ToDeviceMessage("m.room.encrypted", user_id, device.id, payload))


# --- MSC4268 key bundles ----------------------------------------------------------------
