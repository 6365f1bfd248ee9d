"""The history of a patient's conversation as a PDF, for a newcomer who cannot read it
(issue 11: the fallback of :mod:`bots.dossier_link.arrivals`), sent in the bot's direct chat."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from nio import AsyncClient

from bots.export.history import HistoryRequest, fetch_history
from bots.export.media import MediaFetcher
from bots.export.naming import export_filename, room_label
from bots.export.pdf import render_transcript
from bots.export.transcript import TranscriptHeader
from bots.matrix.io import MatrixIO, txn_for


class TranscriptSender:
    """The history of a room as a PDF (the export engineer's rendering) in a direct chat."""

    def __init__(self, client: AsyncClient, io: MatrixIO, homeserver_url: str) -> None:
        self.client = client
        self.io = io
        self.homeserver_url = homeserver_url

    async def send(self, room_id: str, invitee: str, dm_room_id: str) -> None:
        now = datetime.now(UTC)
        with tempfile.TemporaryDirectory(prefix="cercle-histoire-") as tmp:
            directory = Path(tmp)
            async with aiohttp.ClientSession() as session:
                media = MediaFetcher(
                    session, self.homeserver_url, str(self.client.access_token), directory
                )
                history = await fetch_history(self.client, HistoryRequest(room_id), media)
            label = room_label(self.client, room_id)
            header = TranscriptHeader(
                room_label=label,
                period_label="historique de la conversation avant votre arrivée",
                exported_by="Cercle (accueil d'un nouveau membre)",
                exported_at=now,
                participants=history.participants,
            )
            path = directory / "historique.pdf"
            await asyncio.to_thread(render_transcript, header, history.entries, path)
            filename = export_filename(label, history, now).replace("Transcription_", "Historique_")
            await self.io.send_uploaded(
                dm_room_id,
                await self.io.upload_encrypted_file(path),  # the PDF never whole in memory
                filename=filename,
                mimetype="application/pdf",
                txn_id=txn_for(f"history-{room_id}-{invitee}", "pdf"),
                body=f"Historique de la conversation « {label} » (PDF)",
            )
        text = (
            f"Vous avez rejoint la conversation « {label} ». Votre application ne peut pas "
            "lire l'historique chiffré d'avant votre arrivée : le voici en PDF."
        )
        await self.io.send_notice(
            dm_room_id, text, text, txn_id=txn_for(f"history-{room_id}-{invitee}", "note")
        )
