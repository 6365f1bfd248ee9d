"""Flag commands: !urgent, !demande, !atraiter, !fait, !vu, !flags."""

from __future__ import annotations

import html

from bots.commands.registry import (
    Choice,
    CommandContext,
    CommandRegistry,
    MatrixUser,
    Power,
    Text,
    Where,
)
from bots.flags.model import KIND_WORDS, FlagKind, format_paris
from bots.flags.service import FlagService


def register(registry: CommandRegistry, flags: FlagService, *, motif_max_length: int) -> None:
    def motif() -> Text:
        return Text("motif", optional=True, max_length=motif_max_length, label="le motif")

    async def raise_flag(
        ctx: CommandContext, kind: FlagKind, motif: str | None, assignee: str | None = None
    ) -> None:
        await flags.raise_flag(
            ctx.room_id,
            kind,
            by=ctx.sender,
            at_ms=ctx.origin_server_ts,
            motif=motif,
            assignee=assignee,
            command_event_id=ctx.event_id,
        )

    def raising(name: str, alias: str, kind: FlagKind, help_text: str) -> None:
        """A command that raises ``kind`` on the room, with an optional motif."""

        @registry.command(
            name,
            aliases=(alias,),
            args=(motif(),),
            help=help_text,
            where=Where.SHARED_ROOM,
            power=Power.FLAG,
        )
        async def handler(ctx: CommandContext, motif: str | None) -> None:
            await raise_flag(ctx, kind, motif)

    raising(
        "urgent",
        "urgence",
        FlagKind.URGENT,
        "signale une urgence sur ce salon ; l'équipe est relancée jusqu'à un accusé de réception",
    )
    raising("demande", "request", FlagKind.REQUEST, "signale que ce salon porte une demande")

    @registry.command(
        "atraiter",
        aliases=("todo",),
        args=(MatrixUser("qui", optional=True), motif()),
        help="marque ce salon « à traiter », éventuellement par une personne précise",
        where=Where.SHARED_ROOM,
        power=Power.FLAG,
    )
    async def atraiter(ctx: CommandContext, qui: str | None, motif: str | None) -> None:
        await raise_flag(ctx, FlagKind.TODO, motif, assignee=qui)

    @registry.command(
        "fait",
        aliases=("done",),
        args=(Choice("quoi", optional=True, choices=KIND_WORDS),),
        help="lève un signalement (urgent, demande ou atraiter)",
        where=Where.SHARED_ROOM,
        power=Power.FLAG,
    )
    async def fait(ctx: CommandContext, quoi: str | None) -> None:
        kind = FlagKind(quoi) if quoi else None
        await flags.clear_flag(ctx.room_id, kind, by=ctx.sender, command_event_id=ctx.event_id)

    @registry.command(
        "vu",
        aliases=("ack",),
        help="accuse réception de l'urgence en cours (arrête les relances)",
        where=Where.SHARED_ROOM,
    )
    async def vu(ctx: CommandContext) -> None:
        await flags.acknowledge(
            ctx.room_id, by=ctx.sender, at_ms=ctx.origin_server_ts, source_event_id=ctx.event_id
        )

    @registry.command(
        "dossiers",
        aliases=("flags",),
        help="liste les salons signalés dont vous êtes membre (dans la conversation directe)",
        where=Where.DIRECT,
    )
    async def lister(ctx: CommandContext) -> None:
        rooms = flags.flagged_rooms_of(ctx.sender)
        if not rooms:
            msg = "Aucun salon signalé parmi les vôtres."
            await ctx.reply(msg, html.escape(msg))
            return
        plain = [f"Salons signalés ({len(rooms)}) :"]
        body = [f"<p>Salons signalés ({len(rooms)}) :</p><ul>"]
        for room_id, name, room_flags in rooms:
            details = ", ".join(
                f"{k.label} ({format_paris(room_flags.flags[k].at_ms)})" for k in room_flags.kinds
            )
            link = flags.link(room_id)
            plain.append(f"• {name} — {details} — {link}")
            body.append(
                f'<li><a href="{html.escape(link)}">{html.escape(name)}</a> — {html.escape(details)}</li>'
            )
        body.append("</ul>")
        await ctx.reply("\n".join(plain), "".join(body))
