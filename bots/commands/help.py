"""!aide / !help, generated from the registry."""

from __future__ import annotations

from bots.commands.registry import CommandContext, CommandRegistry, Text


def register(registry: CommandRegistry) -> None:
    @registry.command(
        "aide",
        aliases=("help",),
        args=(Text("commande", optional=True, max_length=40, label="le nom de la commande"),),
        help="liste les commandes, ou détaille l'une d'elles",
    )
    async def aide(ctx: CommandContext, commande: str | None) -> None:
        plain, body = registry.help_text(commande)
        await ctx.reply(plain, body)
