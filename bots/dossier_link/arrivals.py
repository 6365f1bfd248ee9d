"""Bringing someone into a patient's conversation: the one way (issue 11).

``!inviter``, ``!cercle ajouter``, the dossier's care-circle page and API (through the
dossier's feed) and a join made from any client all come here:

* :meth:`Arrivals.bring_in` adds the person to the care circle (role ``intervenant`` unless
  the coordinator chose another, optionally "sans accès au dossier"), sends the MSC4268 key
  bundle to each of their devices that can take it, invites them (the bot must be the
  inviter: Element only imports a bundle from the user who invited), records in the liaison
  notebook which way the history went, and returns that sentence for the inviter. Rights
  are checked at each door by its authority: room administrators for ``!inviter``, the
  circle's coordinators for ``!cercle ajouter``, the dossier's policy for its page and API.
* History delivery does not give up: at the join, and whenever a device of the newcomer
  appears or gets cross-signed within the watch window (``device_lists.changed`` of the
  sync), the devices not served yet get the bundle; a newcomer none of whose devices could
  take keys ``grace`` seconds after joining gets the transcript PDF in the bot's direct chat,
  once per person and room.
* Nobody acts blind: a member whose client asks the bot for room keys of the room
  (``m.room_key_request``) is offered the transcript (``!historique``).

The transcript and its offer are :mod:`bots.dossier_link.history_fallback`
(`Arrivals.fallback`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from nio import AsyncClient

from bots.background_tasks import BackgroundTasks
from bots.commands.registry import UserError
from bots.dossier_link.arrival_store import Arrival, ArrivalStore, history_way, watching
from bots.dossier_link.history_fallback import (
    CapableDevices,
    DirectRoom,
    HistoryFallback,
    SendTranscript,
)
from bots.matrix.io import MatrixIO, MatrixRequestError, member_name
from deployment.incidents import new_reference

log = logging.getLogger(__name__)

DEFAULT_ROLE = "intervenant"

ShareBundle = Callable[..., Awaitable[list[str]]]  # (client, room_id, user, *, already)


class CircleDoor(Protocol):
    """The care circle and the liaison notebook of the room's file (the dossier link)."""

    async def add(
        self,
        room_id: str,
        user: str,
        *,
        name: str,
        role: str,
        has_access: bool,
        actor: str | None,
        origin: str,
    ) -> str | None: ...

    async def record_entry(
        self, room_id: str, text: str, *, actor: str | None, origin: str, purpose: str
    ) -> None: ...


class AccountNotFound(UserError):
    """No Cercle account by that id (yet: accounts are made at the first login)."""


def no_account(user: str) -> str:
    """Pure: the inviter's answer. A typo is likelier than a colleague who never logged in;
    for her, the file's page is the way (``bots.dossier_link.awaiting_accounts``)."""
    return (
        f"Impossible d'inviter {user} : compte introuvable. Vérifiez l'identifiant ; un(e) "
        "collègue qui ne s'est encore jamais connecté(e) à Cercle peut être ajouté(e) au cercle "
        "de soins depuis la page du dossier : l'invitation dans ce salon partira à sa première "
        "connexion."
    )


@dataclass(frozen=True)
class Welcome:
    """The outcome told to the inviter."""

    invited: bool  # False: already invited or member (only the circle changed)
    way: str  # which way the history went (French)
    circle_note: str | None = None  # e.g. the dossier is away: added when it is back


