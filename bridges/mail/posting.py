"""One incoming mail posted in a Courriers room: its message, then each attachment as an
encrypted file (an image a client can show inline as ``m.image``, anything else ``m.file``).

Every event has a transaction id derived from the mail's identity (owner, UIDVALIDITY, UID)
and its part: a mail posted again after a crash gives the same events (Synapse answers a
known transaction with the first event).

The wait for uploads is hidden: the first file is encrypted and uploaded while the message
is sent, each next one while the previous is posted; at most two files' ciphertext are in
memory at once, and the room shows message, file 1, file 2 … in that order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bots.matrix.io import MatrixIO, UploadedFile, txn_for
from bridges.mail.message import Attachment, ParsedMail
from bridges.mail.render import mail_message, unparseable_notice

Propose = Callable[[str, tuple[str, ...]], Awaitable[str | None]]  # (owner, INS) -> label


class Stopwatch:
    """When each step of one mail's way happened (monotonic seconds), from the server's
    announcement: the log line says where a mail's delay went (bench/mail_bridge.py reads it)."""

    def __init__(self, start: float | None = None) -> None:
        self.start = time.monotonic() if start is None else start
        self.marks: list[tuple[str, float]] = []

    def mark(self, step: str) -> None:
        self.marks.append((step, time.monotonic()))

    def __str__(self) -> str:
        steps = " ".join(f"{step}=+{at - self.start:.3f}" for step, at in self.marks)
        return f"t0={self.start:.3f} {steps}"


def abandon(task: asyncio.Task[Any]) -> None:
    """Cancel work started ahead that will not be used, without waiting for it (awaiting it
    here could swallow a cancellation of the caller); its outcome is collected when done."""
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


@dataclass(frozen=True)
class _File:
    attachment: Attachment
    purpose: str  # its part of the mail, in its transaction id


def _eml(raw: bytes) -> _File:
    return _File(Attachment("courrier.eml", "message/rfc822", raw), "eml")


class MailPoster:
    """Posts one mail (message + files) in a Courriers room; replays give the same events."""

    def __init__(self, io: MatrixIO, propose: Propose | None = None) -> None:
        self.io = io
        self.propose = propose

    async def post(
        self,
        room_id: str,
        intent: str,
        raw: bytes,
        mail: ParsedMail | None,
        owner: str = "",
        clock: Stopwatch | None = None,
    ) -> str:
        """The event id of the mail's message. ``mail`` None: the mail could not be parsed,
        a notice is posted with the raw ``.eml`` attached."""
        clock = clock or Stopwatch()
        if mail is None:
            plain, body = unparseable_notice()
            return await self._with_files(
                room_id,
                intent,
                [_eml(raw)],
                self.io.send_notice(room_id, plain, body, txn_id=txn_for(intent, "unparseable")),
                clock,
            )
        proposal = None
        if mail.ins and self.propose is not None:
            proposal = await self.propose(owner, mail.ins)
        content, cut = mail_message(mail, {"message_id": mail.message_id}, proposal)
        files = [_File(a, f"file-{i}") for i, a in enumerate(mail.attachments)]
        if cut:  # the text was cut to fit an event: the whole mail goes along
            files.append(_eml(raw))
        message = self.io.send(room_id, "m.room.message", content, txn_for(intent, "mail"))
        return await self._with_files(room_id, intent, files, message, clock)

    async def _with_files(
        self,
        room_id: str,
        intent: str,
        files: Sequence[_File],
        message: Awaitable[str],
        clock: Stopwatch,
    ) -> str:
        """``message`` sent, then ``files`` posted in order, each uploaded one step ahead."""

        def upload(i: int) -> asyncio.Task[UploadedFile] | None:
            if i >= len(files):
                return None
            return asyncio.ensure_future(self.io.upload_encrypted(files[i].attachment.data))

        ahead = upload(0)
        try:
            event_id = await message
            clock.mark("message")
            for i, file in enumerate(files):
                assert ahead is not None
                uploaded = await ahead
                ahead = upload(i + 1)
                await self._send(room_id, file, uploaded, txn_for(intent, file.purpose))
            clock.mark("fichiers")
            return event_id
        finally:
            if ahead is not None:
                abandon(ahead)

    async def _send(self, room_id: str, file: _File, uploaded: UploadedFile, txn_id: str) -> str:
        attachment, image = file.attachment, file.attachment.image
        return await self.io.send_uploaded(
            room_id,
            uploaded,
            filename=attachment.filename,
            mimetype=image.mimetype if image else attachment.mimetype,
            txn_id=txn_id,
            msgtype="m.image" if image else "m.file",
            info={"w": image.width, "h": image.height} if image else None,
        )
