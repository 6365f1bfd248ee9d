"""The bot's Matrix session: one fixed device, a persistent encrypted crypto store, and an
access token kept on disk so that a restart never logs in again nor creates a new device.

- ``<var>/bot/session.json`` (0600): user id, device id, access token.
- ``<var>/bot/store/``: nio's SQLite crypto store, pickled with ``Secrets.bot_pickle_key``
  (never nio's default ``DEFAULT_KEY``).
The password is used once, at the very first start (or if the server revoked the token:
the same device id is then logged in again, its keys kept).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nio import AsyncClient, AsyncClientConfig, LoginResponse, WhoamiError

from bots.config import BotConfig
from bots.matrix.cross_signing import ensure_cross_signed
from bots.matrix.crypto_store import CercleStore
from bots.matrix.ledger import EventLedger
from bots.matrix.room_snapshot import RoomSnapshot
from bots.matrix.sync_loop import EventHandlers, SyncLoop
from bots.matrix.undecryptable import UndecryptableEvents
from deployment.conventions import write_private

log = logging.getLogger(__name__)


class SessionError(Exception):
    """The bot cannot open its session; French message for the operator."""


@dataclass(frozen=True)
class StoredSession:
    user_id: str
    device_id: str
    access_token: str = field(repr=False)  # the bot's credential: never in a log line

    @classmethod
    def load(cls, path: Path) -> StoredSession | None:
        if not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(data["user_id"], data["device_id"], data["access_token"])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(asdict(self)).encode("utf-8"))


def client_config(pickle_key: str, backoff_max_seconds: float) -> AsyncClientConfig:
    if not pickle_key or pickle_key == "DEFAULT_KEY":
        raise SessionError("clé de chiffrement du magasin du bot absente (secrets/bot_pickle_key)")
    return AsyncClientConfig(
        encryption_enabled=True,
        store=CercleStore,  # nio's store without its empty write after every sync
        pickle_key=pickle_key,
        store_sync_tokens=False,  # the bot saves its token itself, after handling a batch
        max_timeouts=None,  # homeserver away: nio retries with exponential back-off …
        max_timeout_retry_wait_time=backoff_max_seconds,  # … capped here
        backoff_factor=0.2,
        request_timeout=60,
    )


def _store_file(store_dir: Path, user_id: str, device_id: str) -> Path:
    return store_dir / f"{user_id}_{device_id}.db"


async def open_session(config: BotConfig, *, password: str, pickle_key: str) -> AsyncClient:
    """A logged-in client with its crypto store loaded and its device keys uploaded."""
    config.store_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(config.data_dir, 0o700)
    stored = StoredSession.load(config.session_file)
    device_id = stored.device_id if stored else config.device_id
    store_exists = _store_file(config.store_dir, config.user_id, device_id).exists()
    if stored and not store_exists:
        # A new store under an existing device id breaks key uploads ("One time key …
        # already exists"): refuse rather than half-work.
        raise SessionError(
            f"le magasin de clés du bot a disparu ({config.store_dir}) alors que l'appareil "
            f"{device_id} existe : supprimez {config.session_file} et l'appareil du compte "
            "du bot, puis configurez un nouvel identifiant d'appareil (bot.device_id)"
        )
    client = AsyncClient(
        config.homeserver_url,
        config.user_id,
        device_id=device_id,
        store_path=str(config.store_dir),
        config=client_config(pickle_key, config.backoff_max_seconds),
    )
    try:
        if stored:
            client.restore_login(stored.user_id, stored.device_id, stored.access_token)
            who = await client.whoami()
            if isinstance(who, WhoamiError) and who.status_code in ("M_UNKNOWN_TOKEN",):
                log.warning(
                    "jeton du bot révoqué : nouvelle connexion sur l'appareil %s", device_id
                )
                await _login(client, config, password, device_id)
            elif isinstance(who, WhoamiError):
                raise SessionError(f"le serveur refuse la session du bot ({who.status_code})")
        else:
            await _login(client, config, password, device_id)
        if client.should_upload_keys:
            await client.keys_upload()
    except BaseException:
        await client.close()
        raise
    return client


async def open_cross_signed_session(
    config: BotConfig, *, password: str, pickle_key: str, cross_signing_key: str
) -> AsyncClient:
    """`open_session`, then the device cross-signed with the account's kept keys
    (``bots.matrix.cross_signing``); the client closed again when that fails."""
    client = await open_session(config, password=password, pickle_key=pickle_key)
    try:
        await ensure_cross_signed(
            client,
            key_file=config.cross_signing_key_file,
            encryption_key=cross_signing_key,
            password=password,
        )
    except BaseException:
        await client.close()
        raise
    return client


def session_sync_loop(
    client: AsyncClient,
    ledger: EventLedger,
    handlers: EventHandlers,
    config: BotConfig,
    *,
    snapshot: RoomSnapshot | None = None,
) -> SyncLoop:
    """The sync loop of a session `open_session` opened (the bot's, the mail bridge's), timed
    by the same configuration; its undecryptable events kept in the same ledger."""
    return SyncLoop(
        client,
        ledger,
        handlers,
        UndecryptableEvents(client, ledger),
        timeout_ms=config.sync_timeout_ms,
        backoff_max_seconds=config.backoff_max_seconds,
        timeline_limit=config.sync_timeline_limit,
        snapshot=snapshot,
    )


async def _login(client: AsyncClient, config: BotConfig, password: str, device_id: str) -> None:
    resp = await client.login(password=password, device_name=config.display_name)
    if not isinstance(resp, LoginResponse):
        raise SessionError(f"connexion du bot refusée ({getattr(resp, 'status_code', '?')})")
    if resp.device_id != device_id:
        raise SessionError(f"le serveur a attribué un autre appareil ({resp.device_id})")
    StoredSession(resp.user_id, resp.device_id, resp.access_token).save(config.session_file)
    log.info("bot connecté, appareil %s", resp.device_id)
