"""``!patient lier <id>``: a coordinator of the file links the room to it."""

from __future__ import annotations

import html

from bots.commands.dossier.access import FileAccess, away, by, is_coordinator
from bots.commands.registry import CommandContext, CommandRegistry, Power, Text, UserError, Where
from bots.dossier_link.operations import LinkRoom
from bots.outbox import Refused, Unavailable


def register(registry: CommandRegistry, access: FileAccess) -> None:
    links = access.links

    @registry.command(
        "patient",
        subcommand="lier",
        sub_aliases=("link",),
        args=(Text("identifiant", max_length=40, label="l'identifiant du dossier"),),
        help="lie ce salon au dossier patient indiqué (coordinateurs du dossier)",
        where=Where.SHARED_ROOM,
        power=Power.ADMIN,
    )
    async def lier(ctx: CommandContext, identifiant: str) -> None:
        pid = identifiant.strip()
        if links.known_patient(ctx.room_id) == pid:
            raise UserError(f"Ce salon est déjà lié au dossier {pid}.")
        if not links.may_furnish(ctx.room_id):
            raise UserError(
                "Le bot doit être administrateur de ce salon (niveau 100) pour le lier à un "
                "dossier : donnez-lui ce niveau puis recommencez."
            )
        try:
            members = await access.dossier.circle(pid)
        except Refused:
            members = []
        except Unavailable:
            raise away() from None
        if not is_coordinator(members, ctx.sender):
            raise UserError("Dossier introuvable, ou vous n'en êtes pas coordinateur.")
        op = LinkRoom(patient_id=pid, **by(ctx))
        item = await access.write(ctx, "link", op, "la liaison au dossier")
        if item is None:
            return
        url = links.file_url(pid)
        await ctx.reply(
            f"🔗 Salon lié au dossier {pid} : {url}",
            f'🔗 Salon lié au dossier <a href="{html.escape(url)}">{html.escape(pid)}</a>.',
        )
