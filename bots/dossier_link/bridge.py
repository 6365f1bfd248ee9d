"""The bot's translation between the patient's room and the patient's file.

Conversation → file: every write goes through the durable outbox (``bots.outbox``) with an
idempotency key derived from the Matrix event that asked for it; ``deliver`` performs one
outbox item against the dossier.

File → conversation: ``on_file_event`` handles one event of the dossier's feed (read by
``bots.dossier_link.feed.FeedConsumer``): a room for a file created on the dossier's side, notices,
care circle → room membership (with the history for newcomers), the identity header and the
widget. Each step is idempotent, so the event in progress when the bot died can be handled
again: sends carry a transaction id derived from the event's ``seq``, memberships are read
before being changed, notebook entries carry keys derived from the ``seq``.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from nio import AsyncClient, ErrorResponse, RoomMemberEvent

from bots.commands.registry import UserError
from bots.dossier_client import DossierClient
from bots.dossier_link.arrivals import Arrivals
from bots.dossier_link.feed import TransientError
from bots.dossier_link.notices import (
    LAYOUT_STATE,
    WIDGET_ID,
    WIDGET_STATE,
    identity_header,
    render_event,
    widget_content,
    widget_layout,
)
from bots.dossier_link.store import SyncStore
from bots.matrix.io import MatrixIO, MatrixRequestError, mention_html, txn_for
from bots.matrix.room_once import create_room_once
from bots.outbox import (
    DONE,
    FAILED,
    OutboxItem,
    OutboxWorker,
    Refused,
    Unavailable,
    idempotency_key,
)

log = logging.getLogger(__name__)

PATIENT_STATE = "fr.cercle.patient"
PARIS = ZoneInfo("Europe/Paris")
KICK_REASON = "Fin de participation au cercle de soins du patient"
ACCESS_REMOVED_REASON = "Accès au dossier du patient retiré"

PatientRoomRequest = Callable[..., dict[str, Any]]


class NotLinked(Exception):
    """The room has no file (and the dossier does not know it either)."""


def today_paris() -> date:
    return datetime.now(PARIS).date()


class DossierBridge:
    def __init__(
        self,
        *,
        client: AsyncClient,
        io: MatrixIO,
        dossier: DossierClient,
        store: SyncStore,
        patient_rooms: dict[str, dict[str, Any]],
        patient_room_request: PatientRoomRequest,
        server_name: str,
        room_wait_seconds: float = 20.0,
        today: Callable[[], date] = today_paris,
        creators: Mapping[str, set[str]] | None = None,
    ) -> None:
        self.client = client
        self.io = io
        self.dossier = dossier
        self.store = store
        self.patient_rooms = patient_rooms
        self.patient_room_request = patient_room_request
        self.server_name = server_name
        self.arrivals: Arrivals | None = (
            None  # the one way in (bots.dossier_link.arrivals), attach()
        )
        self.room_wait_seconds = room_wait_seconds
        self.today = today
        self.creators = creators if creators is not None else {}  # room v12+: unlimited power
        self.worker: OutboxWorker | None = None  # set by the service that wires the outbox
        self._fresh: set[str] = set()  # rooms made or linked by this process (nio may lag)
        # (patient, actor, task label) -> the !tache command: its notice is the command's reply
        self._task_commands: dict[tuple[str, str, str], str] = {}

    def attach(self, arrivals: Arrivals) -> None:
        """Invitations from the dossier go through ``arrivals``; it adds to this circle."""
        self.arrivals = arrivals
        arrivals.circle = self

    @property
    def bot_user_id(self) -> str:
        return str(self.client.user_id)

    # ------------------------------------------------------------------ links
    def file_url(self, patient_id: str) -> str:
        return self.dossier.patient_page_url(patient_id)

    def known_patient(self, room_id: str) -> str | None:
        """The file of a room as the bot knows it locally (no request)."""
        return self.store.patient_of(room_id)

    async def resolve_patient(self, room_id: str) -> str:
        """The file of a room: local link, else the dossier's (by room id). NotLinked else."""
        pid = self.store.patient_of(room_id)
        if pid:
            return pid
        found = await self.dossier.patient_by_room(room_id)
        if not found or not found.get("id"):
            raise NotLinked(room_id)
        pid = str(found["id"])
        self.store.save_link(room_id, pid)
        return pid

    async def resolve_room(self, patient_id: str, hint: str | None = None) -> str | None:
        if hint:
            self.store.save_link(hint, patient_id)
            return hint
        room = self.store.room_of(patient_id)
        if room:
            return room
        patient = await self.dossier.get_patient(patient_id)
        room = (patient or {}).get("room_id")
        if isinstance(room, str) and room:
            self.store.save_link(room, patient_id)
            return room
        return None

    async def _set_patient_state(self, room_id: str, patient_id: str) -> None:
        self._fresh.add(room_id)
        current = await self.io.get_state(room_id, PATIENT_STATE)
        if not current or current.get("id") != patient_id:
            content = {**(current or {}), "id": patient_id, "version": 1}
            await self.io.put_state(room_id, PATIENT_STATE, content)
            self.patient_rooms[room_id] = content
        self.store.save_link(room_id, patient_id)

    # ------------------------------------------------------------------ outbox delivery
    async def deliver(self, item: OutboxItem) -> Mapping[str, Any] | None:
        """Perform one outbox item against the dossier (and its Matrix follow-up)."""
        p = item.payload
        op = item.operation
        key = item.key
        actor = p.get("actor")
        try:
            if op == "patient.create":
                created = await self.dossier.create_patient(
                    room_id=p["room_id"], label=p.get("label") or "", coordinator=actor,
                    coordinator_name=p.get("actor_name"), patient_id=p.get("pseudonym"), key=key,
                )  # fmt: skip
                pid = str(created["id"])
                await self._set_patient_state(p["room_id"], pid)
                return {"patient_id": pid}
            if op == "patient.link":
                pid = p["patient_id"]
                await self.dossier.link_room(pid, p["room_id"], actor=actor, key=key)
                await self._set_patient_state(p["room_id"], pid)
                await self.furnish_room(p["room_id"], pid)
                return {"patient_id": pid}
            if op == "circle.left":
                pid = await self._pid(item)
                await self.dossier.mark_left_room(pid, p["user_id"], key=key)
                return {"patient_id": pid}
            pid = await self._pid(item)
            if op == "notebook.add":
                entry = await self.dossier.add_notebook_entry(
                    pid, kind=p.get("kind", "note"), text=p["text"], actor=actor, key=key
                )
                return {"patient_id": pid, "entry_id": entry.get("id")}
            if op == "task.create":
                self._remember_task_command(pid, str(actor), p["label"], p.get("command"))
                task = await self.dossier.create_task(
                    pid, label=p["label"], type=p.get("type") or "Coordination",
                    assignees=p.get("assignees") or [], due_date=p.get("due_date"),
                    actor=actor, key=key,
                )  # fmt: skip
                return {"patient_id": pid, "task_id": task.get("id"), "label": task.get("label")}
            if op == "task.close":
                task = await self.dossier.set_task_state(p["task_id"], "fait", actor=actor, key=key)
                return {"patient_id": pid, "task_id": task.get("id"), "label": task.get("label")}
            if op == "document.upload":
                assert self.worker is not None
                data = self.worker.outbox.read_blob(p["blob"])
                doc = await self.dossier.upload_document(
                    pid, category=p["category"], filename=p["filename"], data=data,
                    actor=actor, key=key,
                )  # fmt: skip
                return {
                    "patient_id": pid,
                    "document_id": doc.get("id"),
                    "sha256": doc.get("sha256"),
                }
            if op == "circle.add":
                user = p["member"].get("matrix_user_id")
                present = [m for m in await self.dossier.circle(pid)
                           if user and m.get("matrix_user_id") == user]  # fmt: skip
                if present:  # already in (e.g. added on the page meanwhile): nothing to add
                    return {"patient_id": pid, "member_id": present[0].get("id")}
                member = await self.dossier.add_circle_member(
                    pid, p["member"], actor=actor, key=key
                )
                return {"patient_id": pid, "member_id": member.get("id")}
            if op == "circle.end":
                await self.dossier.end_circle_member(pid, p["member_id"], actor=actor, key=key)
                return {"patient_id": pid}
        except NotLinked:
            raise Refused("CERCLE_NOT_LINKED", "Salon non lié à un dossier", 404) from None
        except MatrixRequestError as exc:
            if exc.errcode == "M_FORBIDDEN":  # e.g. the bot may not set the room's state
                raise Refused("MATRIX_M_FORBIDDEN", exc.operation, 403) from None
            raise Unavailable(f"MATRIX_{exc.errcode}") from None
        raise Refused("CERCLE_UNKNOWN_OPERATION", op, 400)

    def _remember_task_command(self, pid: str, actor: str, label: str, command: Any) -> None:
        """Noted before the dossier is asked, so the feed cannot post the notice first."""
        if not isinstance(command, str):
            return
        while len(self._task_commands) >= 1000:  # notices never seen (quiet start): bounded
            self._task_commands.pop(next(iter(self._task_commands)))
        self._task_commands[(pid, actor, label)] = command

    @staticmethod
    def _task_key(event: Mapping[str, Any], pid: str) -> tuple[str, str, str] | None:
        if event.get("type") != "task.assigned":
            return None
        label = str((event.get("payload") or {}).get("label") or "")
        return (pid, str(event.get("actor") or ""), label)

    def may_furnish(self, room_id: str) -> bool:
        """Whether the bot may set the link, the widget and the pins in this room."""
        room = self.client.rooms.get(room_id)
        if room is None:
            return False
        if self.bot_user_id in self.creators.get(room_id, ()):
            return True
        levels = room.power_levels
        return all(
            levels.can_user_send_state(self.bot_user_id, t)
            for t in (PATIENT_STATE, WIDGET_STATE, LAYOUT_STATE, "m.room.pinned_events")
        )

    async def _pid(self, item: OutboxItem) -> str:
        pid = item.payload.get("patient_id")
        if isinstance(pid, str) and pid:
            return pid
        return await self.resolve_patient(str(item.room_id or item.payload.get("room_id")))

    async def on_late_outcome(
        self, item: OutboxItem, result: Mapping[str, Any] | None, refused: Refused | None
    ) -> None:
        """An item delivered (or refused) after its command was answered: say so in the room."""
        if not item.room_id or item.operation in ("circle.left",):
            return
        if refused is None and item.attempts == 0:
            return  # delivered at once: nothing to tell
        what = _OPERATION_WORDS.get(item.operation, "la demande")
        if refused is None:
            plain = f"✅ Dossier de nouveau joignable : {what} est enregistré(e) dans le dossier."
        elif refused.errcode == "CERCLE_NOT_LINKED":
            plain = f"⚠ {what[0].upper()}{what[1:]} n'a pas pu être enregistré(e) : ce salon n'est lié à aucun dossier."
        else:
            plain = f"⚠ {what[0].upper()}{what[1:]} a été refusé(e) par le dossier."
        await self.io.send_notice(
            item.room_id, plain, html.escape(plain), txn_id=txn_for(item.key, "late-outcome")
        )

    # ------------------------------------------------------------------ file → conversation
    async def on_file_event(self, event: Mapping[str, Any], *, announce: bool = True) -> None:
        """One event of the feed. ``announce=False`` (an old event read at the bot's first
        start, see ``bots.dossier_link.feed``): its effects on the room (room created, membership,
        pinned identity) are applied, its notice is not posted."""
        kind = str(event.get("type") or "")
        pid = event.get("patient_id")
        if not isinstance(pid, str) or not pid:
            return
        try:
            if kind == "patient.created":
                await self._room_for_file(event, pid)
                return
            room_id = await self.resolve_room(pid, event.get("room_id") or None)
            if room_id is None:
                return
            if room_id not in self.client.rooms:
                if room_id not in self._fresh:
                    # not a room the bot just made: it is not (or no longer) in it
                    log.info(
                        "événement du dossier %s : le bot n'est pas dans le salon", event.get("seq")
                    )
                    return
                await self._wait_for_room(room_id)  # TransientError: the feed retries, then skips
            way = None
            if kind.startswith("circle."):
                way = await self._circle_to_membership(room_id, pid, event)
            notice = (
                render_event(event, self.file_url(pid), self._names(room_id)) if announce else None
            )
            if notice is not None and way:  # the inviter learns which way the history went
                notice = replace(notice, plain=f"{notice.plain}\nHistorique : {way}",
                                 html=f"{notice.html}<br>Historique : {html.escape(way)}")  # fmt: skip
            if notice is not None:
                # a !tache's notice answers the command (one action, one message)
                task_key = self._task_key(event, pid)
                command = self._task_commands.get(task_key) if task_key else None
                await self.io.send_notice(
                    room_id, notice.plain, notice.html, mentions=notice.mentions,
                    txn_id=txn_for(f"dossier-seq-{event['seq']}", "notice"), reply_to=command,
                )  # fmt: skip
                if task_key:
                    self._task_commands.pop(task_key, None)
            if kind.startswith(("death.", "patient.")):
                await self.refresh_identity(room_id, pid)
        except MatrixRequestError as exc:
            if exc.errcode in ("M_LIMIT_EXCEEDED", "M_UNKNOWN") or (exc.status or 500) >= 500:
                raise TransientError(exc.errcode) from None
            raise

    def _names(self, room_id: str) -> dict[str, str]:
        room = self.client.rooms.get(room_id)
        if room is None:
            return {}
        return {u: (m.display_name or u) for u, m in room.users.items()}

    async def _wait_for_room(self, room_id: str, member: str | None = None) -> None:
        """A room the bot just created or joined appears in nio's state after a sync."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.room_wait_seconds
        while loop.time() < deadline:
            room = self.client.rooms.get(room_id)
            if room is not None and (member is None or member in room.users):
                return
            await asyncio.sleep(0.1)
        if self.client.rooms.get(room_id) is None:
            raise TransientError("room not synced yet")

    async def _room_for_file(self, event: Mapping[str, Any], pid: str) -> None:
        """A file opened in the dossier (page or API): its room, created once and linked."""
        room_id = event.get("room_id") or self.store.file_room(pid) or self.store.room_of(pid)
        patient = await self.dossier.get_patient(pid) or {}
        if not room_id and isinstance(patient.get("room_id"), str):
            room_id = patient["room_id"]
        coordinator = (event.get("payload") or {}).get("coordinator")
        if not room_id:
            requester = coordinator if isinstance(coordinator, str) else self.bot_user_id
            request = self.patient_room_request(
                label=str(patient.get("label") or f"Patient {pid}"), pseudonym=pid,
                requester=requester, bot_user_id=self.bot_user_id,
            )  # fmt: skip
            if requester == self.bot_user_id:
                request["invite"] = []
            # once per file, even when killed before save_file_room (bots.matrix.room_once)
            room_id, _ = await create_room_once(self.client, self.io, f"file-room|{pid}", request)
            self._fresh.add(room_id)
            self.store.save_file_room(pid, room_id)
            self.patient_rooms[room_id] = {"id": pid, "version": 1}
            log.info("salon créé pour le dossier %s : %s", pid, room_id)
        if patient.get("room_id") != room_id:
            await self.dossier.link_room(
                pid, room_id, actor=None, key=idempotency_key(f"dossier-seq-{event['seq']}", "link")
            )
        self.store.save_link(room_id, pid)
        if room_id not in self.client.rooms and room_id not in self._fresh:
            log.info("dossier %s : le bot n'est pas dans son salon, rien à y installer", pid)
            return
        await self._wait_for_room(room_id)
        await self._set_patient_state(room_id, pid)
        await self.furnish_room(room_id, pid, patient)

    async def on_old_file_event(self, event: Mapping[str, Any]) -> None:
        await self.on_file_event(event, announce=False)

    async def wait_ready(self) -> None:
        """Until the bot's first sync is in: before it, nio knows none of the bot's rooms."""
        while not getattr(self.client, "next_batch", None):
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # nio sets the token before it has walked the rooms

    def note_fresh(self, room_id: str) -> None:
        """A room the bot has just created: nio will show it after the next sync."""
        self._fresh.add(room_id)

    async def furnish_room(
        self, room_id: str, pid: str, patient: Mapping[str, Any] | None = None
    ) -> None:
        """The file as the room's widget, and the pinned identity message."""
        await self._wait_for_room(room_id)
        wanted = widget_content(self.dossier.widget_url(pid), self.bot_user_id)
        current = await self.io.get_state(room_id, WIDGET_STATE, WIDGET_ID)
        if current != wanted:
            await self.io.put_state(room_id, WIDGET_STATE, wanted, WIDGET_ID)
        layout = await self.io.get_state(room_id, LAYOUT_STATE)
        wanted_layout = widget_layout(layout)
        if layout != wanted_layout:
            await self.io.put_state(room_id, LAYOUT_STATE, wanted_layout)
        await self.refresh_identity(room_id, pid, patient)

    async def refresh_identity(
        self, room_id: str, pid: str, patient: Mapping[str, Any] | None = None
    ) -> None:
        """Post (and pin) the identity message, or edit it when the identity changed."""
        if patient is None or "identity_status" not in patient:
            patient = await self.dossier.get_patient(pid) or {}
        plain, rich = identity_header(patient, self.file_url(pid), self.today())
        digest = hashlib.sha256(plain.encode()).hexdigest()
        known = self.store.identity_header(room_id)
        if known and known[1] == digest:
            return
        content: dict[str, Any] = {
            "msgtype": "m.notice",
            "body": plain,
            "format": "org.matrix.custom.html",
            "formatted_body": rich,
            "m.mentions": {},
        }
        txn = txn_for(f"identity-{room_id}-{digest}", "identity")
        if known:
            await self.io.send_edit(room_id, known[0], content, txn)
            self.store.save_identity_header(room_id, known[0], digest)
            return
        event_id = await self.io.send(room_id, "m.room.message", content, txn)
        pinned = await self.io.get_state(room_id, "m.room.pinned_events") or {}
        ids = [e for e in pinned.get("pinned") or [] if isinstance(e, str)]
        if event_id not in ids:
            await self.io.put_state(room_id, "m.room.pinned_events", {"pinned": [event_id, *ids]})
        self.store.save_identity_header(room_id, event_id, digest)

    # -- care circle → membership --
    async def _membership(self, room_id: str, user_id: str) -> str | None:
        content = await self.io.get_state(room_id, "m.room.member", user_id)
        return str(content.get("membership")) if content else None

    async def _circle_to_membership(
        self, room_id: str, pid: str, event: Mapping[str, Any]
    ) -> str | None:
        """The room follows the circle; returns which way the history went on an invitation."""
        payload: Mapping[str, Any] = event.get("payload") or {}
        user = payload.get("matrix_user_id")
        if not isinstance(user, str) or not user or user == self.bot_user_id:
            return None
        kind = event.get("type")
        seq = event["seq"]
        name = str(payload.get("display_name") or user)
        if kind == "circle.added" and not payload.get("has_access"):
            return None  # a room-only guest "sans accès au dossier": the room stays as it is
        membership = await self._membership(room_id, user)
        wants_in = kind in ("circle.added", "circle.changed") and bool(payload.get("has_access"))
        if wants_in and membership not in ("join", "invite") and self.arrivals is not None:
            actor = str(event.get("actor") or "")
            try:
                welcome = await self.arrivals.bring_in(
                    room_id, user, actor=actor if actor.startswith("@") else None,
                    origin=f"dossier-seq-{seq}", name=name, add_to_circle=False,
                )  # fmt: skip
            except UserError:
                log.warning("invitation impossible depuis le dossier room=%s", room_id)
                return "invitation impossible (compte introuvable ou refusée par le serveur)"
            return welcome.way
        if not wants_in and membership in ("join", "invite"):
            reason = KICK_REASON if kind == "circle.ended" else ACCESS_REMOVED_REASON
            resp = await self.client.room_kick(room_id, user, reason=reason)
            if isinstance(resp, ErrorResponse) and resp.status_code != "M_FORBIDDEN":
                raise TransientError(str(resp.status_code))
            await self.record(
                room_id, pid, f"{name} retiré(e) de la conversation du patient ({reason.lower()})",
                origin=f"dossier-seq-{seq}", purpose="kick", actor=str(event.get("actor") or "") or None,
            )  # fmt: skip
        return None

    # -- the care circle as bots.dossier_link.arrivals sees it (CircleDoor) --
    async def add(self, room_id: str, user: str, *, name: str, role: str, has_access: bool,
                  actor: str | None, origin: str) -> str | None:  # fmt: skip
        """Add ``user`` to the circle of the room's file (nothing if already there); a note
        for the inviter when it could not be done at once."""
        try:
            pid = await self.resolve_patient(room_id)
        except NotLinked:
            return "Ce salon n'est lié à aucun dossier : pas de cercle de soins à compléter."
        except Unavailable:
            pid = None
        assert self.worker is not None
        member = {"kind": "professionnel", "display_name": name, "matrix_user_id": user,
                  "role": role, "has_access": has_access}  # fmt: skip
        payload: dict[str, Any] = {"member": member, "actor": actor, "room_id": room_id}
        if pid:
            payload["patient_id"] = pid
        item = await self.worker.submit(
            idempotency_key(origin, "circle-add"), "circle.add", payload, room_id=room_id,
            wait_seconds=3.0,
        )  # fmt: skip
        if item.status == DONE:
            return None
        if item.status == FAILED:
            return "L'ajout au cercle de soins a été refusé par le dossier."
        return (
            "⏳ Le dossier est momentanément indisponible : l'ajout au cercle de soins sera "
            "enregistré dès son retour."
        )

    async def record_entry(self, room_id: str, text: str, *, actor: str | None, origin: str,
                           purpose: str) -> None:  # fmt: skip
        await self.record(room_id, self.known_patient(room_id), text, origin=origin,
                          purpose=purpose, actor=actor)  # fmt: skip

    async def direct_room(self, user: str, origin: str) -> str:
        """The bot's encrypted direct chat with ``user`` (created once, remembered)."""
        known = self.store.direct_room(user)
        if known and known in self.client.rooms:
            return known
        if known is None:
            # once per person, even when killed before it is saved (bots.matrix.room_once)
            known, _ = await create_room_once(self.client, self.io, f"direct|{user}", {
                "is_direct": True,
                "invite": [user],
                "initial_state": [
                    {"type": "m.room.encryption", "state_key": "",
                     "content": {"algorithm": "m.megolm.v1.aes-sha2"}},
                ],
            })  # fmt: skip
            self.store.save_direct_room(user, known)
        await self._wait_for_room(known, member=user)
        return known

    # -- notebook entries written by the bot itself --
    async def record(
        self, room_id: str, pid: str | None, text: str, *, origin: str, purpose: str,
        actor: str | None = None, kind: str = "note", wait_seconds: float = 0.0,
    ) -> OutboxItem | None:  # fmt: skip
        """A liaison-notebook entry (with who and when: the dossier stamps the time, the
        author is ``actor``), keyed by the event that caused it: written once."""
        if self.worker is None:
            return None
        payload: dict[str, Any] = {"kind": kind, "text": text[:8000], "actor": actor,
                                   "room_id": room_id}  # fmt: skip
        if pid:
            payload["patient_id"] = pid
        key = idempotency_key(origin, purpose)
        if wait_seconds <= 0:
            self.worker.outbox.enqueue(key, "notebook.add", payload)
            self.worker.wake()
            return self.worker.outbox.get(key)
        return await self.worker.submit(key, "notebook.add", payload, wait_seconds=wait_seconds)

    # ------------------------------------------------------------------ conversation events
    async def on_member_event(self, room_id: str, event: RoomMemberEvent) -> None:
        """A departure marks the member "left" in the circle; an invitation made in the
        client is noted. Keyed by the event id: a replayed sync writes once."""
        if room_id not in self.patient_rooms and self.store.patient_of(room_id) is None:
            return
        if self.worker is None:
            return
        user = event.state_key
        prev = (
            (event.prev_content or {}).get("membership") if hasattr(event, "prev_content") else None
        )
        if (
            event.membership == "leave"
            and event.sender == user
            and user != self.bot_user_id
            and prev == "join"
        ):
            self.worker.outbox.enqueue(
                idempotency_key(event.event_id, "left"), "circle.left",
                {"user_id": user, "room_id": room_id},
            )  # fmt: skip
            self.worker.wake()
        elif (
            event.membership == "invite"
            and prev not in ("invite", "join")
            and event.sender != self.bot_user_id
        ):
            # an invitation made in the client (the bot's own are noted where it makes them:
            # care-circle sync, !inviter through the command observer)
            self.worker.outbox.enqueue(
                idempotency_key(event.event_id, "invited"), "notebook.add",
                {"kind": "note", "actor": event.sender, "room_id": room_id,
                 "text": f"Invitation de {user} dans la conversation du patient par {event.sender}"},
            )  # fmt: skip
            self.worker.wake()

    # ------------------------------------------------------------------ overdue tasks
    async def announce_overdue(self) -> int:
        """Announce each overdue task once in its room; DM each assignee once."""
        count = 0
        for task in await self.dossier.overdue_tasks():
            task_id = str(task.get("id") or "")
            pid = task.get("patient_id")
            if not task_id or self.store.overdue_announced(task_id) or not isinstance(pid, str):
                continue
            room_id = await self.resolve_room(pid)
            if room_id is None:
                continue
            await self._wait_for_room(room_id)
            event = {"type": "task.overdue", "payload": task, "patient_id": pid}
            notice = render_event(event, self.file_url(pid), self._names(room_id))
            assert notice is not None
            await self.io.send_notice(
                room_id, notice.plain, notice.html, mentions=notice.mentions,
                txn_id=txn_for(f"overdue-{task_id}", "room"),
            )  # fmt: skip
            for user in notice.direct_to:
                dm = await self.direct_room(user, f"overdue-{task_id}")
                await self.io.send_notice(
                    dm, notice.plain, notice.html, mentions=[user],
                    txn_id=txn_for(f"overdue-{task_id}", f"dm-{user}"),
                )  # fmt: skip
            self.store.mark_overdue_announced(task_id)
            count += 1
        return count

    async def refresh_ages(self) -> int:
        """Once a day: the pinned identities whose text changed (an age after a birthday)."""
        edited = 0
        for room_id, pid in self.store.links():
            if room_id not in self.client.rooms:
                continue
            before = self.store.identity_header(room_id)
            if before is None:
                continue
            await self.refresh_identity(room_id, pid)
            edited += self.store.identity_header(room_id) != before
            await asyncio.sleep(0.05)  # spread the reads
        return edited

    async def run_overdue(self, interval_seconds: float = 60.0) -> None:
        """Every ``interval_seconds``: overdue tasks; at each new day (Paris): ages."""
        await self.wait_ready()
        day = self.today()
        while True:
            try:
                if self.today() != day:
                    day = self.today()
                    await self.refresh_ages()
                await self.announce_overdue()
            except (Unavailable, TransientError):
                pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("annonce des tâches en retard en échec")
            await asyncio.sleep(interval_seconds)


_OPERATION_WORDS = {
    "patient.create": "la création du dossier",
    "patient.link": "la liaison au dossier",
    "notebook.add": "l'entrée du cahier de liaison",
    "task.create": "la tâche",
    "task.close": "la clôture de la tâche",
    "document.upload": "le document",
    "circle.add": "l'ajout au cercle de soins",
    "circle.end": "le retrait du cercle de soins",
}


def people_html(user_ids: Sequence[str]) -> str:
    return ", ".join(mention_html(u) for u in user_ids)
