"""Events the bot could not decrypt: logged by event id, their key requested from the
sender's devices, kept (ciphertext only) in the ledger and retried when keys arrive.
Never a crash, never a reply in the room."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nio import AsyncClient, EncryptionError, Event, LocalProtocolError, MegolmEvent

from bots.background_tasks import BackgroundTasks
from bots.matrix.ledger import EventLedger

log = logging.getLogger(__name__)

Redeliver = Callable[[Event, str], Awaitable[None]]


class UndecryptableEvents:
    def __init__(self, client: AsyncClient, ledger: EventLedger) -> None:
        self._client = client
        self._ledger = ledger
        self._redeliver: Redeliver | None = None
        self.requested: set[str] = set()
        self.tasks = BackgroundTasks()  # key requests, ended with the bot

    def set_redeliver(self, redeliver: Redeliver) -> None:
        self._redeliver = redeliver

    def add(self, event: MegolmEvent, room_id: str) -> None:
        if not self._ledger.add_undecrypted(
            event.event_id, room_id, event.session_id, event.source
        ):
            return
        log.warning(
            "événement indéchiffrable event=%s room=%s session=%s : clé demandée",
            event.event_id,
            room_id,
            event.session_id,
        )
        if event.session_id not in self.requested:
            self.requested.add(event.session_id)
            event.room_id = room_id
            self.tasks.spawn(self._request(event), name=f"clé-{event.session_id}")

    async def _request(self, event: MegolmEvent) -> None:
        try:
            await self._client.request_room_key(event)
        except LocalProtocolError:
            pass  # already requested for this session
        except Exception:
            log.warning("demande de clé impossible event=%s", event.event_id, exc_info=True)

    async def retry_session(self, session_id: str) -> None:
        for event_id, room_id, source in list(self._ledger.undecrypted_for_session(session_id)):
            await self._retry(event_id, room_id, source)

    async def retry_all(self) -> None:
        for event_id, room_id, source in self._ledger.all_undecrypted():
            await self._retry(event_id, room_id, source)

    async def _retry(self, event_id: str, room_id: str, source: dict[str, Any]) -> None:
        event = MegolmEvent.from_dict(source)
        if not isinstance(event, MegolmEvent):
            self._ledger.remove_undecrypted(event_id)
            return
        event.room_id = room_id
        try:
            decrypted = self._client.decrypt_event(event)
        except (EncryptionError, LocalProtocolError):
            return  # still no key
        self._ledger.remove_undecrypted(event_id)
        log.info("événement déchiffré après réception de la clé event=%s", event_id)
        if self._redeliver is not None:
            await self._redeliver(decrypted, room_id)
