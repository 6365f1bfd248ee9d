"""``!note`` and ``!transmission``: an entry in the file's liaison notebook."""

from __future__ import annotations

from bots.commands.dossier.access import FileAccess, by, say
from bots.commands.registry import CommandContext, CommandRegistry, Text, Where
from bots.dossier_link.operations import AddNotebookEntry


def register(registry: CommandRegistry, access: FileAccess) -> None:
    def notebook_command(name: str, alias: str, kind: str, word: str) -> None:
        @registry.command(
            name,
            aliases=(alias,),
            args=(Text("texte", max_length=8000, label="le texte"),),
            help=f"écrit une {word} dans le cahier de liaison du dossier",
            where=Where.SHARED_ROOM,
        )
        async def handler(ctx: CommandContext, texte: str) -> None:
            await access.check_before_writing(ctx)
            op = AddNotebookEntry(kind=kind, text=texte, **by(ctx))
            if await access.write(ctx, kind, op, f"la {word}") is not None:
                await say(
                    ctx, f"🗒 {word[0].upper()}{word[1:]} enregistrée dans le cahier de liaison."
                )

    notebook_command("note", "memo", "note", "note")
    notebook_command("transmission", "handover", "transmission", "transmission")
