"""A newcomer's history when keys cannot reach them: the transcript PDF, and the offer of it.

Part of bringing someone into a patient's conversation (:mod:`bots.dossier_link.arrivals`,
which builds it): a newcomer none of whose devices could take the history's keys ``grace``
seconds after joining gets the transcript PDF in the bot's direct chat, once per person and
room (the fallback clock, `HistoryFallback.run`); a member whose client asks the bot for
room keys, or who joined with a device the keys did not reach, is offered the transcript
(``!historique``). Nobody acts blind.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field

from nio import AsyncClient

from bots.dossier_link.arrival_store import ArrivalStore, transcript_due
from bots.matrix.io import MatrixIO, member_name, mention_html, txn_for
from deployment.conventions import wait_set
from deployment.incidents import new_reference

log = logging.getLogger(__name__)

CapableDevices = Callable[[AsyncClient, str], Awaitable[list[str]]]
SendTranscript = Callable[[str, str, str], Awaitable[None]]  # (room_id, user, dm_room_id)
DirectRoom = Callable[[str], Awaitable[str]]
Record = Callable[..., Awaitable[None]]  # (room_id, text, *, actor, origin, purpose)


@dataclass
class HistoryFallback:
    client: AsyncClient
    io: MatrixIO
    store: ArrivalStore
    _: KW_ONLY
    send_transcript: SendTranscript
    direct_room: DirectRoom
    capable_devices: CapableDevices
    record: Record
    is_patient_room: Callable[[str], bool]
    now_ms: Callable[[], int]
    grace_ms: int
    window_ms: int
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    @property
    def bot(self) -> str:
        return str(self.client.user_id)

    def name(self, room_id: str, user: str) -> str:
        return member_name(self.client, room_id, user)

    def wake(self) -> None:
        """Someone joined: the clock looks at once."""
        self._wake.set()

    async def _direct_chat(self, user: str, wait_seconds: float = 20.0) -> str:
        """The bot's direct chat with ``user``, once nio lists them in it: a message sent
        before nio has handled their invitation would not carry its key to their devices."""
        dm = await self.direct_room(user)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while loop.time() < deadline:
            room = self.client.rooms.get(dm)
            if room is not None and user in room.users:
                return dm
            await asyncio.sleep(0.1)
        raise TimeoutError("conversation directe pas encore synchronisée")

    # ------------------------------------------------------------------ the PDF fallback
    async def tick(self) -> int:
        """Send the transcript to each joined newcomer whose grace is over with no device
        able to take keys. Returns how many were sent."""
        sent = 0
        now = self.now_ms()
        for arrival in self.store.awaiting_history():
            if not transcript_due(arrival, now, self.grace_ms):
                continue
            joined = arrival.joined_at_ms or now
            if now - joined > self.window_ms or arrival.room_id not in self.client.rooms:
                continue  # tried for the whole window, or the bot left the room: no more
            if not arrival.by_bot:
                # invited from a client: that client shares its own bundle with the
                # cross-signed devices; only those without any get the transcript
                try:
                    capable = await self.capable_devices(self.client, arrival.user_id)
                except Exception:
                    log.warning("appareils de %s non lus", arrival.room_id, exc_info=True)
                    continue
                if capable:
                    # their inviter's client shared its bundle, or not (an Element inviter
                    # whose own identity is unverified does not): the bot cannot know, and
                    # Rust crypto does not ask it for keys, so it offers the transcript
                    self.store.devices_sent(arrival.room_id, arrival.user_id, capable, now)
                    room = self.client.rooms.get(arrival.room_id)
                    label = (room.display_name if room else None) or arrival.room_id
                    await self.offer_transcript(
                        arrival.room_id,
                        arrival.user_id,
                        f"Vous avez rejoint la conversation « {label} ». Si votre application "
                        "n'en affiche pas les messages d'avant votre arrivée :",
                    )
                    continue
            reason = "aucun de ses appareils ne pouvait recevoir les clés de l'historique"
            sent += await self.send_transcript_once(arrival.room_id, arrival.user_id, reason)
        return sent

    async def send_transcript_once(self, room_id: str, user: str, reason: str) -> bool:
        """The transcript PDF in the direct chat, once per person and room."""
        if self.store.get(room_id, user) is None:  # a member from before
            self.store.invited(room_id, user, actor=None, by_bot=False, at_ms=self.now_ms())
        if not self.store.transcript_sent(room_id, user, self.now_ms()):
            return False
        try:
            dm = await self._direct_chat(user)
            await self.send_transcript(room_id, user, dm)
        except Exception:
            self.store.transcript_failed(room_id, user)
            ref = new_reference()
            log.exception("transcription non envoyée réf=%s room=%s", ref, room_id)
            return False
        name = self.name(room_id, user)
        await self.record(
            room_id,
            f"Historique de la conversation envoyé à {name} en transcription PDF ({reason})",
            actor=None,
            origin=f"transcript|{room_id}|{user}",
            purpose="transcript",
        )
        plain = f"📜 Historique transmis à {name} en transcription PDF ({reason})."
        rich = f"📜 Historique transmis à {mention_html(user, name)} en transcription PDF ({html.escape(reason)})."
        await self.io.send_notice(
            room_id,
            plain,
            rich,
            mentions=[user],
            txn_id=txn_for(f"transcript|{room_id}|{user}", "notice"),
        )
        return True

    async def run(self, poll_seconds: float | None = None) -> None:
        """The fallback clock: wakes at each join and at least every ``poll_seconds``."""
        interval = poll_seconds or max(1.0, min(30.0, self.grace_ms / 4000))
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("envoi des transcriptions en échec")
            self._wake.clear()
            await wait_set(self._wake, interval)

    # ------------------------------------------------------------------ nobody acts blind
    async def on_key_request(self, room_id: str, user: str) -> None:
        """A member's client asked the bot for keys of this room: offer the transcript."""
        if user == self.bot or not self.is_patient_room(room_id):
            return
        room = self.client.rooms.get(room_id)
        if room is None or user not in room.users or user in room.invited_users:
            return
        if self.store.get(room_id, user) is None:  # a member from before: no fallback clock
            self.store.invited(room_id, user, actor=None, by_bot=False, at_ms=self.now_ms())
        await self.offer_transcript(
            room_id,
            user,
            f"Votre application n'a pas pu déchiffrer des messages de la "
            f"conversation « {room.display_name or room_id} ».",
        )

    async def offer_transcript(self, room_id: str, user: str, why: str) -> None:
        """Once per person and room (and never after the transcript itself): the way to ask."""
        if not self.store.offered(room_id, user, self.now_ms()):
            return
        text = f"{why} Écrivez !historique dans la conversation pour recevoir ici son historique en PDF."
        try:
            dm = await self._direct_chat(user)
            await self.io.send_notice(
                dm, text, html.escape(text), txn_id=txn_for(f"offer|{room_id}|{user}", "offer")
            )
        except Exception:
            self.store.offer_failed(room_id, user)
            log.warning("proposition de transcription non envoyée room=%s", room_id, exc_info=True)
