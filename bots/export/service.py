"""The export of a room as a PDF transcript, run in the background (``!export`` / ``!pdf``).

Each export runs as its own task — the history is paged and decrypted on the event loop into
a spool file, the PDF is drawn from it in a worker thread, then encrypted and uploaded from
disk — so the bot keeps answering other rooms meanwhile, and its memory does not grow with
the room. An export cut short by a restart is resumed (``pending``). The PDF goes to the room,
or with « en privé » to the direct chat with the requester; the export is announced in the
room (who, when, period).
"""

from __future__ import annotations

import asyncio
import html
import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import aiohttp
from nio import AsyncClient

from bots.background_tasks import BackgroundTasks
from bots.export.history import History, HistoryError, HistoryRequest, fetch_history
from bots.export.media import MediaFetcher
from bots.export.naming import count_words, export_filename, room_label
from bots.export.options import ExportOptionError, ExportOptions, parse_export_options
from bots.export.paging import EXPORT_MARK
from bots.export.pdf import RenderSummary, render_transcript
from bots.export.pending import PendingExport, PendingExports
from bots.export.people import DescribeRoom, RoomPeople
from bots.export.transcript import TranscriptHeader
from bots.export.visibility import visible_from
from bots.matrix.direct_chat import DirectChatNotReady, DirectChats
from bots.matrix.events import replied_to
from bots.matrix.io import MatrixIO, UploadTooLarge
from deployment.conventions import PARIS
from deployment.incidents import new_reference

log = logging.getLogger(__name__)
MAX_RESUMES = 3  # an export cut short more often than this is given up (and said so)


@dataclass(frozen=True)
class ExportRequest:
    room_id: str
    requester: str
    command_event_id: str
    options: ExportOptions
    from_event_id: str | None  # the replied-to message: export from it
    requested_at: datetime
    reply_resolved: bool = True  # False: read `from_event_id` from the command event first
    options_text: str = ""  # the command's words: parsed again when resumed after a restart
    progress_event_id: str | None = None  # « Export en cours… »: edited into the outcome


@dataclass(frozen=True)
class ExportRecord:
    """What traceability keeps of an export (the dossier's notebook): no message content."""

    room_id: str
    requester: str
    command_event_id: str
    exported_at: datetime
    period_label: str
    messages: int
    attachments: int
    digest: str
    delivered_to: str  # the room, or the direct chat for « en privé »


RecordExport = Callable[[ExportRecord], Awaitable[None]]


