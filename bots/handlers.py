"""What the bot does with the events the sync loop hands it: commands, reactions on its
urgent notices, membership changes in flagged rooms, invitations."""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field

from nio import (
    AsyncClient,
    Event,
    JoinError,
    MatrixRoom,
    ReactionEvent,
    RoomMemberEvent,
    RoomMessageText,
    RoomNameEvent,
)

from bots.background_tasks import BackgroundTasks
from bots.commands.registry import CommandContext, CommandRegistry, RoomFacts
from bots.commands.text import command_text, is_edit
from bots.flags.service import FlagService
from bots.matrix.io import MatrixIO, txn_for
from bots.matrix.room_state import RoomStateCache

log = logging.getLogger(__name__)

CREATOR_POWER_LEVEL = 2**53  # room v12 creators: above any power level


class _ReplyToCommand:
    """Replies to one command event; the n-th reply always has the same transaction id."""

    def __init__(self, io: MatrixIO, room_id: str, event_id: str) -> None:
        self.io = io
        self.room_id = room_id
        self.event_id = event_id
        self.count = 0

    async def reply(
        self, plain: str, html_body: str | None = None, mentions: Sequence[str] = ()
    ) -> str | None:
        self.count += 1
        return await self.io.send_notice(
            self.room_id,
            plain,
            html_body,
            mentions=mentions,
            txn_id=txn_for(self.event_id, f"reply-{self.count}"),
            reply_to=self.event_id,
        )


@dataclass
class BotHandlers:
    client: AsyncClient
    io: MatrixIO
    registry: CommandRegistry
    cache: RoomStateCache
    flags: FlagService
    _: KW_ONLY
    server_name: str
    # a room made for another of the bot's accounts, not yet left (bots.matrix.handover):
    # everything in it is that account's
    elsewhere: Callable[[str], bool] = lambda _room_id: False
    _joining: set[str] = field(default_factory=set, init=False, repr=False)
    # greetings of new direct chats, ended with the bot (bots.background_tasks)
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks, init=False, repr=False)

    # -- what reaches the ledger --
    def wants(self, event: Event, room: MatrixRoom) -> bool:
        if room.room_id in self.cache.spaces or self.elsewhere(room.room_id):
            return False
        if isinstance(event, RoomMessageText):
            content = event.source.get("content", {})
            return not is_edit(content) and self.registry.is_command(command_text(content))
        if isinstance(event, ReactionEvent):
            return True
        if isinstance(event, RoomMemberEvent):
            return room.room_id in self.cache.flags or self.flags.folders.linked_any(room.room_id)
        if isinstance(event, RoomNameEvent):
            return room.room_id in self.cache.flags
        return False

    def observe_state(self, room_id: str, event: Event) -> None:
        self.cache.observe(room_id, event)

    async def handle(self, event: Event, room: MatrixRoom) -> None:
        if isinstance(event, RoomMessageText):
            await self._command(event, room)
        elif isinstance(event, ReactionEvent):
            await self.flags.on_reaction(
                room.room_id,
                sender=event.sender,
                reacts_to=event.reacts_to,
                at_ms=event.server_timestamp,
                event_id=event.event_id,
            )
        elif isinstance(event, RoomMemberEvent):
            await self.flags.on_members_changed(room.room_id)
        elif isinstance(event, RoomNameEvent):
            await self.flags.on_renamed(room.room_id)

    def facts(self, room: MatrixRoom, sender: str) -> RoomFacts:
        is_patient = self.cache.is_patient_room(room.room_id)
        return RoomFacts(
            sender_is_member=sender in room.users and sender not in room.invited_users,
            sender_power_level=self.power_level(room, sender),
            is_direct=not is_patient and len(room.users) <= 2,
            is_patient_room=is_patient,
        )

    def power_level(self, room: MatrixRoom, user_id: str) -> int:
        if user_id in self.cache.creators.get(room.room_id, ()):
            return CREATOR_POWER_LEVEL
        return int(room.power_levels.get_user_level(user_id))

    async def _command(self, event: RoomMessageText, room: MatrixRoom) -> None:
        content = event.source.get("content", {})
        ctx = CommandContext(
            room_id=room.room_id,
            sender=event.sender,
            event_id=event.event_id,
            facts=self.facts(room, event.sender),
            replier=_ReplyToCommand(self.io, room.room_id, event.event_id),
            origin_server_ts=event.server_timestamp,
        )
        await self.registry.execute(command_text(content), ctx)

    async def on_invite(self, room_id: str, inviter: str | None, *, direct: bool = False) -> None:
        if room_id in self._joining or room_id in self.client.rooms:
            return
        if inviter is None or not inviter.endswith(f":{self.server_name}"):
            log.info("invitation ignorée room=%s (hors du serveur)", room_id)
            self._joining.add(room_id)
            return
        self._joining.add(room_id)
        resp = await self.client.join(room_id)
        if isinstance(resp, JoinError):
            log.warning("impossible de rejoindre room=%s (%s)", room_id, resp.status_code)
            self._joining.discard(room_id)
        elif direct:  # a new direct chat: greet once (the invitation comes once per room)
            self.tasks.spawn(self._welcome(room_id), name=f"bienvenue-{room_id}")

    async def _welcome(self, room_id: str, wait_seconds: float = 30.0) -> None:
        """Sent once the sync loop knows the room and its encryption (nio would send in
        clear to a room it has not synced)."""
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while room_id not in self.client.rooms:
            if asyncio.get_running_loop().time() > deadline:
                log.warning("bienvenue non envoyée room=%s (salon jamais synchronisé)", room_id)
                return
            await asyncio.sleep(0.2)
        plain, rich = welcome_text(self.registry.prefix)
        try:
            await self.io.send_notice(room_id, plain, rich, txn_id=txn_for(room_id, "welcome"))
        except Exception:
            log.warning("bienvenue non envoyée room=%s", room_id, exc_info=True)


def welcome_text(prefix: str) -> tuple[str, str]:
    """Pure: the short French greeting of a new direct chat, with the commands that matter."""
    lines = [
        (f"{prefix}patient nouveau <libellé>", "crée un salon patient chiffré (sans le nom du patient)"),
        (f"{prefix}dossiers", "liste vos salons signalés (urgences, demandes)"),
        (f"{prefix}aide", "toutes les commandes"),
    ]  # fmt: skip
    plain = "Bonjour, je suis le bot Cercle. Trois commandes pour commencer :\n" + "\n".join(
        f"• {c} — {what}" for c, what in lines
    )
    rich = (
        "<p>Bonjour, je suis le bot Cercle. Trois commandes pour commencer :</p><ul>"
        + "".join(
            f"<li><code>{html.escape(c)}</code> — {html.escape(what)}</li>" for c, what in lines
        )
        + "</ul>"
    )
    return plain, rich
