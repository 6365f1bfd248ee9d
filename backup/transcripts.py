"""The conversation of a room as a PDF, for the retention archive: the bot's own export
(history paging, decryption, rendering) with the bot's device and keys.

The running bot is the only writer of its crypto store (olm account, megolm and olm
sessions): the retention job never opens that store for writing. It reads a **snapshot**,
taken with SQLite's online backup API from read-only connections (consistent while the bot
writes), into a private temporary directory deleted afterwards; whatever nio writes while
exporting (sessions touched, a key request recorded) goes into the copy and is thrown away.
No sync (the running bot's to-device messages stay its own), no key upload; the stored
access token and device are reused for the read-only history requests. So the job may run
while the bot runs (no need to stop it, no refusal) and cannot corrupt the bot's sessions.
Keys the bot received after the snapshot are not in it: the job reads closed files, whose
conversations ended long before."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import aiohttp
from nio import AsyncClient

from backup.snapshot import SQLITE_HEADER, snapshot_sqlite
from bots.config import BotConfig
from bots.export.history import HistoryRequest, fetch_history
from bots.export.media import MediaFetcher
from bots.export.pdf import render_transcript
from bots.export.transcript import TranscriptHeader
from bots.matrix.session import StoredSession, client_config
from deployment.profile import Profile
from deployment.secrets import Secrets


def snapshot_store(source: Path, target: Path) -> None:
    """A consistent private copy of the bot's crypto store directory: SQLite databases
    through the online backup API (their -wal/-shm/-journal files are part of that copy),
    other files copied as they are."""
    target.mkdir(mode=0o700, parents=True)
    if not source.is_dir():
        return
    for path in sorted(source.iterdir()):
        if not path.is_file() or path.name.endswith(("-wal", "-shm", "-journal")):
            continue
        with open(path, "rb") as fh:
            is_sqlite = fh.read(len(SQLITE_HEADER)) == SQLITE_HEADER
        if is_sqlite:
            snapshot_sqlite(path, target / path.name, read_only=True)  # the running bot's
        else:
            shutil.copy2(path, target / path.name)
            os.chmod(target / path.name, 0o600)


class BotTranscripts:
    """``configs``: every account of the bot (``bot.shards``, bots/shards.py), the front
    first — a room is read with the keys of the account that lives in it."""

    def __init__(
        self,
        profile: Profile,
        secrets: Secrets,
        config: BotConfig | None = None,
        *,
        configs: Sequence[BotConfig] | None = None,
    ):
        if configs is None:
            configs = [config] if config else BotConfig.every_account(profile)
        self.accounts = [(c, secrets.bot_account(c.shard).pickle_key) for c in configs]

    async def __call__(self, room_id: str, title: str, target: Path) -> None:
        config, pickle_key, stored = await self._account_in(room_id)
        with tempfile.TemporaryDirectory(prefix="cercle-bot-store-") as copy:
            store = Path(copy) / "store"
            await asyncio.to_thread(snapshot_store, config.store_dir, store)
            await self._export(config, pickle_key, stored, store, room_id, title, target)

    async def _account_in(self, room_id: str) -> tuple[BotConfig, str, StoredSession]:
        """The account of the bot that is in ``room_id`` (the only one when there is one)."""
        for config, pickle_key in self.accounts:
            stored = StoredSession.load(config.session_file)
            if stored is None:
                continue
            if len(self.accounts) == 1 or await _joined(config, stored, room_id):
                return config, pickle_key, stored
        if len(self.accounts) == 1:
            raise RuntimeError("session du bot absente : la conversation ne peut être relue")
        raise RuntimeError(
            "aucun compte du bot n'est dans ce salon : la conversation ne peut être relue"
        )

    async def _export(
        self,
        config: BotConfig,
        pickle_key: str,
        stored: StoredSession,
        store: Path,
        room_id: str,
        title: str,
        target: Path,
    ) -> None:
        client = AsyncClient(
            config.homeserver_url,
            stored.user_id,
            device_id=stored.device_id,
            store_path=str(store),  # the snapshot, never the running bot's store
            config=client_config(pickle_key, config.backoff_max_seconds),
        )
        client.restore_login(stored.user_id, stored.device_id, stored.access_token)
        try:
            async with aiohttp.ClientSession() as session:
                media = MediaFetcher(
                    session, config.homeserver_url, stored.access_token, target.parent
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


async def _joined(config: BotConfig, stored: StoredSession, room_id: str) -> bool:
    """Whether the account of ``stored`` is a member of ``room_id`` now (a read of its own
    membership; an account that was never in the room may not read it: not joined)."""
    url = (
        f"{config.homeserver_url}/_matrix/client/v3/rooms/{quote(room_id)}/state/"
        f"m.room.member/{quote(stored.user_id)}"
    )
    headers = {"Authorization": f"Bearer {stored.access_token}"}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        if response.status in (403, 404):
            return False
        response.raise_for_status()
        body = await response.json()
    return isinstance(body, dict) and body.get("membership") == "join"
