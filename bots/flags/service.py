"""Raising, clearing and acknowledging flags: each step of the "Flag" flow, in one place.

Raise: encrypted notice (motif only there, mentions of the team) → ``fr.cercle.flags``
state (who, when, notice id; no motif) → room-name marker → folders → escalation.
Clear: the same steps undone. Acknowledge: ``!vu`` or a reaction on the bot's urgent notice.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable

from nio import AsyncClient

from bots.commands.registry import UserError
from bots.flags.escalation import Escalation, Escalator, StaleEscalation
from bots.flags.events import (
    FlagAcknowledged,
    FlagChange,
    FlagCleared,
    FlagClearing,
    FlagObserver,
    FlagOutcome,
    FlagRaising,
)
from bots.flags.intents import ClearIntents
from bots.flags.model import (
    STATE_TYPE,
    Flag,
    FlagError,
    FlagKind,
    RoomFlags,
    format_paris,
    name_with_markers,
)
from bots.flags.spaces import FolderSpaces
from bots.matrix.io import MatrixIO, member_name, mention_html, room_link, txn_for
from bots.matrix.room_state import RoomStateCache
from deployment.incidents import new_reference

log = logging.getLogger(__name__)

ACK_HINT = "Pour en accuser réception : !vu, ou une réaction sur ce message."
# in the (encrypted) notice of a flag, so that !vu and the reminders can repeat the motif
# without it ever being in the room's state
FLAG_FIELD = "fr.cercle.flag"


class FlagService:
    def __init__(
        self,
        client: AsyncClient,
        io: MatrixIO,
        cache: RoomStateCache,
        folders: FolderSpaces,
        escalator: Escalator,
        *,
        server_name: str,
        intents: ClearIntents | None = None,
    ) -> None:
        self.intents = intents  # which flag each `!fait` set out to clear (replay after a kill)
        self.client = client
        self.io = io
        self.cache = cache
        self.folders = folders
        self.escalator = escalator
        self.server_name = server_name
        # issue 6 hook: the liaison notebook and the activity extraction (bots.dossier_link)
        self.observers: list[FlagObserver] = []
        escalator.set_notify(self._remind)

    # -- helpers --
    async def motif_of(self, room_id: str, flag: Flag) -> str | None:
        """The motif of ``flag``, read back from its encrypted notice (None: none, or the
        notice cannot be read)."""
        if not flag.notice_event_id:
            return None
        content = await self.io.event_content(room_id, flag.notice_event_id) or {}
        data = content.get(FLAG_FIELD)
        motif = data.get("motif") if isinstance(data, dict) else None
        return motif if isinstance(motif, str) and motif else None

    def joined_members(self, room_id: str) -> list[str]:
        room = self.client.rooms.get(room_id)
        if room is None:
            return []
        return [u for u in room.users if u not in room.invited_users and u != self.client.user_id]

    def _name(self, user_id: str, room_id: str) -> str:
        return member_name(self.client, room_id, user_id)

    def _check_bot_may_flag(self, room_id: str) -> None:
        """Refuse up front (nothing half done) in a room where the bot may not write the
        flags' state and the name."""
        room = self.client.rooms.get(room_id)
        bot = self.client.user_id
        if room is None or bot in self.cache.creators.get(room_id, ()):
            return
        levels = room.power_levels
        if not (
            levels.can_user_send_state(bot, STATE_TYPE)
            and levels.can_user_send_state(bot, "m.room.name")
        ):
            raise UserError(
                "Le bot n'a pas les droits nécessaires dans ce salon pour le signaler : "
                "donnez-lui le niveau administrateur, ou créez un salon patient avec "
                "!patient nouveau."
            )

    async def current(self, room_id: str) -> RoomFlags:
        content = await self.io.get_state(room_id, STATE_TYPE)
        return RoomFlags.from_state(content)

    async def _show(self, room_id: str, flags: RoomFlags) -> None:
        """What follows the saved state: cache, room-name markers, folders."""
        content = flags.to_state()
        self.cache.set_flags(room_id, content)
        room = self.client.rooms.get(room_id)
        name = room.name if room else None
        if name:
            wanted = name_with_markers(name, flags)
            if wanted != name:
                await self.io.set_room_name(room_id, wanted)
        await self.folders.sync_room(room_id, flags, self.joined_members(room_id))

    # -- the three transitions --
    async def raise_flag(
        self,
        room_id: str,
        kind: FlagKind,
        *,
        by: str,
        at_ms: int,
        motif: str | None,
        assignee: str | None,
        command_event_id: str,
    ) -> None:
        self._check_bot_may_flag(room_id)
        flags = await self.current(room_id)
        raising = FlagRaising(
            room_id=room_id,
            kind=kind,
            by=by,
            at_ms=at_ms,
            motif=motif,
            assignee=assignee,
            command_event_id=command_event_id,
        )
        existing = flags.get(kind)
        if existing is not None and (existing.by, existing.at_ms) == (by, at_ms):
            # this very command again (replayed after a crash once its state was saved):
            # finish what may be missing instead of refusing it as "already flagged"
            await self._show(room_id, flags)
            if (
                kind is FlagKind.URGENT
                and not existing.acknowledged_by
                and existing.notice_event_id
                and self.escalator.store.get(room_id) is None
            ):
                self.escalator.start(room_id, by, at_ms, existing.notice_event_id)
            await self._tell(raising.done())
            return
        flag = Flag(kind=kind, by=by, at_ms=at_ms, assignee=assignee)
        try:
            flags = flags.raise_flag(flag)
        except FlagError as exc:
            raise UserError(str(exc)) from None
        if assignee and assignee not in self.joined_members(room_id):
            raise UserError(f"{assignee} n'est pas membre de ce salon.")
        members = self.joined_members(room_id)
        mentions = [assignee] if assignee else [m for m in members if m != by]
        plain, body = self._raise_text(room_id, kind, by, motif, assignee, mentions)
        # the journal entry is queued (held) before anything changes: a crash after the
        # state is saved cannot lose it (see bots.dossier_link.service.FlagJournal)
        await self._tell_before(raising)
        try:
            notice_id = await self.io.send_notice(
                room_id,
                plain,
                body,
                mentions=mentions,
                txn_id=txn_for(command_event_id, "flag-notice"),
                extra={FLAG_FIELD: {"kind": kind.value, "motif": motif}},
            )
            flags = flags.with_notice(kind, notice_id)
            await self.io.put_state(room_id, STATE_TYPE, flags.to_state())
        except Exception:
            await self._tell(raising.failed())
            raise
        await self._show(room_id, flags)
        if kind is FlagKind.URGENT:
            self.escalator.start(room_id, by, at_ms, notice_id)
        await self._tell(raising.done())

    async def _tell_before(self, event: FlagChange) -> None:
        """Before the change: an observer's failure stops the command (nothing is changed)."""
        for observer in self.observers:
            await observer.on_flag(event)

    async def _tell(self, event: FlagOutcome) -> None:
        """Once the change is done (or failed): an observer's failure is logged, not raised."""
        for observer in self.observers:
            try:
                await observer.on_flag(event)
            except Exception:
                ref = new_reference()
                log.exception(
                    "observateur de signalement en échec réf=%s room=%s", ref, event.room_id
                )

    async def clear_flag(
        self, room_id: str, kind: FlagKind | None, *, by: str, command_event_id: str
    ) -> None:
        flags = await self.current(room_id)
        try:
            flags, cleared = flags.clear(kind)
        except FlagError as exc:
            mine = self.intents.cleared_by(command_event_id, room_id) if self.intents else None
            if mine is None or mine in flags.kinds:
                raise UserError(str(exc)) from None
            # this very command, replayed after a kill once its state was saved: finish it
            done = FlagCleared(room_id=room_id, kind=mine, by=by, command_event_id=command_event_id)
            await self._after_clear(flags, done)
            return
        if self.intents is not None:
            self.intents.record(command_event_id, room_id, cleared.kind)
        clearing = FlagClearing(
            room_id=room_id, kind=cleared.kind, by=by, command_event_id=command_event_id
        )
        await self._tell_before(clearing)
        try:
            await self.io.put_state(room_id, STATE_TYPE, flags.to_state())
        except Exception:
            await self._tell(clearing.failed())
            raise
        await self._after_clear(flags, clearing.done())

    async def _after_clear(self, flags: RoomFlags, cleared: FlagCleared) -> None:
        """Every step after the saved state; each one idempotent (replays come here too)."""
        room_id, kind, by = cleared.room_id, cleared.kind, cleared.by
        command_event_id = cleared.command_event_id
        await self._show(room_id, flags)
        if kind is FlagKind.URGENT:
            self.escalator.stop(room_id)
        who = self._name(by, room_id)
        plain = f"✅ Signalement « {kind.label} » levé par {who}."
        body = f"✅ Signalement « {html.escape(kind.label)} » levé par {mention_html(by, who)}."
        await self.io.send_notice(
            room_id, plain, body, mentions=[by], txn_id=txn_for(command_event_id, "clear-notice")
        )
        await self._tell(cleared)

    async def acknowledge(
        self, room_id: str, *, by: str, at_ms: int, source_event_id: str, quiet: bool = False
    ) -> bool:
        """Record an acknowledgement of the urgent flag. ``quiet``: a reaction — refusals are
        not replied to (a reaction is not a command)."""
        flags = await self.current(room_id)
        urgent = flags.get(FlagKind.URGENT)
        if urgent is not None and (urgent.acknowledged_by, urgent.acknowledged_at_ms) == (
            by,
            at_ms,
        ):
            flag = urgent  # this very acknowledgement, replayed after a kill: finish it
        else:
            try:
                flags, flag = flags.acknowledge(by, at_ms)
            except FlagError as exc:
                if quiet:
                    return False
                raise UserError(str(exc)) from None
            await self.io.put_state(room_id, STATE_TYPE, flags.to_state())
        self.cache.set_flags(room_id, flags.to_state())
        self.escalator.acknowledge(room_id, by, at_ms)
        who = self._name(by, room_id)
        flagger = self._name(flag.by, room_id)
        plain = (
            f"👀 Urgence prise en compte par {who} ({format_paris(at_ms)}). Signalée par {flagger}."
        )
        body = (
            f"👀 Urgence prise en compte par {mention_html(by, who)} "
            f"({html.escape(format_paris(at_ms))}). Signalée par {mention_html(flag.by, flagger)}."
        )
        plain, body = _with_motif(plain, body, await self.motif_of(room_id, flag))
        await self.io.send_notice(
            room_id, plain, body, mentions=[flag.by], txn_id=txn_for(source_event_id, "ack-notice")
        )
        await self._tell(
            FlagAcknowledged(
                room_id=room_id, by=by, at_ms=at_ms, flag_by=flag.by, flag_at_ms=flag.at_ms
            )
        )
        return True

    async def on_reaction(
        self, room_id: str, *, sender: str, reacts_to: str, at_ms: int, event_id: str
    ) -> None:
        if not self.escalator.is_urgent_notice(room_id, reacts_to):
            return
        if sender not in self.joined_members(room_id):
            return
        await self.acknowledge(
            room_id, by=sender, at_ms=at_ms, source_event_id=event_id, quiet=True
        )

    async def on_renamed(self, room_id: str) -> None:
        """Someone renamed a flagged room: put the markers back in front of the new name."""
        room = self.client.rooms.get(room_id)
        content = self.cache.flags.get(room_id)
        if room is None or not room.name or content is None:
            return
        wanted = name_with_markers(room.name, RoomFlags.from_state(content))
        if wanted != room.name:
            await self.io.set_room_name(room_id, wanted)

    async def on_members_changed(self, room_id: str) -> None:
        content = self.cache.flags.get(room_id)
        if content is None and not self.folders.linked_any(room_id):
            return
        await self.folders.sync_room(
            room_id, RoomFlags.from_state(content), self.joined_members(room_id)
        )

    # -- texts --
    def _raise_text(
        self,
        room_id: str,
        kind: FlagKind,
        by: str,
        motif: str | None,
        assignee: str | None,
        mentions: Iterable[str],
    ) -> tuple[str, str]:
        who = self._name(by, room_id)
        titles = {
            FlagKind.URGENT: "🔴 URGENCE signalée",
            FlagKind.REQUEST: "❓ Demande signalée",
            FlagKind.TODO: "📌 À traiter, signalé",
        }
        plain = f"{titles[kind]} par {who}"
        body = f"<strong>{html.escape(titles[kind])}</strong> par {mention_html(by, who)}"
        if assignee:
            name = self._name(assignee, room_id)
            plain += f", pour {name}"
            body += f", pour {mention_html(assignee, name)}"
        plain += "."
        body += "."
        if motif:
            plain += f"\nMotif : {motif}"
            body += f"<br>Motif : {html.escape(motif)}"
        others = [m for m in mentions if m != assignee]
        if others:
            plain += "\nÀ l'attention de : " + ", ".join(self._name(m, room_id) for m in others)
            body += "<br>À l'attention de : " + ", ".join(
                mention_html(m, self._name(m, room_id)) for m in others
            )
        if kind is FlagKind.URGENT:
            plain += "\n" + ACK_HINT
            body += "<br><em>" + html.escape(ACK_HINT) + "</em>"
        else:
            plain += f"\nPour lever : !fait {kind.value}"
            body += f"<br><em>Pour lever : <code>!fait {kind.value}</code></em>"
        return plain, body

    async def _remind(self, esc: Escalation, number: int) -> str:
        room_id = esc.room_id
        # the room's state decides: a flag cleared or acknowledged by a command whose
        # handling was cut short (bot killed before stopping the escalation) stops it here
        urgent = (await self.current(room_id)).get(FlagKind.URGENT)
        if urgent is None or urgent.at_ms != esc.raised_at_ms or urgent.acknowledged_by:
            raise StaleEscalation(room_id)
        members = [m for m in self.joined_members(room_id) if m != esc.flagger]
        who = self._name(esc.flagger, room_id)
        last = " Dernier rappel." if number >= self.escalator.max_reminders else ""
        plain = (
            f"🔴 Rappel {number}/{self.escalator.max_reminders} : urgence signalée par {who} "
            f"({format_paris(esc.raised_at_ms)}), toujours sans accusé de réception.{last}\n{ACK_HINT}"
        )
        body = (
            f"<strong>🔴 Rappel {number}/{self.escalator.max_reminders}</strong> : urgence signalée par "
            f"{mention_html(esc.flagger, who)} ({html.escape(format_paris(esc.raised_at_ms))}), "
            f"toujours sans accusé de réception.{html.escape(last)}<br>"
            + ", ".join(mention_html(m, self._name(m, room_id)) for m in members)
            + f"<br><em>{html.escape(ACK_HINT)}</em>"
        )
        plain, body = _with_motif(plain, body, await self.motif_of(room_id, urgent))
        return await self.io.send_notice(
            room_id,
            plain,
            body,
            mentions=members,
            txn_id=txn_for(f"{room_id}|{esc.raised_at_ms}", f"reminder-{number}"),
        )

    # -- listing for `!flags` --
    def flagged_rooms_of(self, user_id: str) -> list[tuple[str, str, RoomFlags]]:
        out = []
        for room_id, content in self.cache.flags.items():
            room = self.client.rooms.get(room_id)
            if room is None or user_id not in room.users or user_id in room.invited_users:
                continue
            flags = RoomFlags.from_state(content)
            if flags.kinds:
                out.append((room_id, room.display_name, flags))
        return sorted(out, key=lambda r: r[1].lower())

    def link(self, room_id: str) -> str:
        return room_link(room_id, self.server_name)


def _with_motif(plain: str, body: str, motif: str | None) -> tuple[str, str]:
    """Nobody acts blind (issue 11): what is acknowledged or recalled, with its motif."""
    if not motif:
        return plain, body
    return f"{plain}\nMotif : {motif}", f"{body}<br>Motif : {html.escape(motif)}"
