"""The conversation of a room as a PDF, for the retention archive: the bot's own export
(history paging, decryption, rendering) with the bot's device and keys.

The bot's crypto store is opened for reading only: no sync (the running bot's to-device
messages stay its own), no key upload; its stored access token and device are reused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from nio import AsyncClient

from bots.config import BotConfig
from bots.export.history import HistoryRequest, fetch_history
from bots.export.media import MediaFetcher
from bots.export.pdf import render_transcript
from bots.export.transcript import TranscriptHeader
from bots.matrix.session import StoredSession, client_config
from deployment.profile import Profile
from deployment.secrets import Secrets


class BotTranscripts:
    def __init__(self, profile: Profile, secrets: Secrets) -> None:
        self.config = BotConfig.from_profile(profile)
        self.pickle_key = secrets.bot_pickle_key

    async def __call__(self, room_id: str, title: str, target: Path) -> None:
        stored = StoredSession.load(self.config.session_file)
        if stored is None:
            raise RuntimeError("session du bot absente : la conversation ne peut être relue")
        client = AsyncClient(
            self.config.homeserver_url,
            stored.user_id,
            device_id=stored.device_id,
            store_path=str(self.config.store_dir),
            config=client_config(self.pickle_key, self.config.backoff_max_seconds),
        )
        client.restore_login(stored.user_id, stored.device_id, stored.access_token)
        try:
            async with aiohttp.ClientSession() as session:
                media = MediaFetcher(
                    session, self.config.homeserver_url, stored.access_token, target.parent
                )
                history = await fetch_history(client, HistoryRequest(room_id), media)
            header = TranscriptHeader(
                room_label=title,
                period_label="conversation entière (archivage à la fin de la durée légale)",
                exported_by="Cercle (conservation des dossiers)",
                exported_at=datetime.now(UTC),
                participants=history.participants,
            )
            await asyncio.to_thread(render_transcript, header, history.entries, target)
        finally:
            await client.close()
