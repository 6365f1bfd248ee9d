"""Outgoing mail: a reply to a mail in the Courriers room, or ``!courrier``, sent by SMTP
submission (TLS, the professional's own login) and filed in her Sent folder.

Once per Matrix event, across crashes. The composed mail, with a Message-ID derived from the
event, is stored ``pending`` before anything is sent, and moves on through:

- ``submitting``: written (committed) just before the SMTP exchange starts, and kept when
  the exchange fails without a clear refusal (a connection lost after DATA may still have
  delivered the mail);
- ``sent``: the submission server answered 250 to DATA;
- ``filed``: the mail is in the Sent folder (the bridge's APPEND, or the server's own copy).

A restart carries on from the recorded state (the sync loop hands the unfinished event again,
and the retry task walks the table). The one window a local record cannot close is a crash
inside the SMTP exchange, after the server accepted DATA and before ``sent`` is written: the
state is then ``submitting`` and the bridge cannot tell from its own records whether the mail
left. It asks the mailbox: the Sent folder is searched over IMAP for the mail's Message-ID.

- With ``sent_copy_by_server`` (the operator files a copy of every submitted mail in Sent,
  as MSSanté webmail operators do), that copy is the server's receipt: found, the mail is
  marked sent and filed without a second submission; absent, it never left and is submitted.
- Without it, the bridge files its own copy after the 250, so an absent copy proves nothing:
  the mail is submitted again, with the same Message-ID (receivers' clients merge the two),
  and the log says so. At least once rather than maybe never, for clinical mail.

Before its own APPEND the bridge also looks for the Message-ID in Sent, so a crash between
the APPEND and ``filed`` never files the copy twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.policy
import hashlib
import logging
import smtplib
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime, getaddresses

from bridges.mail.config import MailHosts
from bridges.mail.imap import ImapSession, LoginRefused, MailServerError
from bridges.mail.store import BridgeStore, Mailbox
from bridges.mail.vault import CredentialVault
from deployment.conventions import ToldError

log = logging.getLogger(__name__)


class SendRefused(ToldError):
    """The submission server refused this mail for good (French message for the sender)."""


class SendUnavailable(Exception):
    """The submission server cannot be reached now: the mail stays pending, retried."""


@dataclass(frozen=True)
class OutgoingFile:
    filename: str
    mimetype: str
    data: bytes


# -- pure: composing ----------------------------------------------------------------------


def message_id_for(event_id: str, address: str) -> str:
    domain = address.rsplit("@", 1)[-1] or "cercle.invalid"
    return f"<cercle.{hashlib.sha256(event_id.encode()).hexdigest()[:32]}@{domain}>"


def reply_subject(subject: str) -> str:
    return subject if subject.lower().startswith(("re:", "re :")) else f"Re: {subject}"


def compose(
    *,
    sender: str,
    to: Sequence[str],
    subject: str,
    text: str,
    message_id: str,
    date: datetime,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    files: Sequence[OutgoingFile] = (),
) -> EmailMessage:
    """Pure: the mail as submitted (UTF-8, quoted-printable where needed, RFC 2231 names,
    CRLF line ends: RFC 5321 servers refuse bare LF lines longer than 1,000 bytes)."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date.astimezone(UTC))
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        chain = [r for r in references if r != in_reply_to] + [in_reply_to]
        msg["References"] = " ".join(chain[-20:])  # RFC 5322 3.6.4: the chain, trimmed
    msg.set_content(text)
    for f in files:
        maintype, _, subtype = f.mimetype.partition("/")
        msg.add_attachment(
            f.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=f.filename,
        )
    return msg


# -- I/O: submission and the Sent folder ------------------------------------------------


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # tls | starttls
    timeout: float = 60.0
    sent_copy_by_server: bool = False  # the server files each submitted mail in Sent itself


def _connect(settings: SmtpSettings, tls: ssl.SSLContext) -> smtplib.SMTP:
    """Blocking: a connection to the submission server, TLS verified from the first byte
    (``tls``) or after STARTTLS (``starttls``); not yet authenticated."""
    if settings.security == "tls":
        return smtplib.SMTP_SSL(settings.host, settings.port, context=tls, timeout=settings.timeout)
    smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    smtp.starttls(context=tls)
    return smtp


def submit(
    settings: SmtpSettings,
    tls: ssl.SSLContext,
    login: str,
    password: str,
    raw: bytes,
    to: Sequence[str],
) -> None:
    """Blocking (run in a thread): one submission, TLS verified, authenticated."""
    try:
        with _connect(settings, tls) as smtp:
            smtp.login(login, password)
            smtp.sendmail(login, list(to), raw)
    except smtplib.SMTPAuthenticationError as exc:
        raise SendRefused("le serveur d'envoi a refusé votre identifiant ou mot de passe") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise SendRefused(
            "adresse refusée par le serveur d'envoi : " + ", ".join(sorted(exc.recipients))
        ) from exc
    except smtplib.SMTPResponseException as exc:
        if 500 <= exc.smtp_code < 600:
            raise SendRefused(
                f"courrier refusé par le serveur d'envoi (code {exc.smtp_code})"
            ) from exc
        raise SendUnavailable(str(exc.smtp_code)) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise SendUnavailable(type(exc).__name__) from exc


