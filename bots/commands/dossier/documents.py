"""``!doc <catégorie>``, in reply to an attachment: filed among the file's documents."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import aiohttp

from bots.commands.dossier.access import FileAccess, by, say
from bots.commands.registry import CommandContext, CommandRegistry, Text, UserError, Where
from bots.dossier_link.operations import UploadDocument
from bots.export.media import MediaError, MediaFetcher, MediaSource
from bots.matrix.events import replied_to
from bots.outbox import Refused, Unavailable

ATTACHMENTS = ("m.file", "m.image", "m.video", "m.audio")


def register(
    registry: CommandRegistry,
    access: FileAccess,
    *,
    homeserver_url: str,
    max_document_bytes: int = 25 * 1024 * 1024,
) -> None:
    @registry.command(
        "doc",
        aliases=("document",),
        args=(Text("catégorie", max_length=100, label="la catégorie"),),
        help="en réponse à une pièce jointe : la classe dans les documents du dossier",
        where=Where.SHARED_ROOM,
    )
    async def doc(ctx: CommandContext, **values: str) -> None:
        category = values["catégorie"].strip().lower()
        await access.check_before_writing(ctx)
        valid = await known_categories()
        if valid and category not in valid:
            listing = ", ".join(valid)
            raise UserError(f"Catégorie inconnue : « {category[:60]} ». Catégories : {listing}.")
        reply_to = await replied_to(access.client, ctx.room_id, ctx.event_id, wait_for_server=True)
        if reply_to is None:
            raise UserError("Répondez au message qui porte la pièce jointe avec !doc <catégorie>.")
        target = await access.links.io.event_content(ctx.room_id, reply_to)
        source = MediaSource.from_content(target or {})
        if target is None or source is None or target.get("msgtype") not in ATTACHMENTS:
            raise UserError("Le message auquel vous répondez ne porte pas de pièce jointe lisible.")
        filename = str(target.get("filename") or target.get("body") or "document")[:200]
        blob = access.worker.outbox.store_blob(await download(source))
        op = UploadDocument(category=category, filename=filename, blob=blob, **by(ctx))
        if await access.write(ctx, "doc", op, "le document") is not None:
            await say(
                ctx,
                f"📄 « {filename} » classé dans les documents du dossier (catégorie {category}).",
            )

    last_read: list[str] = []

    async def known_categories() -> list[str]:
        """The dossier's categories (the deployment's vocabulary, read from its catalogue);
        while it is away, the last ones read; none read yet: the dossier checks on delivery
        (a category it refuses is told in the room, like any refused write)."""
        with contextlib.suppress(Unavailable, Refused):
            last_read[:] = await access.dossier.document_categories()
        return list(last_read)

    async def download(source: MediaSource) -> bytes:
        with tempfile.TemporaryDirectory(prefix="cercle-doc-") as tmp:
            async with aiohttp.ClientSession() as session:
                fetcher = MediaFetcher(
                    session,
                    homeserver_url,
                    str(access.client.access_token),
                    Path(tmp),
                    max_bytes=max_document_bytes,
                )
                try:
                    fetched = await fetcher.fetch(source)
                except MediaError as exc:
                    raise UserError(f"Pièce jointe illisible : {exc.reason}.") from None
                return fetched.path.read_bytes()