class ExportService:
    """Runs exports as background tasks, a few at a time (bounded memory)."""

    def __init__(
        self,
        client: AsyncClient,
        io: MatrixIO,
        *,
        parallel: int = 2,
        work_dir: Path | None = None,
        describe_room: DescribeRoom | None = None,
        record_export: RecordExport | None = None,
        pending: PendingExports | None = None,
        command_prefix: str = "!",
        direct_scope: str | None = None,  # bots.matrix.direct_chat: a shard's own chats
    ) -> None:
        self.client = client
        self.command_prefix = command_prefix
        self.io = io
        self.pending = pending  # exports not yet over, resumed after a restart
        self.describe_room = describe_room  # patient and professions, from the dossier
        self.record_export = record_export  # e.g. a notebook entry in the dossier
        self.work_dir = work_dir
        self.direct_chats = DirectChats(client, io, scope=direct_scope)
        self._slots = asyncio.Semaphore(parallel)
        self.tasks = BackgroundTasks()  # exports under way, ended with the bot

    def start(self, request: ExportRequest) -> asyncio.Task[None]:
        if self.pending is not None:
            self.pending.add(
                PendingExport(
                    request.command_event_id,
                    request.room_id,
                    request.requester,
                    request.options_text,
                    request.requested_at,
                    progress_event_id=request.progress_event_id,
                )
            )
        return self._start_task(request)

    def _start_task(self, request: ExportRequest) -> asyncio.Task[None]:
        return self.tasks.spawn(self._run(request), name=f"export-{request.command_event_id}")

    async def wait_idle(self) -> None:
        await self.tasks.wait_idle()

    async def resume(self, *, room_wait_seconds: float = 60.0) -> int:
        """Start again the exports a restart cut short; returns how many were started."""
        if self.pending is None:
            return 0
        started = 0
        for item in self.pending.all():
            if self.pending.started_again(item.command_event_id) > MAX_RESUMES:
                self.pending.remove(item.command_event_id)
                await self._notice(
                    item, "L'export demandé n'a pas pu être terminé : relancez « !export »."
                )
                continue
            if not await self.direct_chats.synced(item.room_id, room_wait_seconds):
                log.warning(
                    "export en attente abandonné : salon inconnu event=%s", item.command_event_id
                )
                self.pending.remove(item.command_event_id)
                continue
            try:
                options = parse_export_options(item.options, now=item.requested_at)
            except ExportOptionError:  # accepted when asked: only a changed parser lands here
                self.pending.remove(item.command_event_id)
                continue
            self._start_task(
                ExportRequest(
                    item.room_id,
                    item.requester,
                    item.command_event_id,
                    options,
                    None,
                    item.requested_at,
                    reply_resolved=False,  # read again from the command event
                    options_text=item.options,
                    progress_event_id=item.progress_event_id,
                )
            )
            started += 1
        if started:
            log.info("exports repris après redémarrage : %d", started)
        return started

    async def _run(self, request: ExportRequest) -> None:
        try:
            async with self._slots:
                await self.export(request)
        except HistoryError as error:
            await self._notice(request, error.message)
        except Exception:
            ref = new_reference()
            log.exception(
                "export: erreur interne réf=%s event=%s room=%s",
                ref,
                request.command_event_id,
                request.room_id,
            )
            await self._notice(request, f"Erreur interne (réf. {ref}).")
        # over (delivered, or answered with an error); a cancelled export (shutdown) stays
        # pending and is resumed at the next start
        if self.pending is not None:
            self.pending.remove(request.command_event_id)

    async def _notice(self, request: ExportRequest | PendingExport, text: str) -> None:
        """A French notice in reply to the export command (« Export en cours… » edited)."""
        try:
            await self._outcome(request, text, txn_id=None)
        except Exception:
            log.exception("export: notice not sent room=%s", request.room_id)

    async def _outcome(
        self, request: ExportRequest | PendingExport, text: str, *, txn_id: str | None
    ) -> str:
        """The outcome replaces « Export en cours… » (an edit) when that message is known;
        otherwise it is a new notice in reply to the command. Marked as export chatter."""
        content = {
            "msgtype": "m.notice",
            "body": text,
            "format": "org.matrix.custom.html",
            "formatted_body": html.escape(text),
            "m.mentions": {},
            EXPORT_MARK: True,
        }
        if request.progress_event_id:
            return await self.io.send_edit(
                request.room_id, request.progress_event_id, content, txn_id
            )
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": request.command_event_id}}
        return await self.io.send(request.room_id, "m.room.message", content, txn_id)

    async def announce(self, room_id: str, command_event_id: str) -> str:
        """« Export en cours… », in reply to the command, marked as export chatter."""
        text = "Export en cours…"
        content = {
            "msgtype": "m.notice",
            "body": text,
            "m.mentions": {},
            "m.relates_to": {"m.in_reply_to": {"event_id": command_event_id}},
            EXPORT_MARK: True,
        }
        return await self.io.send(
            room_id, "m.room.message", content, f"export-progress-{command_event_id}"
        )

    async def export(self, request: ExportRequest) -> tuple[str, RenderSummary]:
        """Fetch, render, upload; return (room the PDF went to, summary)."""
        if not request.reply_resolved:
            replied = await replied_to(self.client, request.room_id, request.command_event_id)
            request = replace(request, from_event_id=replied, reply_resolved=True)
        options = request.options
        since = options.since
        seen_from = await visible_from(self.client, request.room_id, request.requester)
        if seen_from is not None and (since is None or since < seen_from):
            since = seen_from
        with tempfile.TemporaryDirectory(prefix="cercle-export-", dir=self.work_dir) as tmp:
            directory = Path(tmp)
            history_request = HistoryRequest(
                request.room_id,
                since=since,
                until=options.until,
                last=options.last,
                from_event_id=request.from_event_id,
                through_event_id=request.command_event_id,
                with_attachments=options.with_attachments,
                command_prefix=self.command_prefix,
            )
            async with aiohttp.ClientSession() as session:
                media = MediaFetcher(
                    session, self.client.homeserver, self.client.access_token, directory
                )
                history = await fetch_history(
                    self.client, history_request, media, directory=directory
                )
            people = (
                await self.describe_room(request.room_id) if self.describe_room else RoomPeople()
            )
            header = self._header(request, history, people)
            pdf_path = directory / "transcription.pdf"
            # the entries are read from the spool as the worker thread draws them
            summary = await asyncio.to_thread(render_transcript, header, history.entries, pdf_path)
            filename = export_filename(header.room_label, history, request.requested_at)
            target = request.room_id
            if options.private:
                target = await self.direct_room(request.requester)
            try:
                uploaded = await self.io.upload_encrypted_file(pdf_path)  # chunk by chunk
            except UploadTooLarge as too_large:
                raise HistoryError(_too_large_text(too_large)) from None
            await self.io.send_uploaded(
                target,
                uploaded,
                filename=filename,
                mimetype="application/pdf",
                txn_id=f"export-file-{request.command_event_id}",
                extra={EXPORT_MARK: True},
            )
        who = self._name(request.room_id, request.requester)
        when = request.requested_at.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")
        where = "envoyé en privé à son auteur" if options.private else "ci-dessus"
        text = (
            f"Export PDF de la conversation par {who} le {when} — période : "
            f"{header.period_label} — {count_words(summary.messages, 'message', 'messages')}, "
            f"{count_words(summary.attachments, 'pièce jointe', 'pièces jointes')} ({where})."
        )
        await self._outcome(request, text, txn_id=f"export-notice-{request.command_event_id}")
        log.info(
            "export done room=%s event=%s messages=%d pages=%d",
            request.room_id,
            request.command_event_id,
            summary.messages,
            summary.pages,
        )
        if self.record_export is not None:
            try:
                await self.record_export(
                    ExportRecord(
                        request.room_id,
                        request.requester,
                        request.command_event_id,
                        request.requested_at,
                        header.period_label,
                        summary.messages,
                        summary.attachments,
                        summary.digest,
                        target,
                    )
                )
            except Exception:
                log.exception(
                    "export: record failed room=%s event=%s",
                    request.room_id,
                    request.command_event_id,
                )
        return target, summary

    def _header(
        self, request: ExportRequest, history: History, people: RoomPeople
    ) -> TranscriptHeader:
        period = request.options.period_label()
        if request.from_event_id is not None and history.first is not None:
            start = history.first.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
            period = f"à partir du message du {start}"
        if history.first is not None and history.last is not None:
            first = history.first.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
            last = history.last.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
            period = f"{period} (messages du {first} au {last})"
        return TranscriptHeader(
            room_label=room_label(self.client, request.room_id),
            period_label=period,
            exported_by=self._name(request.room_id, request.requester),
            exported_at=request.requested_at,
            patient=people.patient,
            participants=tuple(
                replace(p, profession=people.professions.get(p.user_id, p.profession))
                for p in history.participants
            ),
            invited=history.invited,
            with_attachments=request.options.with_attachments,
        )

    def _name(self, room_id: str, user_id: str) -> str:
        room = self.client.rooms.get(room_id)
        user = room.users.get(user_id) if room else None
        return str(user.display_name) if user and user.display_name else user_id

    async def direct_room(self, user_id: str) -> str:
        """The bot's direct chat with ``user_id`` (exports « en privé », newcomers'
        transcripts, offers)."""
        try:
            return await self.direct_chats.direct_room(user_id)
        except DirectChatNotReady as exc:
            raise HistoryError(str(exc)) from None


def _too_large_text(too_large: UploadTooLarge) -> str:
    """For the requester: the PDF over the server's limit, and what to ask instead."""
    size, limit = too_large.size / 1_000_000, too_large.limit / 1_000_000
    return (
        f"Export non envoyé : le PDF ferait {size:.0f} Mo, au-delà de la limite de {limit:.0f} Mo "
        "du serveur. Demandez une période plus courte (« !export depuis 01/12/2026 ») ou "
        "l'export sans pièces jointes (« !export sans pièces jointes »)."
    )
