"""The mail bridge, wired in one place: its own Matrix account and device (cross-signed,
like the bot's), its sync loop and ledger (the bot's, reused), one watcher per mailbox,
the SMTP sender and, when a dossier is configured, ``!classer``.

Why a separate account and process (``@cercle-courrier``) rather than the coordination bot:
the bridge holds mailbox passwords and talks to outside servers; as its own process it can
be left off (``mail_bridge.enabled``), restarted or crash without touching the patient
rooms' bot, and its Matrix identity is in no patient room (it never sees clinical
conversations it does not need). The professional sees who speaks: mail comes from
"Courriers", coordination from "Cercle".
"""

from __future__ import annotations

import asyncio
import html
import logging
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from nio import AsyncClient

from bots.dossier_client import DossierClient
from bots.matrix.io import MatrixIO, txn_for
from bots.matrix.ledger import EventLedger, open_database
from bots.matrix.session import open_cross_signed_session, session_sync_loop
from bots.matrix.sync_loop import SyncLoop
from bots.matrix.trust import MemberDeviceTrust
from bridges.mail.config import MailBridgeConfig
from bridges.mail.control import Control, serve
from bridges.mail.filing import Filing
from bridges.mail.handlers import BridgeHandlers
from bridges.mail.mailboxes import Mailboxes
from bridges.mail.outbound import MailSender, SendRefused, SendUnavailable, SmtpSettings
from bridges.mail.posting import MailPoster
from bridges.mail.render import sent_notice
from bridges.mail.store import BridgeStore
from bridges.mail.vault import CredentialVault

log = logging.getLogger(__name__)

RETRY_SECONDS = 60.0  # mails left pending (submission server away) tried again this often


@dataclass
class MailBridge:
    config: MailBridgeConfig
    client: AsyncClient
    db: sqlite3.Connection
    store: BridgeStore
    io: MatrixIO
    mailboxes: Mailboxes
    sender: MailSender
    sync_loop: SyncLoop
    handlers: BridgeHandlers
    dossier: DossierClient | None
    http: aiohttp.ClientSession
    control: Control | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _control_runner: web.AppRunner | None = None

    @classmethod
    async def create(
        cls,
        config: MailBridgeConfig,
        *,
        password: str,
        pickle_key: str,
        cross_signing_key: str,
        vault: CredentialVault,
        dossier_token: str | None = None,
        control_secret: str | None = None,
    ) -> MailBridge:
        client = await open_cross_signed_session(
            config.session_config(),
            password=password,
            pickle_key=pickle_key,
            cross_signing_key=cross_signing_key,
        )
        return cls._wire(config, client, vault, dossier_token, control_secret)

    @classmethod
    def _wire(
        cls,
        config: MailBridgeConfig,
        client: AsyncClient,
        vault: CredentialVault,
        token: str | None,
        control_secret: str | None = None,
    ) -> MailBridge:
        db = open_database(config.database_path)
        store = BridgeStore(db)
        ledger = EventLedger(db)
        io = MatrixIO(client, MemberDeviceTrust(client))
        http = aiohttp.ClientSession()
        dossier = DossierClient(config.dossier_url, token) if config.dossier_url and token else None
        filing = Filing(dossier) if dossier is not None else None
        poster = MailPoster(io, filing.proposal if filing else None)
        mailboxes = Mailboxes(config, client, io, store, vault, http, poster)
        sender = MailSender(
            store,
            vault,
            SmtpSettings(
                config.smtp_host,
                config.smtp_port,
                config.smtp_security,
                sent_copy_by_server=config.sent_copy_by_server,
            ),
            config.imap_host,
            config.imap_port,
            mailboxes.tls,
        )
        handlers = BridgeHandlers(
            client,
            io,
            store,
            sender,
            server_name=config.server_name,
            connect_mailbox=mailboxes.connect_mailbox,
            fetch_mail=mailboxes.fetch_mail,
            fetch_file=mailboxes.fetch_file,
            filing=filing,
            directory=dossier,
        )
        sync_loop = session_sync_loop(client, ledger, handlers, config.session_config())
        control = (
            Control(
                store, mailboxes, filing, io, secret=control_secret, server_name=config.server_name
            )
            if control_secret and config.control_socket is not None
            else None
        )
        return cls(
            config,
            client,
            db,
            store,
            io,
            mailboxes,
            sender,
            sync_loop,
            handlers,
            dossier,
            http,
            control,
        )

    # -- lifecycle --
    async def start(self) -> None:
        """Sync, then watch every connected mailbox; returns once the first sync is done."""
        self._tasks = [asyncio.create_task(self.sync_loop.run(), name="courrier-sync")]
        waiter = asyncio.create_task(self.sync_loop.stats.first_sync_done.wait())
        done, _ = await asyncio.wait([waiter, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            for task in done:
                task.result()
        self.mailboxes.watch_all()
        if self.control is not None and self.config.control_socket is not None:
            self._control_runner = await serve(self.control, self.config.control_socket)
        self._tasks.append(asyncio.create_task(self._retry_outgoing(), name="courrier-retry"))

    async def stop(self) -> None:
        if self._control_runner is not None:
            await self._control_runner.cleanup()
        self.sync_loop.stop()
        await self.mailboxes.stop()
        await self.close()

    async def close(self) -> None:
        """The bridge's tasks cancelled where they stand, then its connections and database
        closed: the end of ``stop`` once the mailboxes stopped."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.sync_loop.close()
        await self.http.close()
        if self.dossier is not None:
            await self.dossier.close()
        await self.client.close()
        self.db.close()

    async def wait(self) -> None:
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception():
                raise task.exception()  # type: ignore[misc]

    async def _retry_outgoing(self) -> None:
        """Mails left unsent or unfiled (server away, crash) carried on, at start and then
        every RETRY_SECONDS."""
        while True:
            for event_id, owner in self.store.unfinished_outgoing():
                mailbox = self.store.mailbox(owner)
                if mailbox is None or mailbox.room_id is None or not mailbox.connected:
                    continue
                try:
                    carried = await self.sender.send(event_id, mailbox, None)
                except SendUnavailable:
                    continue  # next round
                except SendRefused as exc:  # marked refused: told once, never retried
                    text = f"Courrier non envoyé : {exc.message}."
                    await self.io.send_notice(
                        mailbox.room_id,
                        text,
                        html.escape(text),
                        txn_id=txn_for(event_id, "refused"),
                        reply_to=event_id,
                    )
                    continue
                if carried is not None:
                    plain, body = sent_notice(*carried)
                    await self.io.send_notice(
                        mailbox.room_id,
                        plain,
                        body,
                        txn_id=txn_for(event_id, "sent"),
                        reply_to=event_id,
                    )
            await asyncio.sleep(RETRY_SECONDS)
