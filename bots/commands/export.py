"""!export / !pdf: a PDF transcript of the room, uploaded encrypted (``bots.export.service``).

The command answers at once (« Export en cours… ») and the export runs as its own task.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bots.commands.registry import CommandContext, CommandRegistry, Text, UserError
from bots.export.options import ExportOptionError, parse_export_options
from bots.export.service import ExportRequest, ExportService


def register(registry: CommandRegistry, exports: ExportService) -> None:
    @registry.command(
        "export",
        aliases=("pdf",),
        args=(Text("options", optional=True, max_length=200, label="les options"),),
        help="transcription PDF de la conversation (options : depuis <date>, jusqu'à <date>, "
        "derniers <N>, sans pièces jointes, en privé ; en réponse à un message : à partir "
        "de ce message)",
    )
    async def export(ctx: CommandContext, options: str | None) -> None:
        now = (
            datetime.fromtimestamp(ctx.origin_server_ts / 1000, UTC)
            if ctx.origin_server_ts
            else datetime.now(UTC)
        )
        try:
            parsed = parse_export_options(options or "", now=now)
        except ExportOptionError as error:
            raise UserError(error.message) from None
        progress = await exports.announce(ctx.room_id, ctx.event_id)
        exports.start(
            ExportRequest(
                ctx.room_id,
                ctx.sender,
                ctx.event_id,
                parsed,
                None,
                now,
                reply_resolved=False,
                options_text=options or "",
                progress_event_id=progress,
            )
        )
