"""One professional's IMAP connection (TLS from the first byte, aioimaplib): login, the
INBOX's UIDVALIDITY and UIDs, one mail fetched at a time (``BODY.PEEK[]``: the mail stays
unread), IDLE for push, APPEND to the Sent folder.

Failures become two exceptions: ``LoginRefused`` (the server said NO to the credentials:
never retried by itself) and ``MailServerError`` (anything else: retried with back-off).
Neither carries the server's text, which may echo the login.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import aioimaplib

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")
_FETCH_UID = re.compile(rb"\bUID (\d+)\b")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_LIST_SENT = re.compile(rb'\\Sent\b[^"]*"[^"]*" "?([^"]+?)"?$')


T = TypeVar("T")


class MailServerError(Exception):
    """The mail server is unreachable or answered something unexpected (retried)."""


class LoginRefused(MailServerError):
    """The server refused the login and password (not retried until they change)."""


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificates and host names verified; ``ca_file`` trusted in addition to the system."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class ImapSession:
    def __init__(self, host: str, port: int, context: ssl.SSLContext, timeout: float = 60.0):
        self._host = host
        self._port = port
        self._context = context
        self._timeout = timeout
        self._client: aioimaplib.IMAP4 | None = None
        self._lost = asyncio.Event()  # the connection dropped (seen at once, even in IDLE)
        self.uidvalidity = 0
        self.uidnext = 0
        self.news_at: float | None = None  # when IDLE last announced a change (monotonic)

    async def open(self, login: str, password: str) -> None:
        try:
            client = aioimaplib.IMAP4(
                self._host,
                self._port,
                timeout=self._timeout,
                ssl_context=self._context,
                conn_lost_cb=lambda _exc: self._lost.set(),
            )
            self._client = client
            await client.wait_hello_from_server()
            resp = await client.login(login, password)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            raise MailServerError(type(exc).__name__) from exc
        if resp.result != "OK":
            await self.close()
            raise LoginRefused("login")
        await self.select_inbox()

    async def select_inbox(self) -> None:
        resp = await self._run(self._ready().select("INBOX"))
        if resp.result != "OK":
            raise MailServerError("select")
        text = b"\n".join(bytes(line) for line in resp.lines)
        validity = _UIDVALIDITY.search(text)
        if validity is None:
            raise MailServerError("no UIDVALIDITY")
        self.uidvalidity = int(validity.group(1))
        nxt = _UIDNEXT.search(text)
        self.uidnext = int(nxt.group(1)) if nxt else 0

    @property
    def supports_idle(self) -> bool:
        return bool(self._ready().has_capability("IDLE"))

    async def uids_after(self, last_uid: int) -> list[int]:
        """The INBOX's UIDs greater than ``last_uid``, ascending."""
        resp = await self._run(self._ready().uid_search(f"UID {last_uid + 1}:*", charset=None))
        if resp.result != "OK":
            raise MailServerError("search")
        uids: set[int] = set()
        for line in resp.lines[:-1]:  # the last line is the completion text
            words = bytes(line).split()
            if words and words[0] == b"SEARCH":
                words = words[1:]
            if all(w.isdigit() for w in words):
                uids.update(int(w) for w in words)
        # "n:*" always matches the last message, even below n (RFC 3501 6.4.8)
        return sorted(u for u in uids if u > last_uid)

    async def new_mails(self, last_uid: int) -> tuple[list[tuple[int, int | None]], bool]:
        """(UID, size in bytes) of the INBOX's mails past ``last_uid``, ascending, in one
        command where a SEARCH then a FETCH of each size would take a round trip each; and
        whether the server announced more mail meanwhile (list again before an IDLE)."""
        sizes, announced = await self._announcing(lambda: self._sizes(f"{last_uid + 1}:*"))
        if sizes is None:  # some servers refuse "n:*" on an empty INBOX: SEARCH first
            uids, announced = await self._announcing(lambda: self.uids_after(last_uid))
            sizes = await self._sizes(",".join(map(str, uids))) if uids else {}
            if sizes is None:
                raise MailServerError("fetch sizes")
        # "n:*" always matches the last message, even below n (RFC 3501 6.4.8)
        return sorted((uid, size) for uid, size in sizes.items() if uid > last_uid), announced

    async def _announcing(self, call: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``call``'s result, and whether the server announced new mail (EXISTS) while it
        ran. The server tells of a mail once, at the end of whichever command follows its
        arrival, and aioimaplib drops that announcement during a FETCH or a SEARCH: a mail
        delivered just before the last listing would then wait until another woke the IDLE.
        A NOOP sent right behind ``call`` collects it (the library hands unsolicited
        responses to a pending NOOP), in the same round trip."""
        client = self._ready()
        result, noop = await asyncio.gather(call(), self._run(client.noop()))
        return result, any(b"EXISTS" in bytes(line) for line in noop.lines)

    async def _sizes(self, uid_set: str) -> dict[int, int | None] | None:
        """UID → RFC822.SIZE of the mails in ``uid_set``; None when the server refuses."""
        resp = await self._run(self._ready().uid("fetch", uid_set, "(UID RFC822.SIZE)"))
        if resp.result != "OK":
            return None
        found: dict[int, int | None] = {}
        for line in resp.lines[:-1]:  # the last line is the completion text
            text = bytes(line)
            uid = _FETCH_UID.search(text)
            if b"FETCH" in text and uid is not None:
                size = _SIZE.search(text)
                found[int(uid.group(1))] = int(size.group(1)) if size else None
        return found

    async def all_uids(self) -> list[int]:
        return await self.uids_after(0)

    async def fetch(self, uid: int) -> bytes | None:
        """The raw mail, or None when it was expunged meanwhile."""
        return await self._fetch_part(uid, "BODY.PEEK[]")

    async def fetch_headers(self, uid: int) -> bytes | None:
        """From, Subject and Date of a mail (not marked read), or None when expunged."""
        return await self._fetch_part(uid, "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]")

    async def _fetch_part(self, uid: int, part: str) -> bytes | None:
        """The literal the server sends for ``part`` of mail ``uid`` (``PEEK``: not marked
        read), or None when that mail was expunged meanwhile."""
        resp = await self._run(self._ready().uid("fetch", str(uid), f"(UID {part})"))
        if resp.result != "OK":
            raise MailServerError("fetch")
        lines = resp.lines
        for i, line in enumerate(lines):
            if isinstance(line, bytes | bytearray) and b"FETCH" in line and line.endswith(b"}"):
                found = _FETCH_UID.search(bytes(line))
                if found and int(found.group(1)) == uid and i + 1 < len(lines):
                    return bytes(lines[i + 1])
        return None

    async def wait_for_news(self, timeout: float) -> None:
        """IDLE until the server announces a change or ``timeout`` s pass; a dropped
        connection (or the server's BYE) raises ``MailServerError`` at once."""
        client = self._ready()
        try:
            idle = await client.idle_start(timeout=timeout)
            while client.has_pending_idle():
                push = await self._push_or_lost(client, timeout + 5)
                lines = [bytes(x) for x in push] if isinstance(push, list) else []
                if any(line.startswith(b"BYE") for line in lines):
                    raise MailServerError("BYE")
                if push == aioimaplib.STOP_WAIT_SERVER_PUSH or any(
                    b"EXISTS" in line or b"EXPUNGE" in line for line in lines
                ):
                    self.news_at = time.monotonic()
                    client.idle_done()
                    async with asyncio.timeout(self._timeout):  # see conventions.wait_set
                        await idle
                    return
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            raise MailServerError(type(exc).__name__) from exc

    async def _push_or_lost(self, client: aioimaplib.IMAP4, timeout: float) -> object:
        push = asyncio.ensure_future(client.wait_server_push(timeout=timeout))
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait({push, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (push, lost):
                if not task.done():
                    task.cancel()
        if push not in done:
            raise MailServerError("connexion perdue")
        return push.result()

    async def sent_folder(self) -> str:
        resp = await self._run(self._ready().list('""', "*"))
        for line in resp.lines:
            found = _LIST_SENT.search(bytes(line).strip())
            if found:
                return found.group(1).decode()
        return "Sent"

    async def holds_message_id(self, folder: str, message_id: str) -> bool:
        """Whether ``folder`` holds a mail with this Message-ID (the INBOX stays selected)."""
        if not message_id or any(c in message_id for c in '"\\\r\n'):
            return False
        resp = await self._run(self._ready().examine(f'"{folder}"'))
        if resp.result != "OK":
            raise MailServerError("examine")
        try:
            found = await self._run(
                self._ready().uid_search(f'HEADER Message-ID "{message_id}"', charset=None)
            )
            if found.result != "OK":
                raise MailServerError("search")
            words = [w for line in found.lines[:-1] for w in bytes(line).split()]
            return any(w.isdigit() for w in words)
        finally:
            await self.select_inbox()

    async def append(self, raw: bytes, folder: str) -> None:
        resp = await self._run(self._ready().append(raw, mailbox=folder, flags=r"(\Seen)"))
        if resp.result != "OK":
            raise MailServerError("append")

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.has_pending_idle():  # LOGOUT inside IDLE waits out its 5 s for nothing
                client.idle_done()
            if client.get_state() in ("AUTH", "SELECTED"):
                await asyncio.wait_for(client.logout(), 5)
        except Exception:  # closing: nothing to do about a failure
            pass
        transport = getattr(client.protocol, "transport", None)
        if transport is not None:
            transport.close()

    def _ready(self) -> aioimaplib.IMAP4:
        if self._client is None or self._lost.is_set():
            raise MailServerError("not connected")
        return self._client

    async def _run(self, call: object) -> aioimaplib.Response:
        try:
            resp: aioimaplib.Response = await call  # type: ignore[misc]
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            raise MailServerError(type(exc).__name__) from exc
        return resp
