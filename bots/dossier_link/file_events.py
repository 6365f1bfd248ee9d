"""File → conversation: one event of the dossier's feed (read by ``feed.FeedConsumer``).

A file opened on the dossier's side gets its room (created once, linked, furnished); a change
of the care circle changes the room's membership (``membership``); most events post a notice
(``announcements``); a change of identity or a death edits the pinned identity (``links``).
Each step is idempotent, so the event in progress when the bot died can be handled again:
sends carry a transaction id derived from the event's ``seq``, memberships are read before
being changed, notebook entries carry keys derived from the ``seq``.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from bots.dossier_link.announcements import Announcements
from bots.dossier_link.feed import TransientError
from bots.dossier_link.links import FileLinks
from bots.dossier_link.membership import CircleMembership
from bots.matrix.io import MatrixRequestError, txn_for
from bots.matrix.room_once import create_room_once
from bots.outbox import idempotency_key

log = logging.getLogger(__name__)

EXTRACTION_READY = "extraction.ready"  # the dossier's outbox event (dossier_service.extraction)

PatientRoomRequest = Callable[..., dict[str, Any]]


@dataclass
class FileEvents:
    links: FileLinks
    membership: CircleMembership
    announcements: Announcements
    patient_room_request: PatientRoomRequest

    async def on_old_file_event(self, event: Mapping[str, Any]) -> None:
        await self.on_file_event(event, announce=False)

    async def on_file_event(self, event: Mapping[str, Any], *, announce: bool = True) -> None:
        """One event of the feed. ``announce=False`` (an old event read at the bot's first
        start, see ``bots.dossier_link.feed``): its effects on the room (room created, membership,
        pinned identity) are applied, its notice is not posted."""
        kind = str(event.get("type") or "")
        if kind == EXTRACTION_READY:
            if announce:
                await self._extraction_ready(event)
            return
        pid = event.get("patient_id")
        if not isinstance(pid, str) or not pid:
            return
        links = self.links
        try:
            if kind == "patient.created":
                await self._room_for_file(event, pid)
                return
            room_id = await links.resolve_room(pid, event.get("room_id") or None)
            if room_id is None:
                return
            if room_id not in links.client.rooms:
                if room_id not in links.fresh:
                    # not a room the bot just made: it is not (or no longer) in it
                    log.info(
                        "événement du dossier %s : le bot n'est pas dans le salon", event.get("seq")
                    )
                    return
                await links.wait_for_room(room_id)  # TransientError: the feed retries, then skips
            way = None
            if kind.startswith("circle."):
                way = await self.membership.follow_circle(room_id, pid, event)
            # the role labels not read yet (dossier away): Unavailable, the feed waits for it
            notice = await self.announcements.render(event, pid, room_id) if announce else None
            if notice is not None and way:  # the inviter learns which way the history went
                notice = replace(
                    notice,
                    plain=f"{notice.plain}\nHistorique : {way}",
                    html=f"{notice.html}<br>Historique : {html.escape(way)}",
                )
            if notice is not None:
                await self.announcements.post_file_notice(room_id, pid, event, notice)
            if kind.startswith(("death.", "patient.")):
                await links.refresh_identity(room_id, pid)
        except MatrixRequestError as exc:
            if exc.errcode in ("M_LIMIT_EXCEEDED", "M_UNKNOWN") or (exc.status or 500) >= 500:
                raise TransientError(exc.errcode) from None
            raise

    async def _extraction_ready(self, event: Mapping[str, Any]) -> None:
        """An activity extraction is ready: its requester is told in her direct chat with the
        bot (SPICO's « Document d'extraction brute des données … »), with the link."""
        payload = event.get("payload") or {}
        user, report = payload.get("user_id"), payload.get("report_id")
        if not isinstance(user, str) or not isinstance(report, str):
            return
        title = str(payload.get("title") or "Document d'extraction brute des données")
        url = f"{self.links.dossier.base_url}/extractions/{report}"
        plain = f"📊 {title}. Le document est prêt : {url}"
        body = (
            f"📊 {html.escape(title)}. Le document est prêt : "
            f'<a href="{html.escape(url)}">{html.escape(url)}</a>'
        )
        try:
            room_id = await self.links.direct_room(user)
            await self.links.io.send_notice(
                room_id,
                plain,
                body,
                txn_id=txn_for(f"dossier-seq-{event.get('seq')}", "extraction-ready"),
            )
        except MatrixRequestError as exc:
            if exc.errcode in ("M_LIMIT_EXCEEDED", "M_UNKNOWN") or (exc.status or 500) >= 500:
                raise TransientError(exc.errcode) from None
            log.warning("extraction prête : message direct impossible (%s)", exc.errcode)

    async def _room_for_file(self, event: Mapping[str, Any], pid: str) -> None:
        """A file opened in the dossier (page or API): its room, created once and linked."""
        links = self.links
        room_id = event.get("room_id") or links.store.file_room(pid) or links.store.room_of(pid)
        patient = await links.dossier.get_patient(pid) or {}
        if not room_id and isinstance(patient.get("room_id"), str):
            room_id = patient["room_id"]
        coordinator = (event.get("payload") or {}).get("coordinator")
        if not room_id and not links.shards.owns(f"file-room|{pid}"):
            return  # the room of this file lives with another of the bot's accounts
        if not room_id:
            bot = links.bot_user_id
            requester = coordinator if isinstance(coordinator, str) else bot
            request = self.patient_room_request(
                label=str(patient.get("label") or f"Patient {pid}"),
                pseudonym=pid,
                requester=requester,
                bot_user_id=bot,
            )
            if requester == bot:
                request["invite"] = []
            # once per file, even when killed before save_file_room (bots.matrix.room_once)
            room_id, _ = await create_room_once(links.client, links.io, f"file-room|{pid}", request)
            links.fresh.add(room_id)
            links.store.save_file_room(pid, room_id)
            links.patient_rooms[room_id] = {"id": pid, "version": 1}
            log.info("salon créé pour le dossier %s : %s", pid, room_id)
        if patient.get("room_id") != room_id:
            await links.dossier.link_room(
                pid, room_id, actor=None, key=idempotency_key(f"dossier-seq-{event['seq']}", "link")
            )
        links.store.save_link(room_id, pid)
        if room_id in links.client.invited_rooms:  # handed to this account, not joined yet
            await links.wait_for_room(room_id)  # TransientError: the feed comes back to it
        if room_id not in links.client.rooms and room_id not in links.fresh:
            log.info("dossier %s : le bot n'est pas dans son salon, rien à y installer", pid)
            return
        await links.wait_for_room(room_id)
        await links.set_patient_state(room_id, pid)
        await links.furnish_room(room_id, pid, patient)
