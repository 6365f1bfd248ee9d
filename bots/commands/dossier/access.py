"""What every dossier command shares: the room's file, the sender's access, the write.

Writes go through the durable outbox under an idempotency key derived from the command's
event id: a command handled twice (replayed sync, restart) writes once, and a dossier that
is down gets the write as soon as it is back (the reply says so).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nio import AsyncClient

from bots.commands.registry import CommandContext, UserError
from bots.dossier_client import DossierClient
from bots.dossier_link.links import FileLinks, NotLinked
from bots.dossier_link.operations import Operation
from bots.outbox import DONE, FAILED, OutboxItem, OutboxWorker, Unavailable, idempotency_key

UNAVAILABLE = (
    "⏳ Le dossier est momentanément indisponible : {what} sera enregistré(e) dès son retour."
)
AWAY = "Le dossier est momentanément indisponible ; réessayez dans un instant."
NOT_LINKED = "Ce salon n'est lié à aucun dossier patient."


def away() -> UserError:
    return UserError(AWAY)


def by(ctx: CommandContext) -> dict[str, Any]:
    """The fields every write carries: who asks, from which room."""
    return {"actor": ctx.sender, "room_id": ctx.room_id}


@dataclass
class FileAccess:
    client: AsyncClient
    links: FileLinks
    worker: OutboxWorker
    dossier: DossierClient
    wait_seconds: float = 3.0

    async def patient_of(self, ctx: CommandContext) -> str:
        try:
            return await self.links.resolve_patient(ctx.room_id)
        except NotLinked:
            raise UserError(
                f"{NOT_LINKED} Un coordinateur peut le lier : "
                "!patient lier <identifiant du dossier>"
            ) from None
        except Unavailable:
            raise away() from None

    async def circle_of(self, pid: str) -> list[dict[str, Any]]:
        try:
            return await self.dossier.circle(pid)
        except Unavailable:
            raise away() from None

    async def require_access(self, ctx: CommandContext, pid: str, *, reading: bool) -> None:
        """The dossier's rule, applied by the bot acting for the sender: only members of the
        care circle with access read or write the file. The dossier away: writes are queued
        (the sender is in the patient's room), reads are refused."""
        try:
            members = await self.dossier.circle(pid)
        except Unavailable:
            if reading:
                raise away() from None
            return
        require_member(members, ctx.sender)

    async def require_in_circle(self, pid: str, users: Sequence[str]) -> None:
        """A task goes to people of the care circle (the dossier away: checked on delivery)."""
        try:
            members = {m.get("matrix_user_id") for m in await self.dossier.circle(pid)}
        except Unavailable:
            return
        outside = [u for u in users if u not in members]
        if outside:
            raise UserError(
                f"{', '.join(outside)} ne fait pas partie du cercle de soins de ce patient : "
                "ajoutez-le d'abord (!cercle ajouter ou !inviter)."
            )

    async def check_before_writing(self, ctx: CommandContext) -> None:
        """A write in the file for the sender: her access checked now, even when the bot
        does not know the room's file yet (asked to the dossier). With the dossier away,
        the write waits in the outbox and the dossier checks her access when it arrives
        (she is named as the acting person): it is never written unchecked."""
        try:
            pid = await self.links.resolve_patient(ctx.room_id)
        except NotLinked:
            raise UserError(NOT_LINKED) from None
        except Unavailable:
            return
        await self.require_access(ctx, pid, reading=False)

    async def write(
        self, ctx: CommandContext, purpose: str, op: Operation, what: str
    ) -> OutboxItem | None:
        """Submit through the outbox; None (after replying) when the dossier is down."""
        item = await self.worker.submit(
            idempotency_key(ctx.event_id, purpose),
            op.name,
            op.payload(),
            room_id=ctx.room_id,
            wait_seconds=self.wait_seconds,
        )
        if item.status == DONE:
            return item
        if item.status == FAILED:
            if item.last_error == "CERCLE_NOT_LINKED":
                raise UserError(NOT_LINKED)
            raise UserError(f"Le dossier a refusé {what} ({item.last_error}).")
        msg = UNAVAILABLE.format(what=what)
        await ctx.reply(msg, html.escape(msg))
        return None


def require_member(members: list[dict[str, Any]], user: str) -> None:
    if not any(m.get("matrix_user_id") == user and m.get("has_access") for m in members):
        raise UserError(
            "Vous ne faites pas partie du cercle de soins de ce patient avec accès au dossier : "
            "demandez à un coordinateur de vous y ajouter (!cercle ajouter)."
        )


def is_coordinator(members: list[dict[str, Any]], user: str) -> bool:
    return any(
        m.get("matrix_user_id") == user and m.get("role") == "coordinateur" and m.get("has_access")
        for m in members
    )


def require_coordinator(members: list[dict[str, Any]], user: str) -> None:
    if not is_coordinator(members, user):
        raise UserError("Réservé aux coordinateurs du cercle de soins de ce patient.")


async def say(ctx: CommandContext, msg: str) -> None:
    """A plain reply (its HTML is the escaped text)."""
    await ctx.reply(msg, html.escape(msg))