class Arrivals:
    def __init__(
        self,
        client: AsyncClient,
        io: MatrixIO,
        store: ArrivalStore,
        *,
        share_bundle: ShareBundle,
        capable_devices: CapableDevices,
        all_devices: CapableDevices,
        send_transcript: SendTranscript,
        direct_room: DirectRoom,
        grace_seconds: float = 180.0,
        window_seconds: float = 3 * 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.io = io
        self.store = store
        self.share_bundle = share_bundle
        self.all_devices = all_devices
        self.grace_ms = int(grace_seconds * 1000)
        self.window_ms = int(window_seconds * 1000)
        self.clock = clock
        self.circle: CircleDoor | None = None  # set by the dossier link when there is one
        self.is_patient_room: Callable[[str], bool] = lambda room_id: True
        self.is_admin: Callable[[str, str], bool] = lambda room_id, user: False
        # one lock per (room, person) while someone uses it (weak: no growth over time)
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self.tasks = BackgroundTasks()  # newcomers' welcomes, ended with the bot
        self.fallback = HistoryFallback(
            client,
            io,
            store,
            send_transcript=send_transcript,
            direct_room=direct_room,
            capable_devices=capable_devices,
            record=self._record,
            is_patient_room=lambda room_id: self.is_patient_room(room_id),  # set later
            now_ms=self.now_ms,
            grace_ms=self.grace_ms,
            window_ms=self.window_ms,
        )

    @property
    def bot(self) -> str:
        return str(self.client.user_id)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _lock(self, room_id: str, user: str) -> asyncio.Lock:
        lock = self._locks.get((room_id, user))
        if lock is None:
            lock = self._locks[(room_id, user)] = asyncio.Lock()
        return lock

    def _name(self, room_id: str, user: str) -> str:
        return member_name(self.client, room_id, user)

    async def _membership(self, room_id: str, user: str) -> str | None:
        content = await self.io.get_state(room_id, "m.room.member", user)
        return str(content.get("membership")) if content else None

    async def _record(
        self, room_id: str, text: str, *, actor: str | None, origin: str, purpose: str
    ) -> None:
        if self.circle is not None:
            await self.circle.record_entry(
                room_id, text, actor=actor, origin=origin, purpose=purpose
            )

    # ------------------------------------------------------------------ the one way in
    async def bring_in(
        self,
        room_id: str,
        user: str,
        *,
        actor: str | None,
        origin: str,
        role: str = DEFAULT_ROLE,
        has_access: bool = True,
        name: str | None = None,
        add_to_circle: bool = True,
    ) -> Welcome:
        """Circle, bundle, invitation, notebook; the sentence for the inviter."""
        if user == self.bot:
            raise UserError("Le bot fait déjà partie de la conversation.")
        name = name or self._name(room_id, user)
        async with self._lock(room_id, user):
            membership = await self._membership(room_id, user)
            present = membership in ("join", "invite")
            if not present and not await self.io.user_exists(user):
                raise AccountNotFound(no_account(user))  # before the circle: nothing written
            circle_note = None
            if add_to_circle and self.circle is not None:
                circle_note = await self.circle.add(
                    room_id,
                    user,
                    name=name,
                    role=role,
                    has_access=has_access,
                    actor=actor,
                    origin=origin,
                )
            if present:
                known = self.store.get(room_id, user)
                way = history_way(known, self.grace_ms / 60000) if known else "déjà présent(e)"
                return Welcome(False, way, circle_note)
            devices = await self._bundle(room_id, user, frozenset())
            try:
                await self.io.invite(room_id, user)
            except MatrixRequestError as exc:
                if exc.errcode in ("M_NOT_FOUND", "M_UNKNOWN", "M_BAD_STATE") or exc.status == 404:
                    raise AccountNotFound(no_account(user)) from None
                if exc.errcode == "M_FORBIDDEN":
                    raise UserError(
                        f"L'invitation de {user} a été refusée par le serveur."
                    ) from None
                raise
            now = self.now_ms()
            self.store.invited(room_id, user, actor=actor, by_bot=True, at_ms=now)
            self.store.devices_sent(room_id, user, devices, now)
            arrival = self.store.get(room_id, user)
            assert arrival is not None
            way = history_way(arrival, self.grace_ms / 60000)
            who = f" par {actor}" if actor and actor.startswith("@") else ""
            await self._record(
                room_id,
                f"Invitation de {name} dans la conversation du patient{who} ; {way}",
                actor=actor if who else None,
                origin=origin,
                purpose="invite",
            )
            return Welcome(True, way, circle_note)

    async def _bundle(self, room_id: str, user: str, already: frozenset[str]) -> list[str]:
        """The bundle to the user's devices not served yet; never raises (logged)."""
        try:
            return list(await self.share_bundle(self.client, room_id, user, already=already))
        except Exception:
            ref = new_reference()
            log.warning("lot de clés non envoyé réf=%s room=%s", ref, room_id, exc_info=True)
            return []

    # ------------------------------------------------------------------ after the invitation
    async def on_join(self, room_id: str, user: str, *, inviter: str | None, at_ms: int) -> None:
        """A member joined: their devices get the bundle now (Element imports it within 24 h
        of the join); the fallback clock starts."""
        if user == self.bot or not self.is_patient_room(room_id):
            return
        async with self._lock(room_id, user):
            arrival = self.store.get(room_id, user)
            if arrival is None and self.is_admin(room_id, user):
                return  # the room's first administrator (invited at its creation)
            if arrival is None or arrival.left_at_ms is not None:
                arrival = self.store.invited(
                    room_id, user, actor=inviter, by_bot=inviter == self.bot, at_ms=at_ms
                )
            self.store.joined(room_id, user, at_ms)
            origin = f"join|{room_id}|{user}|{at_ms}"
            if arrival.by_bot:
                await self._serve(arrival, origin, "à son arrivée")
                served = (self.store.get(room_id, user) or arrival).devices
                if served and set(await self.all_devices(self.client, user)) - served:
                    # keys on some devices only: the one they joined with may be another
                    room = self.client.rooms.get(room_id)
                    label = (room.display_name if room else None) or room_id
                    self.spawn(
                        self.fallback.offer_transcript(
                            room_id,
                            user,
                            f"Vous avez rejoint la conversation « {label} » ; une "
                            "de vos applications ne peut pas recevoir les clés de son historique.",
                        )
                    )
            elif self.circle is not None:
                # invited from a client: a professional in the conversation is in the circle;
                # with the file only if an administrator of the room invited them
                # The bot records a fact (this person is in the conversation) in its own name:
                # written on the inviter's behalf, the dossier would refuse it whenever she is
                # not a coordinator of the file (issue 12: on-behalf writes carry her rights).
                actor = arrival.actor
                granted = actor is not None and self.is_admin(room_id, actor)
                await self.circle.add(
                    room_id,
                    user,
                    name=self._name(room_id, user),
                    role=DEFAULT_ROLE,
                    has_access=granted,
                    actor=None,
                    origin=origin,
                )
        self.fallback.wake()

    async def on_leave(self, room_id: str, user: str, at_ms: int) -> None:
        self.store.left(room_id, user, at_ms)

    async def on_devices_changed(self, users: list[str]) -> None:
        """``device_lists.changed``: a newcomer's new or newly cross-signed device."""
        now = self.now_ms()
        for user in users:
            for arrival in self.store.of_user(user):
                if not watching(arrival, now, self.window_ms):
                    continue
                async with self._lock(arrival.room_id, user):
                    fresh = self.store.get(arrival.room_id, user)
                    if fresh is not None:
                        await self._serve(
                            fresh,
                            f"devices|{arrival.room_id}|{user}|{now}",
                            "à un appareil vérifié depuis",
                        )

    async def _serve(self, arrival: Arrival, origin: str, when: str) -> None:
        devices = await self._bundle(arrival.room_id, arrival.user_id, arrival.devices)
        if not devices:
            return
        self.store.devices_sent(arrival.room_id, arrival.user_id, devices, self.now_ms())
        n = len(devices)
        name = self._name(arrival.room_id, arrival.user_id)
        await self._record(
            arrival.room_id,
            f"Historique de la conversation : clés (MSC4268) envoyées à {name} {when} "
            f"({n} appareil{'s' if n > 1 else ''})",
            actor=None,
            origin=origin,
            purpose="bundle",
        )

    def spawn(self, job: Awaitable[Any]) -> None:
        """Run a hook's work beside the sync loop (never blocking it), failures logged."""

        async def guarded() -> None:
            try:
                await job
            except Exception:
                log.exception("accueil d'un nouveau membre en échec")

        self.tasks.spawn(guarded(), name="accueil")


# ---------------------------------------------------------------------------------- hooks
def watch(arrivals: Arrivals, client: AsyncClient) -> Callable[[str, Any], Awaitable[None]]:
    """Joins, departures and invitations (timeline) → :class:`Arrivals`, each handled beside
    the sync loop (device-list changes and key requests: :func:`on_sync_response`). Returns
    the same for the events of a timeline gap fetched back (``SyncLoop.gap_observers``)."""
    from nio import RoomMemberEvent

    async def on_member(room: Any, event: RoomMemberEvent) -> None:
        room_id, user = room.room_id, event.state_key
        if user == arrivals.bot or not arrivals.is_patient_room(room_id):
            return
        if arrivals.now_ms() - event.server_timestamp > arrivals.window_ms:
            return  # an old event (first sync): nothing left to deliver
        prev = (event.prev_content or {}).get("membership")
        if event.membership == "invite" and prev not in ("invite", "join"):
            # the first administrator, invited by the bot at the room's creation, is no
            # newcomer; any other invitation is (bring_in records the bot's own as well: the
            # first of the two writes wins, and both say the bot invited)
            if event.sender != arrivals.bot or not arrivals.is_admin(room_id, user):
                arrivals.store.invited(
                    room_id,
                    user,
                    actor=event.sender,
                    by_bot=event.sender == arrivals.bot,
                    at_ms=event.server_timestamp,
                )
        elif event.membership == "join" and prev != "join":
            arrivals.spawn(
                arrivals.on_join(room_id, user, inviter=None, at_ms=event.server_timestamp)
            )
        elif event.membership in ("leave", "ban") and prev in ("join", "invite"):
            arrivals.spawn(arrivals.on_leave(room_id, user, event.server_timestamp))

    client.add_event_callback(on_member, RoomMemberEvent)

    async def on_gap_event(room_id: str, event: Any) -> None:
        room = client.rooms.get(room_id)
        if room is not None and isinstance(event, RoomMemberEvent):
            await on_member(room, event)

    return on_gap_event


def on_sync_response(arrivals: Arrivals) -> Callable[[Any], None]:
    """The sync loop's observer: device-list changes and room-key requests of members."""
    from nio import RoomKeyRequest

    def observe(response: Any) -> None:
        changed = [u for u in response.device_list.changed if u != arrivals.bot]
        if changed:
            arrivals.spawn(arrivals.on_devices_changed(changed))
        for event in response.to_device_events:
            if isinstance(event, RoomKeyRequest) and event.sender != arrivals.bot:
                arrivals.spawn(arrivals.fallback.on_key_request(event.room_id, event.sender))

    return observe
