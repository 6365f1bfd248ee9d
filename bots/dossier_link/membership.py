"""Care circle ↔ room membership, and the liaison-notebook entries the bot writes itself.

File → room: a member given access is brought in (``bots.dossier_link.arrivals``, with the
history), a member ended or without access is removed. Room → file: a departure marks the
member "left", an invitation made in a client is noted. For ``Arrivals`` this is the
``CircleDoor``: it adds to the circle of the room's file and writes notebook entries.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from typing import Any

from nio import ErrorResponse, Event, RoomMemberEvent

from bots.commands.registry import UserError
from bots.dossier_link.arrivals import AccountNotFound, Arrivals
from bots.dossier_link.awaiting_accounts import Awaited, AwaitingAccounts
from bots.dossier_link.feed import TransientError
from bots.dossier_link.links import FileLinks, NotLinked
from bots.dossier_link.operations import (
    AddNotebookEntry,
    AddToCircle,
    BackInRoom,
    LeftRoom,
    Operation,
)
from bots.matrix.io import txn_for
from bots.outbox import DONE, FAILED, OutboxItem, OutboxWorker, Unavailable, idempotency_key

log = logging.getLogger(__name__)

KICK_REASON = "Fin de participation au cercle de soins du patient"
ACCESS_REMOVED_REASON = "Accès au dossier du patient retiré"


AWAITING = "invitation à sa première connexion (pas encore de compte Cercle)"


class CircleMembership:
    def __init__(self, links: FileLinks, worker: OutboxWorker, awaiting: AwaitingAccounts) -> None:
        self.links = links
        self.worker = worker
        self.awaiting = awaiting  # added to a circle before their first login
        self.arrivals: Arrivals | None = None  # the one way in, attach()

    def attach(self, arrivals: Arrivals) -> None:
        """Invitations from the dossier go through ``arrivals``; it adds to this circle."""
        self.arrivals = arrivals
        arrivals.circle = self

    def enqueue(self, key: str, operation: Operation, *, at_ms: int | None = None) -> None:
        """Queued in the durable outbox, the worker woken (unless held until ``at_ms``)."""
        self.worker.outbox.enqueue(key, operation.name, operation.payload(), at_ms=at_ms)
        if at_ms is None:
            self.worker.wake()

    # -- care circle → membership --
    async def _membership(self, room_id: str, user_id: str) -> str | None:
        content = await self.links.io.get_state(room_id, "m.room.member", user_id)
        return str(content.get("membership")) if content else None

    async def follow_circle(self, room_id: str, pid: str, event: Mapping[str, Any]) -> str | None:
        """The room follows the circle; returns which way the history went on an invitation."""
        payload: Mapping[str, Any] = event.get("payload") or {}
        user = payload.get("matrix_user_id")
        if not isinstance(user, str) or not user or self.links.shards.is_bot(user):
            return None
        kind = event.get("type")
        seq = event["seq"]
        name = str(payload.get("display_name") or user)
        if kind == "circle.added" and not payload.get("has_access"):
            return None  # a room-only guest "sans accès au dossier": the room stays as it is
        membership = await self._membership(room_id, user)
        wants_in = kind in ("circle.added", "circle.changed") and bool(payload.get("has_access"))
        if not wants_in:
            self.awaiting.remove(room_id, user)  # no longer to be invited at her first login
        if wants_in and membership not in ("join", "invite") and self.arrivals is not None:
            said = str(event.get("actor") or "")
            actor = said if said.startswith("@") else None  # a person, not a service
            try:
                welcome = await self.arrivals.bring_in(
                    room_id,
                    user,
                    actor=actor,
                    origin=f"dossier-seq-{seq}",
                    name=name,
                    add_to_circle=False,
                )
            except AccountNotFound:
                self.awaiting.add(room_id, user, name=name, actor=actor)
                return AWAITING
            except UserError:
                log.warning("invitation impossible depuis le dossier room=%s", room_id)
                return "invitation impossible (compte introuvable ou refusée par le serveur)"
            return welcome.way
        if not wants_in and membership in ("join", "invite"):
            reason = KICK_REASON if kind == "circle.ended" else ACCESS_REMOVED_REASON
            resp = await self.links.client.room_kick(room_id, user, reason=reason)
            if isinstance(resp, ErrorResponse) and resp.status_code != "M_FORBIDDEN":
                raise TransientError(str(resp.status_code))
            await self.record(
                room_id,
                pid,
                f"{name} retiré(e) de la conversation du patient ({reason.lower()})",
                origin=f"dossier-seq-{seq}",
                purpose="kick",
                actor=str(event.get("actor") or "") or None,
            )
        return None

    async def bring_awaited(self, awaited: Awaited) -> None:
        """Her account exists now (``AwaitingAccounts``): invited with the history if she is
        still in the circle with access, the room told; forgotten either way. Raises to be
        tried again (the dossier or the homeserver away)."""
        room_id, user = awaited.room_id, awaited.user_id
        if self.arrivals is None or not self.links.lives_here(room_id):
            self.awaiting.remove(room_id, user)  # the room went to another of the bot's accounts
            return
        pid = await self.links.resolve_patient(room_id)
        places = [
            m
            for m in await self.links.dossier.circle(pid)
            if m.get("matrix_user_id") == user and m.get("has_access")
        ]
        if not places:
            self.awaiting.remove(room_id, user)
            return
        origin = f"account|{room_id}|{user}|{awaited.since_ms}"
        welcome = await self.arrivals.bring_in(
            room_id,
            user,
            actor=awaited.actor,
            origin=origin,
            name=awaited.name,
            add_to_circle=False,
        )
        self.awaiting.remove(room_id, user)
        if not welcome.invited:
            return  # already invited or in (another way in, meanwhile)
        plain = (
            f"✅ {awaited.name} a maintenant un compte Cercle : invitation envoyée dans la "
            f"conversation du patient. Historique : {welcome.way}"
        )
        await self.links.io.send_notice(
            room_id, plain, html.escape(plain), txn_id=txn_for(origin, "account-found")
        )

    # -- the care circle as bots.dossier_link.arrivals sees it (CircleDoor) --
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
    ) -> str | None:
        """Add ``user`` to the circle of the room's file (nothing if already there); a note
        for the inviter when it could not be done at once."""
        try:
            pid: str | None = await self.links.resolve_patient(room_id)
        except NotLinked:
            return "Ce salon n'est lié à aucun dossier : pas de cercle de soins à compléter."
        except Unavailable:
            pid = None
        member = {
            "kind": "professionnel",
            "display_name": name,
            "matrix_user_id": user,
            "role": role,
            "has_access": has_access,
        }
        op = AddToCircle(member=member, actor=actor, room_id=room_id, patient_id=pid)
        item = await self.worker.submit(
            idempotency_key(origin, "circle-add"),
            op.name,
            op.payload(),
            room_id=room_id,
            wait_seconds=3.0,
        )
        if item.status == DONE:
            return None
        if item.status == FAILED:
            return "L'ajout au cercle de soins a été refusé par le dossier."
        return (
            "⏳ Le dossier est momentanément indisponible : l'ajout au cercle de soins sera "
            "enregistré dès son retour."
        )

    async def record_entry(
        self, room_id: str, text: str, *, actor: str | None, origin: str, purpose: str
    ) -> None:
        await self.record(
            room_id,
            self.links.known_patient(room_id),
            text,
            origin=origin,
            purpose=purpose,
            actor=actor,
        )

    async def record(
        self,
        room_id: str,
        pid: str | None,
        text: str,
        *,
        origin: str,
        purpose: str,
        actor: str | None = None,
        kind: str = "note",
        wait_seconds: float = 0.0,
    ) -> OutboxItem | None:
        """A liaison-notebook entry (with who and when: the dossier stamps the time, the
        author is ``actor``), keyed by the event that caused it: written once."""
        op = AddNotebookEntry(
            kind=kind, text=text[:8000], actor=actor, room_id=room_id, patient_id=pid or None
        )
        key = idempotency_key(origin, purpose)
        if wait_seconds <= 0:
            self.enqueue(key, op)
            return self.worker.outbox.get(key)
        return await self.worker.submit(key, op.name, op.payload(), wait_seconds=wait_seconds)

    # -- room → file --
    async def on_member_event(self, room_id: str, event: RoomMemberEvent) -> None:
        """A departure marks the member "left" in the circle (removed in a client, or her
        invitation declined or withdrawn: the room is told her access stays, and how to end
        it), a return clears it; an invitation made in the
        client is noted. Keyed by the event id: a replayed sync writes once."""
        if not self.links.is_patient_room(room_id):
            return
        user = event.state_key
        is_bot = self.links.shards.is_bot  # any of the bot's accounts (bots/shards.py)
        prev = (
            (event.prev_content or {}).get("membership") if hasattr(event, "prev_content") else None
        )
        if event.membership in ("leave", "ban") and prev in ("join", "invite") and not is_bot(user):
            if is_bot(event.sender):
                return  # the bot's own removals follow the circle: already on the file
            removed_by = event.sender if event.sender != user else None  # kicked, banned
            self.enqueue(
                idempotency_key(event.event_id, "left"),
                LeftRoom(
                    user_id=user,
                    room_id=room_id,
                    removed_by=removed_by,
                    was_invited=prev == "invite",  # declined, or the invitation withdrawn
                ),
            )
        elif event.membership == "join" and prev in ("leave", "ban", "invite") and not is_bot(user):
            # back after leaving ("invite": re-invited first; a first arrival changes nothing)
            self.enqueue(
                idempotency_key(event.event_id, "back"), BackInRoom(user_id=user, room_id=room_id)
            )
        elif (
            event.membership == "invite"
            and prev not in ("invite", "join")
            and not is_bot(event.sender)
            and not is_bot(user)
        ):
            # an invitation made in the client (the bot's own are noted where it makes them:
            # care-circle sync, !inviter through the command observer)
            text = f"Invitation de {user} dans la conversation du patient par {event.sender}"
            self.enqueue(
                idempotency_key(event.event_id, "invited"),
                AddNotebookEntry(text=text, actor=event.sender, room_id=room_id),
            )

    async def on_gap_event(self, room_id: str, event: Event) -> None:
        """An event of a timeline gap fetched back after a long absence (``SyncLoop``'s
        ``gap_observers``): nio's callbacks never saw its member events. They come after the
        sync's own, out of order: the delivery reads the membership of now (``delivery``)."""
        if isinstance(event, RoomMemberEvent):
            await self.on_member_event(room_id, event)
