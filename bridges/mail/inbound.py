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

The delay from the server's announcement to the message in the room is kept short: the new
mails are listed with their sizes in one command, and the next mail is read and parsed while
the current one is posted (the store is only read and written in UID order, by the poster).
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bots.matrix.io import mention_html, txn_for
from bridges.mail.imap import ImapSession, LoginRefused, MailServerError, tls_context
from bridges.mail.message import ParsedMail, UnparseableMail, message_id_of, parse_mail
from bridges.mail.posting import MailPoster, Stopwatch, abandon
from bridges.mail.store import BridgeStore, Mailbox, PostedMail
from bridges.mail.vault import CredentialVault

log = logging.getLogger(__name__)

READ_AHEAD_MAX = 5 * 1024 * 1024  # a larger mail is fetched in its turn (memory: two at most)
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
                    # until a pass finds nothing and the server announced nothing during
                    # it: IDLE only tells of mail the server has not announced yet
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

    async def catch_up(self, session: ImapSession, room_id: str) -> bool:
        """Post every mail of the INBOX past the saved position; whether to look again (mails
        were new, or the server announced more during the pass)."""
        mailbox = self.store.mailbox(self.owner)
        assert mailbox is not None
        validity = session.uidvalidity
        last_uid = mailbox.last_uid
        if mailbox.uidvalidity != validity:  # the server renumbered its mails
            log.warning("UIDVALIDITY changée pour %s : relecture (doublons écartés)", self.owner)
            last_uid = 0
            self.store.reset_position(self.owner, validity, last_uid)
        news_at, session.news_at = session.news_at, None
        listed, announced = await session.new_mails(last_uid)

        def read(i: int) -> asyncio.Task[_Read]:
            clock = Stopwatch(news_at)
            clock.mark("liste")
            uid, size = listed[i]
            return asyncio.ensure_future(self._read(session, uid, size, clock))

        ahead: asyncio.Task[_Read] | None = None
        try:
            for i in range(len(listed)):
                incoming = await (ahead or read(i))
                ahead = None
                if i + 1 < len(listed) and (listed[i + 1][1] or 0) <= READ_AHEAD_MAX:
                    ahead = read(i + 1)  # the IMAP connection is the reader's alone
                await self._post(room_id, validity, incoming)
        finally:
            if ahead is not None:
                abandon(ahead)  # the connection is closed after this: no answer is awaited
        return bool(listed) or announced

    async def _read(
        self, session: ImapSession, uid: int, size: int | None, clock: Stopwatch
    ) -> _Read:
        """One mail fetched and parsed; nothing decided yet (the store is the poster's)."""
        if size is not None and size > self.settings.max_mail_size:
            return _Read(uid, clock, size, None)
        raw = await session.fetch(uid)
        clock.mark("lu")
        if raw is None:  # expunged meanwhile
            return _Read(uid, clock, size, None)
        try:
            mail: ParsedMail | None = await asyncio.to_thread(parse_mail, raw)  # s for 20 MB
        except UnparseableMail as exc:
            log.warning("courrier illisible (%s) %s : publié tel quel", exc, self.owner)
            mail = None
        clock.mark("analyse")
        message_id = mail.message_id if mail is not None else message_id_of(raw)
        return _Read(uid, clock, size, raw, mail, message_id)

    async def _post(self, room_id: str, validity: int, incoming: _Read) -> None:
        """The mail posted (or skipped) and the position moved past it, in UID order."""
        uid, clock = incoming.uid, incoming.clock
        if self.store.posted(self.owner, validity, uid):
            self.store.advance(self.owner, validity, uid)
            return
        intent = f"{self.owner}|{validity}|{uid}"
        size = incoming.size
        if size is not None and size > self.settings.max_mail_size:
            plain = (
                f"Un courrier de {size // (1024 * 1024)} Mo dépasse la taille que Cercle relaie "
                f"({self.settings.max_mail_size // (1024 * 1024)} Mo) : consultez-le dans votre "
                "messagerie."
            )
            event_id = await self.poster.io.send_notice(
                room_id, plain, html.escape(plain), txn_id=txn_for(intent, "too-big")
            )
            self._record(validity, uid, event_id, None, (), clock)
            return
        raw, mail, message_id = incoming.raw, incoming.mail, incoming.message_id
        if raw is None or (message_id and self.store.posted_message_id(self.owner, message_id)):
            self.store.advance(self.owner, validity, uid)  # expunged, or posted under another UID
            return
        event_id = await self.poster.post(room_id, intent, raw, mail, self.owner, clock)
        references = mail.references if mail is not None else ()
        message_id = mail.message_id if mail is not None else None
        self._record(validity, uid, event_id, message_id, references, clock)

    def _record(
        self,
        validity: int,
        uid: int,
        event_id: str,
        message_id: str | None,
        refs: tuple[str, ...],
        clock: Stopwatch,
    ) -> None:
        self.store.record_posted(PostedMail(self.owner, validity, uid, event_id, message_id, refs))
        clock.mark("noté")
        self.posted_count += 1
        log.info("courrier publié owner=%s uid=%d event=%s %s", self.owner, uid, event_id, clock)


@dataclass(frozen=True)
class _Read:
    """One mail as read from the INBOX, waiting for its turn to be posted."""

    uid: int
    clock: Stopwatch
    size: int | None
    raw: bytes | None  # None: too big (not fetched) or expunged meanwhile
    mail: ParsedMail | None = None  # None with raw: unparseable, posted as its .eml
    message_id: str | None = None


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