def check_login(settings: SmtpSettings, tls: ssl.SSLContext, login: str, password: str) -> None:
    """Blocking (run in a thread): the submission server accepts this login (nothing sent)."""
    try:
        with _connect(settings, tls) as smtp:
            smtp.login(login, password)
    except smtplib.SMTPAuthenticationError as exc:
        raise SendRefused("identifiant ou mot de passe refusé") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise SendUnavailable(type(exc).__name__) from exc


@dataclass
class MailSender:
    store: BridgeStore
    vault: CredentialVault
    smtp: SmtpSettings
    imap_host: str
    imap_port: int
    tls: ssl.SSLContext
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    async def send(
        self, event_id: str, mailbox: Mailbox, message: EmailMessage | None
    ) -> tuple[str, str] | None:
        """Carry the mail of ``event_id`` to its end; ``message`` is used the first time.
        (To, Subject) of the mail carried, or None when there is nothing (more) to send."""
        async with self._lock:  # one SMTP exchange at a time per bridge: a small operator quota
            row = self.store.outgoing(event_id)
            if row is None:
                if message is None:
                    return None
                self.store.add_outgoing(
                    event_id, mailbox.owner, str(message["Message-ID"]), message.as_bytes()
                )
                row = self.store.outgoing(event_id)
                assert row is not None
            state, _, raw = row
            if state in ("refused", "filed") or raw is None:
                return None
            password = self.vault.open(mailbox.sealed_password, owner=mailbox.owner)
            message_id = row[1]
            hosts = mailbox.hosts(
                MailHosts(
                    self.imap_host,
                    self.imap_port,
                    self.smtp.host,
                    self.smtp.port,
                    self.smtp.security,
                )
            )
            smtp = dataclasses.replace(
                self.smtp, host=hosts.smtp_host, port=hosts.smtp_port, security=hosts.smtp_security
            )
            if state == "submitting" and await self._in_sent(hosts, mailbox, password, message_id):
                # crashed after the server accepted it: its copy in Sent is the receipt
                log.info("courrier déjà accepté avant l'arrêt event=%s : pas renvoyé", event_id)
                self.store.set_outgoing(event_id, "filed")
                state = "filed"
            elif state == "submitting" and not self.smtp.sent_copy_by_server:
                log.warning(
                    "envoi précédent sans réponse event=%s : issue inconnue, soumis de nouveau "
                    "(même Message-ID)",
                    event_id,
                )
            if state in ("pending", "submitting"):
                to = _recipients(raw)
                self.store.set_outgoing(event_id, "submitting")
                try:
                    await asyncio.to_thread(
                        submit, smtp, self.tls, mailbox.address, password, raw, to
                    )
                except SendRefused:
                    self.store.set_outgoing(event_id, "refused")  # told once, never retried
                    raise
                self.store.set_outgoing(event_id, "sent")
                log.info("courrier envoyé event=%s", event_id)
                state = "sent"
            if state == "sent":
                if not self.smtp.sent_copy_by_server:
                    await self._file(hosts, mailbox, password, raw, message_id)
                self.store.set_outgoing(event_id, "filed")
            headers = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
            return str(headers.get("To", "")), str(headers.get("Subject", ""))

    async def _in_sent(
        self, hosts: MailHosts, mailbox: Mailbox, password: str, message_id: str
    ) -> bool:
        async with self._sent_folder(hosts, mailbox, password) as (session, folder):
            return await session.holds_message_id(folder, message_id)

    async def _file(
        self, hosts: MailHosts, mailbox: Mailbox, password: str, raw: bytes, message_id: str
    ) -> None:
        async with self._sent_folder(hosts, mailbox, password) as (session, folder):
            if not await session.holds_message_id(folder, message_id):  # a replay: filed once
                await session.append(raw, folder)

    @asynccontextmanager
    async def _sent_folder(
        self, hosts: MailHosts, mailbox: Mailbox, password: str
    ) -> AsyncIterator[tuple[ImapSession, str]]:
        """An IMAP session on the mailbox and the name of its Sent folder; a refused login
        or a failing server, then or while it is used, ends the sending as such."""
        session = ImapSession(hosts.imap_host, hosts.imap_port, self.tls)
        try:
            await session.open(mailbox.address, password)
            yield session, await session.sent_folder()
        except LoginRefused as exc:
            raise SendRefused("la messagerie a refusé la connexion (dossier Envoyés)") from exc
        except MailServerError as exc:
            raise SendUnavailable("imap") from exc
        finally:
            await session.close()


def _recipients(raw: bytes) -> list[str]:
    msg = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    fields = [str(v) for h in ("To", "Cc", "Bcc") for v in msg.get_all(h, [])]
    return [a for _, a in getaddresses(fields) if a]
