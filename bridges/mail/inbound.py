"""Incoming mail: each professional's INBOX watched (IDLE, polling without it) and every mail
posted in her Courriers room exactly once.

Exactly once, across restarts, crashes and reconnections:
- the position is (UIDVALIDITY, last UID posted), moved in the same SQLite transaction that
  records the mail's Matrix event, only once the mail and all its files are in the room;
- every Matrix send of a mail has a transaction id derived from (owner, UIDVALIDITY, UID,
  part): a mail re-sent after a crash between the post and the record is recognised by
  Synapse (same device, same transaction id) and answered with the first event;
- a mail whose Message-ID was already posted (the server changed UIDVALIDITY and renumbered
  everything) is skipped.
A mail the bridge cannot parse is posted as a notice with its raw ``.eml``; a mail larger
than the configured limit as a notice saying so. Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bots.matrix.io import MatrixIO, mention_html, txn_for
from bridges.mail.imap import ImapSession, LoginRefused, MailServerError, tls_context
from bridges.mail.message import UnparseableMail, message_id_of, parse_mail
from bridges.mail.render import mail_message, unparseable_notice
from bridges.mail.store import BridgeStore, Mailbox, PostedMail
from bridges.mail.vault import CredentialVault

log = logging.getLogger(__name__)

STATE_CONNECTING = "connexion"
STATE_CONNECTED = "connectée"
STATE_ERROR = "erreur"


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    ca_file: object  # Path | None
    poll_seconds: float
    idle_seconds: float
    max_mail_size: int
    backoff_max_seconds: float


Propose = Callable[[str, tuple[str, ...]], Awaitable[str | None]]  # (owner, INS) -> label


class MailPoster:
    """Posts one mail (message + files) in a Courriers room; replays give the same events."""

    def __init__(self, io: MatrixIO, propose: Propose | None = None) -> None:
        self.io = io
        self.propose = propose

    async def post(
        self, room_id: str, intent: str, raw: bytes, owner: str = ""
    ) -> tuple[str, str | None, tuple[str, ...]]:
        """(event id of the mail message, Message-ID, References)."""
        try:
            mail = await asyncio.to_thread(parse_mail, raw)  # seconds for a 20 MB mail
        except UnparseableMail as exc:
            log.warning("courrier illisible (%s) %s : publié tel quel", exc, intent.split("|")[0])
            plain, body = unparseable_notice()
            event_id = await self.io.send_notice(
                room_id, plain, body, txn_id=txn_for(intent, "unparseable")
            )
            await self._post_whole_mail(room_id, raw, intent)
            return event_id, None, ()
        proposal = None
        if mail.ins and self.propose is not None:
            proposal = await self.propose(owner, mail.ins)
        content, cut = mail_message(mail, {"message_id": mail.message_id}, proposal)
        event_id = await self.io.send(room_id, "m.room.message", content, txn_for(intent, "mail"))
        for i, attachment in enumerate(mail.attachments):
            await self.io.send_file(
                room_id,
                attachment.data,
                filename=attachment.filename,
                mimetype=attachment.mimetype,
                txn_id=txn_for(intent, f"file-{i}"),
            )
        if cut:
            await self._post_whole_mail(room_id, raw, intent)
        return event_id, mail.message_id, mail.references

    async def _post_whole_mail(self, room_id: str, raw: bytes, intent: str) -> None:
        """The mail as received, ``courrier.eml``: when it could not be read, or its text was
        cut to fit a message."""
        await self.io.send_file(
            room_id,
            raw,
            filename="courrier.eml",
            mimetype="message/rfc822",
            txn_id=txn_for(intent, "eml"),
        )


Notify = Callable[[Mailbox], Awaitable[None]]


class MailboxWatcher:
    """One professional's INBOX, for as long as the bridge runs (cancel to stop)."""

    def __init__(
        self,
        owner: str,
        store: BridgeStore,
        vault: CredentialVault,
        poster: MailPoster,
        settings: ImapSettings,
        *,
        on_login_refused: Notify,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.owner = owner
        self.store = store
        self.vault = vault
        self.poster = poster
        self.settings = settings
        self.on_login_refused = on_login_refused
        self._sleep = sleep
        self._tls = tls_context(settings.ca_file)  # type: ignore[arg-type]
        self.posted_count = 0

    async def run(self) -> None:
        delay = 1.0
        while True:
            mailbox = self.store.mailbox(self.owner)
            if (
                mailbox is None
                or mailbox.room_id is None
                or mailbox.login_refused
                or not mailbox.connected
            ):
                return  # nothing to watch until `!connecter` starts a new watcher
            session = ImapSession(
                mailbox.imap_host or self.settings.host,
                mailbox.imap_port or self.settings.port,
                self._tls,
            )
            try:
                self.store.set_state(self.owner, STATE_CONNECTING)
                await session.open(
                    mailbox.address, self.vault.open(mailbox.sealed_password, owner=self.owner)
                )
                self.store.set_state(self.owner, STATE_CONNECTED)
                log.info("boîte de %s connectée", self.owner)
                delay = 1.0
                while True:
                    # until a pass finds nothing: a mail that arrived during the pass was
                    # announced in an answer to a FETCH (aioimaplib drops such untagged
                    # EXISTS), and IDLE would not announce it again
                    while await self.catch_up(session, mailbox.room_id):
                        pass
                    if session.supports_idle:
                        await session.wait_for_news(self.settings.idle_seconds)
                    else:
                        await self._sleep(self.settings.poll_seconds)
            except LoginRefused:
                log.warning("connexion refusée par le serveur de messagerie pour %s", self.owner)
                if self.store.mark_login_refused(self.owner, mailbox.credentials_version):
                    await self.on_login_refused(mailbox)
                return
            except MailServerError as exc:
                self.store.set_state(self.owner, STATE_ERROR, "serveur de messagerie injoignable")
                log.warning(
                    "boîte de %s : serveur injoignable (%s), nouvel essai dans %.0f s",
                    self.owner,
                    exc,
                    delay,
                )
                await self._sleep(delay)
                delay = min(delay * 2, self.settings.backoff_max_seconds)
            finally:
                await session.close()

    async def catch_up(self, session: ImapSession, room_id: str) -> int:
        """Post every mail of the INBOX past the saved position; how many UIDs were new."""
        mailbox = self.store.mailbox(self.owner)
        assert mailbox is not None
        validity = session.uidvalidity
        last_uid = mailbox.last_uid
        if mailbox.uidvalidity != validity:  # the server renumbered its mails
            log.warning("UIDVALIDITY changée pour %s : relecture (doublons écartés)", self.owner)
            last_uid = 0
            self.store.reset_position(self.owner, validity, last_uid)
        uids = await session.uids_after(last_uid)
        for uid in uids:
            await self._one(session, room_id, validity, uid)
        return len(uids)

    async def _one(self, session: ImapSession, room_id: str, validity: int, uid: int) -> None:
        if self.store.posted(self.owner, validity, uid):
            self.store.advance(self.owner, validity, uid)
            return
        intent = f"{self.owner}|{validity}|{uid}"
        size = await session.size(uid)
        if size is not None and size > self.settings.max_mail_size:
            plain = (
                f"Un courrier de {size // (1024 * 1024)} Mo dépasse la taille que Cercle relaie "
                f"({self.settings.max_mail_size // (1024 * 1024)} Mo) : consultez-le dans votre "
                "messagerie."
            )
            event_id = await self.poster.io.send_notice(
                room_id, plain, html.escape(plain), txn_id=txn_for(intent, "too-big")
            )
            self._record(validity, uid, event_id, None, ())
            return
        raw = await session.fetch(uid)
        if raw is None:  # expunged meanwhile
            self.store.advance(self.owner, validity, uid)
            return
        message_id = message_id_of(raw)
        if message_id and self.store.posted_message_id(self.owner, message_id):
            self.store.advance(self.owner, validity, uid)
            return
        event_id, message_id, references = await self.poster.post(room_id, intent, raw, self.owner)
        self._record(validity, uid, event_id, message_id, references)

    def _record(
        self, validity: int, uid: int, event_id: str, message_id: str | None, refs: tuple[str, ...]
    ) -> None:
        self.store.record_posted(PostedMail(self.owner, validity, uid, event_id, message_id, refs))
        self.posted_count += 1
        log.info("courrier publié owner=%s uid=%d event=%s", self.owner, uid, event_id)


def login_refused_notice(owner: str, address: str) -> tuple[str, str]:
    plain = (
        f"La messagerie sécurisée a refusé la connexion de votre boîte {address} "
        "(identifiant ou mot de passe). Les courriers ne sont plus relayés : envoyez à nouveau "
        "!connecter <adresse> <mot de passe> dans votre conversation avec ce bot, ou reliez-la "
        "sur la page Courriers du dossier."
    )
    body = (
        f"{mention_html(owner)} : la messagerie sécurisée a refusé la connexion de votre boîte "
        f"{html.escape(address)} (identifiant ou mot de passe). Les courriers ne sont plus "
        "relayés : envoyez à nouveau <code>!connecter &lt;adresse&gt; &lt;mot de passe&gt;</code> "
        "dans votre conversation avec ce bot, ou reliez-la sur la page Courriers du dossier."
    )
    return plain, body
