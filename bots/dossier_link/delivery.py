"""Conversation → file: one outbox item performed against the dossier.

Every write of the bot goes through the durable outbox (``bots.outbox``) with an idempotency
key derived from the Matrix event that asked for it. ``deliver`` reads the item as a typed
operation (``bots.dossier_link.operations``) and runs its handler from one table; a Matrix
follow-up (the room's link state, its widget) is part of the same delivery.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from bots.dossier_client import DossierClient
from bots.dossier_link.announcements import Announcements
from bots.dossier_link.links import FileLinks, NotLinked
from bots.dossier_link.operations import (
    AddNotebookEntry,
    AddToCircle,
    BackInRoom,
    CloseTask,
    CreatePatient,
    CreateTask,
    EndInCircle,
    LeftRoom,
    LinkRoom,
    OnFile,
    Operation,
    RecordActivity,
    UploadDocument,
    parse_operation,
    words_of,
)
from bots.matrix.io import MatrixRequestError, member_name, mention_html, txn_for
from bots.outbox import Outbox, OutboxItem, Refused, Unavailable

Result = dict[str, Any]
Handler = Callable[[Any, str], Awaitable[Result]]  # (operation, idempotency key)


class OutboxDelivery:
    def __init__(self, links: FileLinks, announcements: Announcements, outbox: Outbox) -> None:
        self.links = links
        self.dossier: DossierClient = links.dossier
        self.announcements = announcements
        self.outbox = outbox
        self.handlers: dict[type[Operation], Handler] = {
            CreatePatient: self._create_patient,
            LinkRoom: self._link_room,
            LeftRoom: self._left_room,
            BackInRoom: self._back_in_room,
            AddNotebookEntry: self._add_notebook_entry,
            CreateTask: self._create_task,
            CloseTask: self._close_task,
            UploadDocument: self._upload_document,
            AddToCircle: self._add_to_circle,
            EndInCircle: self._end_in_circle,
            RecordActivity: self._record_activity,
        }

    async def deliver(self, item: OutboxItem) -> Mapping[str, Any] | None:
        """Perform one outbox item against the dossier (and its Matrix follow-up)."""
        op = parse_operation(item.operation, item.payload)
        handler = self.handlers.get(type(op)) if op is not None else None
        if handler is None:
            raise Refused("CERCLE_UNKNOWN_OPERATION", item.operation, 400)
        if isinstance(op, OnFile) and not op.room_id and item.room_id:
            op = replace(op, room_id=item.room_id)
        try:
            return await handler(op, item.key)
        except NotLinked:
            raise Refused("CERCLE_NOT_LINKED", "Salon non lié à un dossier", 404) from None
        except MatrixRequestError as exc:
            if exc.errcode == "M_FORBIDDEN":  # e.g. the bot may not set the room's state
                raise Refused("MATRIX_M_FORBIDDEN", exc.operation, 403) from None
            raise Unavailable(f"MATRIX_{exc.errcode}") from None

    async def _pid(self, op: OnFile) -> str:
        if op.patient_id:
            return op.patient_id
        return await self.links.resolve_patient(str(op.room_id))

    # -- the handler table --
    async def _create_patient(self, op: CreatePatient, key: str) -> Result:
        created = await self.dossier.create_patient(
            room_id=op.room_id,
            label=op.label or "",
            coordinator=op.actor,
            coordinator_name=op.actor_name,
            patient_id=op.pseudonym,
            key=key,
        )
        pid = str(created["id"])
        if self.links.lives_here(op.room_id):  # else the account in the room does it
            await self.links.set_patient_state(op.room_id, pid)
        return {"patient_id": pid}

    async def _link_room(self, op: LinkRoom, key: str) -> Result:
        await self.dossier.link_room(op.patient_id, op.room_id, actor=op.actor, key=key)
        await self.links.set_patient_state(op.room_id, op.patient_id)
        await self.links.furnish_room(op.room_id, op.patient_id)
        return {"patient_id": op.patient_id}

    def _in_room_now(self, op: LeftRoom | BackInRoom) -> bool | None:
        """Whether the member is joined now (None: the room is not this account's). Departures
        and returns are delivered late (the dossier away) or out of order (a gap fetched back
        after a long absence): the file follows the room as it is, not the last event seen."""
        room = self.links.client.rooms.get(str(op.room_id))
        if room is None:
            return None
        return op.user_id in room.users and op.user_id not in room.invited_users

    async def _left_room(self, op: LeftRoom, key: str) -> Result:
        pid = await self._pid(op)
        if self._in_room_now(op):
            return {"patient_id": pid, "skipped": "back in the room"}
        marked = await self.dossier.mark_left_room(
            pid, op.user_id, removed_by=op.removed_by, was_invited=op.was_invited, key=key
        )
        member = marked.get("member")
        if op.room_id and isinstance(member, Mapping):
            # out of the conversation, still in the circle (and the file): say how to end it
            by = member_name(self.links.client, op.room_id, op.removed_by) if op.removed_by else ""
            plain, rich = departure_notice(
                member, by=by, by_id=op.removed_by, was_invited=op.was_invited
            )
            await self.links.io.send_notice(
                op.room_id, plain, rich, txn_id=txn_for(key, "removed-from-room")
            )
        return {"patient_id": pid}

    async def _back_in_room(self, op: BackInRoom, key: str) -> Result:
        pid = await self._pid(op)
        if self._in_room_now(op) is False:
            return {"patient_id": pid, "skipped": "out of the room again"}
        await self.dossier.mark_back_in_room(pid, op.user_id, key=key)
        return {"patient_id": pid}

    async def _add_notebook_entry(self, op: AddNotebookEntry, key: str) -> Result:
        pid = await self._pid(op)
        entry = await self.dossier.add_notebook_entry(
            pid, kind=op.kind, text=op.text, actor=op.actor, key=key
        )
        return {"patient_id": pid, "entry_id": entry.get("id")}

    async def _create_task(self, op: CreateTask, key: str) -> Result:
        pid = await self._pid(op)
        self.announcements.remember_task_command(pid, str(op.actor), op.label, op.command)
        task = await self.dossier.create_task(
            pid,
            label=op.label,
            type=op.type or "Coordination",
            assignees=op.assignees or [],
            due_date=op.due_date,
            actor=op.actor,
            key=key,
        )
        return {"patient_id": pid, "task_id": task.get("id"), "label": task.get("label")}

    async def _close_task(self, op: CloseTask, key: str) -> Result:
        pid = await self._pid(op)
        task = await self.dossier.set_task_state(op.task_id, "fait", actor=op.actor, key=key)
        return {"patient_id": pid, "task_id": task.get("id"), "label": task.get("label")}

    async def _upload_document(self, op: UploadDocument, key: str) -> Result:
        pid = await self._pid(op)
        doc = await self.dossier.upload_document(
            pid,
            category=op.category,
            filename=op.filename,
            data=self.outbox.read_blob(op.blob),
            actor=op.actor,
            key=key,
        )
        return {"patient_id": pid, "document_id": doc.get("id"), "sha256": doc.get("sha256")}

    async def _add_to_circle(self, op: AddToCircle, key: str) -> Result:
        pid = await self._pid(op)
        user = op.member.get("matrix_user_id")
        present = [
            m for m in await self.dossier.circle(pid) if user and m.get("matrix_user_id") == user
        ]
        if present:  # already in (e.g. added on the page meanwhile): nothing to add
            return {"patient_id": pid, "member_id": present[0].get("id")}
        member = await self.dossier.add_circle_member(pid, dict(op.member), actor=op.actor, key=key)
        return {"patient_id": pid, "member_id": member.get("id")}

    async def _end_in_circle(self, op: EndInCircle, key: str) -> Result:
        pid = await self._pid(op)
        await self.dossier.end_circle_member(pid, op.member_id, actor=op.actor, key=key)
        return {"patient_id": pid}

    async def _record_activity(self, op: RecordActivity, key: str) -> Result:
        return await self.dossier.record_activity(op.payload(), key=key)

    # -- told in the room --
    async def on_late_outcome(
        self, item: OutboxItem, result: Mapping[str, Any] | None, refused: Refused | None
    ) -> None:
        """An item delivered (or refused) after its command was answered: say so in the room."""
        if not item.room_id or item.operation in (
            LeftRoom.name,
            BackInRoom.name,
            RecordActivity.name,
        ):
            return  # nobody asked for these in the room: nothing to tell
        if refused is None and not item.told_pending:
            return  # nobody was told it waits (delivered at once, or nobody asked)
        what = words_of(item.operation)
        if refused is None:
            plain = f"✅ Dossier de nouveau joignable : {what} est enregistré(e) dans le dossier."
        elif refused.errcode == "CERCLE_NOT_LINKED":
            plain = f"⚠ {what[0].upper()}{what[1:]} n'a pas pu être enregistré(e) : ce salon n'est lié à aucun dossier."
        else:
            plain = f"⚠ {what[0].upper()}{what[1:]} a été refusé(e) par le dossier."
        await self.links.io.send_notice(
            item.room_id, plain, html.escape(plain), txn_id=txn_for(item.key, "late-outcome")
        )


def departure_notice(
    member: Mapping[str, Any], *, by: str, by_id: str | None, was_invited: bool
) -> tuple[str, str]:
    """Pure: what the room is told when a member of the circle is out of the conversation —
    she left, was removed in a client by ``by_id`` (not through ``!cercle retirer``), or her
    invitation was declined (``by_id`` None) or withdrawn: she keeps her place in the circle,
    and her access to the file if she had it, until a coordinator ends it."""
    user = str(member.get("matrix_user_id") or "")
    name = str(member.get("display_name") or user)
    parts: list[str | None]  # None: where who did it is named (a mention in the rich text)
    if was_invited and by_id is None:
        parts = [f"ℹ️ {name} a décliné l'invitation dans la conversation."]
    elif was_invited:
        parts = [f"ℹ️ L'invitation de {name} dans la conversation a été retirée par ", None, "."]
    elif by_id is None:
        parts = [f"ℹ️ {name} a quitté la conversation."]
    else:
        parts = [f"ℹ️ {name} a été retiré(e) de la conversation par ", None, "."]
    if member.get("has_access"):
        parts.append(
            f" {name} reste habilité(e) sur le dossier du patient. Un coordinateur peut lui "
            "retirer l'accès"
        )
    else:
        parts.append(
            f" {name} reste dans le cercle de soins (sans accès au dossier). Un coordinateur "
            "peut l'en retirer"
        )
    parts.append(f" : « !cercle retirer {user} » ici, ou la page Cercle de soins du dossier.")
    plain = "".join(by if p is None else p for p in parts)
    rich = "".join(mention_html(by_id or "", by) if p is None else html.escape(p) for p in parts)
    return plain, rich
