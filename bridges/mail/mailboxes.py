"""The professionals' mailboxes as the bridge runs them: connecting one (the login tried
first, the password sealed, the Courriers room and folder made), one watcher task per
mailbox, a posted mail fetched back from IMAP (replies and ``!classer`` read the original,
the bridge stores no mail content), a file of the room downloaded to be attached."""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from nio import AsyncClient

from bots.commands.registry import UserError
from bots.export.media import MediaError, MediaFetcher, MediaSource
from bots.matrix.io import MatrixIO, txn_for
from bridges.mail.config import MailBridgeConfig, MailHosts
from bridges.mail.imap import ImapSession, LoginRefused, MailServerError, tls_context
from bridges.mail.inbound import ImapSettings, MailboxWatcher, login_refused_notice
from bridges.mail.outbound import SendRefused, SendUnavailable, SmtpSettings, check_login
from bridges.mail.posting import MailPoster
from bridges.mail.rooms import ensure_courriers, wait_for_room
from bridges.mail.store import BridgeStore, Mailbox
from bridges.mail.vault import CredentialVault

log = logging.getLogger(__name__)


@dataclass
class Mailboxes:
    config: MailBridgeConfig
    client: AsyncClient
    io: MatrixIO
    store: BridgeStore
    vault: CredentialVault
    http: aiohttp.ClientSession
    poster: MailPoster  # every watcher posts its mails into the Courriers rooms through it
    tls: ssl.SSLContext = field(init=False)
    watchers: dict[str, asyncio.Task[None]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.tls = tls_context(self.config.ca_file)

    def watch_all(self) -> None:
        for mailbox in self.store.mailboxes():
            if mailbox.room_id is not None and mailbox.connected:
                self.watch(mailbox.owner)

    async def stop(self) -> None:
        for task in self.watchers.values():
            task.cancel()
        await asyncio.gather(*self.watchers.values(), return_exceptions=True)
        self.watchers.clear()

    def watch(self, owner: str) -> None:
        """(Re)start the watcher of ``owner``'s mailbox."""
        old = self.watchers.pop(owner, None)
        if old is not None:
            old.cancel()
        settings = ImapSettings(
            self.config.imap_host,
            self.config.imap_port,
            self.config.ca_file,
            self.config.poll_seconds,
            self.config.idle_seconds,
            self.config.max_mail_size,
            self.config.backoff_max_seconds,
        )
        watcher = MailboxWatcher(
            owner,
            self.store,
            self.vault,
            self.poster,
            settings,
            on_login_refused=self._login_refused,
        )
        self.watchers[owner] = asyncio.create_task(self._guarded(watcher), name=f"imap-{owner}")

    async def _guarded(self, watcher: MailboxWatcher) -> None:
        while True:
            try:
                await watcher.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:  # a Matrix failure while posting: the mail is retried later
                log.exception(
                    "veilleur de boîte en échec owner=%s ; reprise dans 5 s", watcher.owner
                )
                self.store.set_state(watcher.owner, "erreur", "publication dans Matrix en échec")
                await asyncio.sleep(5)

    async def connect_mailbox(
        self, owner: str, address: str, password: str, hosts: MailHosts | None = None
    ) -> str:
        """``hosts``: servers she named (the page), among ``mail_bridge.allowed_servers``."""
        default = self.config.default_hosts()
        if hosts is not None and not self.config.hosts_allowed(hosts):
            raise UserError(
                "Ce serveur de messagerie n'est pas autorisé par l'exploitant de Cercle "
                "(mail_bridge.allowed_servers) : rien n'a été enregistré."
            )
        own = hosts if hosts is not None and hosts != default else None
        use = own or default
        if own is not None:  # her own submission server: its login checked now too
            await self._check_submission(use, address, password)
        session = ImapSession(use.imap_host, use.imap_port, self.tls)
        try:
            await session.open(address, password)  # refused now rather than in the watcher
            # where the bridge starts: the INBOX as it is now, but the latest `backfill`
            # mails; fixed here, so a mail arriving from now on is never taken for backlog
            existing = await session.all_uids()
            keep = self.config.backfill
            older = existing[:-keep] if keep else existing
            start = (session.uidvalidity, older[-1] if older else 0)
        except LoginRefused:
            raise UserError(
                "La messagerie a refusé cet identifiant ou ce mot de passe : rien n'a été "
                "enregistré. Vérifiez-les puis recommencez."
            ) from None
        except MailServerError:
            raise UserError(
                "Le serveur de messagerie ne répond pas ; rien n'a été enregistré, réessayez "
                "dans un instant."
            ) from None
        finally:
            await session.close()
        known = self.store.mailbox(owner)
        self.store.save_credentials(owner, address, self.vault.seal(password, owner=owner), own)
        if known is None or known.address != address or known.uidvalidity is None:
            self.store.reset_position(owner, *start)
        room_id, space_id = await ensure_courriers(
            self.client, self.io, owner, self.config.server_name
        )
        self.store.set_rooms(owner, room_id, space_id)
        await wait_for_room(self.client, room_id)
        self.watch(owner)
        log.info("boîte reliée pour %s room=%s", owner, room_id)
        return room_id

    async def _check_submission(self, hosts: MailHosts, address: str, password: str) -> None:
        smtp = SmtpSettings(hosts.smtp_host, hosts.smtp_port, hosts.smtp_security, timeout=30)
        try:
            await asyncio.to_thread(check_login, smtp, self.tls, address, password)
        except SendRefused as exc:
            raise UserError(f"Serveur d'envoi : {exc.message} ; rien n'a été enregistré.") from None
        except SendUnavailable:
            raise UserError(
                "Le serveur d'envoi ne répond pas ; rien n'a été enregistré, vérifiez son nom "
                "et son port."
            ) from None

    def _imap(self, mailbox: Mailbox) -> ImapSession:
        hosts = mailbox.hosts(self.config.default_hosts())
        return ImapSession(hosts.imap_host, hosts.imap_port, self.tls)

    async def disconnect(self, owner: str) -> bool:
        """Her watcher stopped and her password erased; False when nothing was connected."""
        mailbox = self.store.mailbox(owner)
        if mailbox is None or not mailbox.connected:
            return False
        task = self.watchers.pop(owner, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.store.disconnect(owner)
        log.info("boîte déconnectée pour %s", owner)
        return True

    async def recent(self, mailbox: Mailbox, limit: int) -> list[tuple[str, bytes | None]]:
        """(event id, header bytes or None when gone) of her latest mails posted."""
        posted = self.store.recent_mails(mailbox.owner, limit)
        if not posted:
            return []
        session = self._imap(mailbox)
        try:
            await session.open(
                mailbox.address, self.vault.open(mailbox.sealed_password, owner=mailbox.owner)
            )
            out = []
            for mail in posted:
                same = session.uidvalidity == mail.uidvalidity
                out.append((mail.event_id, await session.fetch_headers(mail.uid) if same else None))
            return out
        except LoginRefused:
            raise UserError("La messagerie a refusé la connexion de votre boîte.") from None
        except MailServerError:
            raise UserError("La messagerie ne répond pas ; réessayez dans un instant.") from None
        finally:
            await session.close()

    async def fetch_mail(self, mailbox: Mailbox, event_id: str) -> bytes:
        posted = self.store.mail_of_event(event_id)
        if posted is None:
            raise UserError("Ce message n'est pas un courrier relayé.")
        session = self._imap(mailbox)
        try:
            await session.open(
                mailbox.address, self.vault.open(mailbox.sealed_password, owner=mailbox.owner)
            )
            raw = None
            if session.uidvalidity == posted.uidvalidity:
                raw = await session.fetch(posted.uid)
        except MailServerError:
            raise UserError("La messagerie ne répond pas ; réessayez dans un instant.") from None
        finally:
            await session.close()
        if raw is None:
            raise UserError("Ce courrier n'est plus dans votre boîte de réception.")
        return raw

    async def fetch_file(self, content: Mapping[str, Any]) -> bytes:
        source = MediaSource.from_content(content)
        if source is None:
            raise UserError("Un fichier du salon est illisible : il n'a pas pu être joint.")
        with tempfile.TemporaryDirectory(dir=self.config.data_dir) as tmp:
            fetcher = MediaFetcher(
                self.http,
                self.config.homeserver_url,
                str(self.client.access_token),
                Path(tmp),
                max_bytes=self.config.max_mail_size,
            )
            try:
                fetched = await fetcher.fetch(source)
            except MediaError as exc:
                raise UserError(f"Fichier non joint : {exc.reason}.") from None
            return await asyncio.to_thread(fetched.path.read_bytes)

    async def _login_refused(self, mailbox: Mailbox) -> None:
        if mailbox.room_id is None:
            return
        plain, body = login_refused_notice(mailbox.owner, mailbox.address)
        await self.io.send_notice(
            mailbox.room_id,
            plain,
            body,
            mentions=[mailbox.owner],
            txn_id=txn_for(f"{mailbox.owner}|{mailbox.credentials_version}", "login-refused"),
        )
