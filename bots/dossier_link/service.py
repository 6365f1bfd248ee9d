"""Wiring of the dossier link into the bot (``install``), called once by ``bots.app``.

It builds the dossier client (service token from the deployment's secrets), the durable
outbox and the sync store (``<var>/bot/dossier.sqlite3``), the services of the link (room ↔
file ``links``, outbox ``delivery``, feed ``file_events``, circle ↔ ``membership``,
``announcements``), the dossier command families, and returns the background jobs the app runs: the outbox worker, the event-feed
consumer and the overdue-task announcer. Hooks: ``!patient nouveau`` also opens the file;
flags raised/cleared, exports, invitations and departures write liaison-notebook entries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, assert_never

from nio import AsyncClient, MegolmEvent, RoomMemberEvent, RoomMessage

from bots.commands import dossier as dossier_commands
from bots.commands.patients import PatientHooks, PatientRoomCreated, patient_room_request
from bots.commands.registry import Command, CommandContext, CommandRegistry
from bots.config import BotConfig
from bots.dossier_client import DossierClient
from bots.dossier_link.activity import Activity
from bots.dossier_link.announcements import Announcements
from bots.dossier_link.arrivals import Arrivals
from bots.dossier_link.awaiting_accounts import AwaitingAccounts
from bots.dossier_link.delivery import OutboxDelivery
from bots.dossier_link.feed import FeedConsumer
from bots.dossier_link.file_events import FileEvents
from bots.dossier_link.links import FileLinks
from bots.dossier_link.membership import CircleMembership
from bots.dossier_link.operations import AddNotebookEntry, CreatePatient
from bots.dossier_link.roles import RoleLabels
from bots.dossier_link.store import SyncStore
from bots.flags.events import (
    FlagAcknowledged,
    FlagChange,
    FlagCleared,
    FlagClearing,
    FlagEvent,
    FlagNotCleared,
    FlagNotRaised,
    FlagRaised,
    FlagRaising,
)
from bots.flags.model import FlagKind, format_paris
from bots.flags.service import FlagService
from bots.matrix.io import MatrixIO
from bots.outbox import Outbox, OutboxWorker, idempotency_key, now_ms, open_outbox_database
from bots.shards import Shards, direct_scope

if TYPE_CHECKING:  # bots.app wires this module: the import would be circular at run time
    from bots.app import BotServices

log = logging.getLogger(__name__)

Job = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class DossierSync:
    dossier: DossierClient
    outbox: Outbox
    store: SyncStore
    links: FileLinks
    roles: RoleLabels
    announcements: Announcements
    membership: CircleMembership
    file_events: FileEvents
    worker: OutboxWorker
    feed: FeedConsumer
    activity: Activity

    def jobs(self, overdue_interval_seconds: float = 60.0) -> list[Job]:
        membership = self.membership
        return [
            self.worker.run,
            lambda: membership.awaiting.run(self.links.io.user_exists, membership.bring_awaited),
            self.roles.load_at_start,
            self._feed,
            lambda: self.announcements.run_overdue(overdue_interval_seconds),
            self._report_activity,
        ]

    async def _report_activity(self, interval_seconds: float = 60.0) -> None:
        """Each minute, the message counts that changed go to the outbox (then the dossier)."""
        while True:
            await asyncio.sleep(interval_seconds)
            if self.activity.flush():
                self.worker.wake()

    async def _feed(self) -> None:
        await self.links.wait_ready()
        await self.feed.run()

    async def close(self) -> None:
        """The dossier client's session closed: by the app, once nothing can use it (a
        handler still running when the feed stopped opened a new one, never closed)."""
        await self.dossier.close()


def default_endpoint(config: BotConfig) -> tuple[str, str]:
    """The dossier's URL (from the bot's config) and the bot's service token (a secret of the
    deployment, under <var>/secrets)."""
    from deployment.secrets import Secrets

    if not config.dossier_url:
        raise LookupError("bot.dossier_url absent")
    secrets = Secrets.load_or_create(config.data_dir.parent)
    return config.dossier_url, secrets.dossier_service_token


def build(
    *,
    client: AsyncClient,
    io: MatrixIO,
    patient_rooms: dict[str, dict[str, Any]],
    data_dir: Path,
    homeserver_url: str,
    server_name: str,
    dossier_url: str,
    service_token: str,
    creators: Mapping[str, set[str]],
    poll_seconds: float = 1.0,
    shards: Shards | None = None,
    account_check_seconds: float = 60.0,
) -> DossierSync:
    conn = open_outbox_database(data_dir / "dossier.sqlite3")
    outbox = Outbox(conn, data_dir / "outbox-blobs")
    store = SyncStore(conn)
    dossier = DossierClient(dossier_url, service_token)
    links = FileLinks(
        client=client,
        io=io,
        dossier=dossier,
        store=store,
        patient_rooms=patient_rooms,
        creators=creators,
        shards=shards,
        direct_scope=direct_scope(shards),
    )
    roles = RoleLabels(dossier)
    announcements = Announcements(links, roles)
    delivery = OutboxDelivery(links, announcements, outbox)
    worker = OutboxWorker(outbox, delivery.deliver, on_outcome=delivery.on_late_outcome)
    awaiting = AwaitingAccounts(conn, check_seconds=account_check_seconds)
    membership = CircleMembership(links, worker, awaiting)
    events = FileEvents(links, membership, announcements, patient_room_request)
    feed = FeedConsumer(
        dossier,
        store,
        events.on_file_event,
        poll_seconds=poll_seconds,
        quiet_handler=events.on_old_file_event,
    )
    return DossierSync(
        dossier,
        outbox,
        store,
        links,
        roles,
        announcements,
        membership,
        events,
        worker,
        feed,
        Activity(conn, outbox),
    )


def connect(services: BotServices) -> DossierSync | None:
    """The dossier link of the bot, built once by ``BotApp._register_families``: its dossier
    client is the one every family that reads the file uses (the export's header too).
    Without ``bot.dossier_url`` (a deployment without the dossier) the bot runs without it,
    said once in the log; any other failure (the service token unreadable…) stops start-up:
    never a bot quietly cut off from the file."""
    config = services.config
    if not config.dossier_url:
        log.warning("bot.dossier_url absent : le bot fonctionne sans le dossier")
        return None
    dossier_url, token = default_endpoint(config)
    return build(
        client=services.client,
        io=services.io,
        patient_rooms=services.cache.patient_rooms,
        data_dir=config.data_dir,
        homeserver_url=config.homeserver_url,
        server_name=config.server_name,
        dossier_url=dossier_url,
        service_token=token,
        creators=services.cache.creators,
        shards=config.shards,
        account_check_seconds=config.account_check_seconds,
    )


def install(
    registry: CommandRegistry, services: BotServices, sync: DossierSync, *, arrivals: Arrivals
) -> DossierSync:
    """The dossier command family, hooks and background jobs of ``sync`` (from ``connect``);
    ``arrivals``: the one way into a patient's conversation (``services.arrivals``, built)."""
    config = services.config
    dossier_commands.register(
        registry,
        client=services.client,
        links=sync.links,
        worker=sync.worker,
        arrivals=arrivals,
        dossier=sync.dossier,
        roles=sync.roles,
        homeserver_url=config.homeserver_url,
    )
    hook_patient_creation(sync, services.patient_hooks)
    hook_membership(sync, services.client)
    services.gap_observers.append(sync.membership.on_gap_event)
    hook_flags(sync, services.flags)
    hook_commands(sync, registry)
    hook_messages(sync, services.client)
    services.background.extend(sync.jobs())
    return sync


# ---------------------------------------------------------------------------------- hooks
def hook_patient_creation(sync: DossierSync, hooks: PatientHooks) -> None:
    """``!patient nouveau`` opens the file too (identity filled in later on its page)."""

    async def created(event: PatientRoomCreated) -> None:
        if not event.handed:  # a room handed to another account is furnished by it
            sync.links.note_fresh(event.room_id)
        op = CreatePatient(
            room_id=event.room_id,
            label=event.label,
            actor=event.requester,
            pseudonym=event.pseudonym,
        )
        sync.outbox.enqueue(
            idempotency_key(event.room_id, "file"), op.name, op.payload(), room_id=event.room_id
        )
        sync.worker.wake()

    hooks.created.append(created)


def hook_membership(sync: DossierSync, client: AsyncClient) -> None:
    """Departures and invitations seen in patient rooms (nio callback, during the sync)."""

    async def on_member(room: Any, event: RoomMemberEvent) -> None:
        try:
            await sync.membership.on_member_event(room.room_id, event)
        except Exception:
            log.exception("événement de membre non traité room=%s", room.room_id)

    client.add_event_callback(on_member, RoomMemberEvent)


def hook_flags(sync: DossierSync, flags: FlagService) -> None:
    """Flags raised and cleared → liaison notebook (kind "signalement"), once per command;
    raised and acknowledged → the activity extraction."""
    flags.observers.append(FlagJournal(sync))
    flags.observers.append(FlagActivity(sync))


class FlagActivity:
    """Flags raised and urgencies acknowledged → the activity extraction (counts and times)."""

    def __init__(self, sync: DossierSync) -> None:
        self.sync = sync

    async def on_flag(self, event: FlagEvent) -> None:
        """Counted once done (neither the steps before a change nor its failures), in patient
        rooms only."""
        match event:
            case FlagRaised() if self.sync.links.is_patient_room(event.room_id):
                self.sync.activity.flag_raised(
                    event.room_id, event.kind.value, by=event.by, at_ms=event.at_ms
                )
            case FlagAcknowledged() if self.sync.links.is_patient_room(event.room_id):
                self.sync.activity.flag_acknowledged(
                    event.room_id,
                    by=event.by,
                    at_ms=event.at_ms,
                    flag_by=event.flag_by,
                    flag_at_ms=event.flag_at_ms,
                )
            case _:
                return
        self.sync.worker.wake()


def hook_messages(sync: DossierSync, client: AsyncClient) -> None:
    """Every message of a patient room counted once (never read) for the activity extraction."""

    async def on_message(room: Any, event: Any) -> None:
        if event.sender == client.user_id or not sync.links.is_patient_room(room.room_id):
            return
        sync.activity.message(room.room_id, event.event_id, event.server_timestamp)

    client.add_event_callback(on_message, (RoomMessage, MegolmEvent))


class FlagJournal:
    """The notebook entry of a flag raised or cleared, keyed by the command's event id.

    ``FlagRaising`` / ``FlagClearing`` (before the room's state changes) queue it *held* in
    the durable outbox (due only in ``hold_ms``); ``FlagRaised`` / ``FlagCleared`` (once
    the change is done) release it at once; ``FlagNot*`` (the change failed) forget it.
    Killed in between, the held entry is delivered when its hold ends, whatever the replay
    of the command does: the entry can be neither lost nor doubled (one key per command).
    """

    hold_ms = 60_000

    def __init__(self, sync: DossierSync) -> None:
        self.sync = sync

    @staticmethod
    def _raised_text(
        kind: FlagKind, by: str, at_ms: int, motif: str | None, assignee: str | None
    ) -> str:
        text = f"Signalement « {kind.label} » par {by} le {_paris(at_ms)}"
        if assignee:
            text += f", à traiter par {assignee}"
        if motif:
            text += f" : {motif}"
        return text

    @staticmethod
    def _cleared_text(kind: FlagKind, by: str, at_ms: int | None) -> str:
        when = _paris(at_ms) if at_ms else _paris(int(datetime.now(UTC).timestamp() * 1000))
        return f"Signalement « {kind.label} » levé par {by} le {when}"

    async def on_flag(self, event: FlagEvent) -> None:
        held = isinstance(event, FlagChange)  # told before the change: its entry waits for it
        match event:
            case FlagRaising() | FlagRaised():
                self._raised(event, held=held)
            case FlagClearing() | FlagCleared():
                self._cleared(event, held=held)
            case FlagNotRaised():
                self.sync.outbox.cancel(idempotency_key(event.command_event_id, "flag-raised"))
            case FlagNotCleared():
                self.sync.outbox.cancel(idempotency_key(event.command_event_id, "flag-cleared"))
            case FlagAcknowledged():
                pass  # in the activity extraction (FlagActivity), not in the notebook
            case _:
                assert_never(event)

    def _raised(self, event: FlagRaising | FlagRaised, *, held: bool) -> None:
        text = self._raised_text(event.kind, event.by, event.at_ms, event.motif, event.assignee)
        self._write(event.room_id, text, event.by, event.command_event_id, "flag-raised", held=held)

    def _cleared(self, event: FlagClearing | FlagCleared, *, held: bool) -> None:
        text = self._cleared_text(event.kind, event.by, None)
        self._write(
            event.room_id, text, event.by, event.command_event_id, "flag-cleared", held=held
        )

    def _write(
        self, room_id: str, text: str, by: str, event_id: str, purpose: str, *, held: bool
    ) -> None:
        if not self.sync.links.is_patient_room(room_id):
            return
        key = idempotency_key(event_id, purpose)
        entry = AddNotebookEntry(kind="signalement", text=text, actor=by, room_id=room_id)
        self.sync.membership.enqueue(key, entry, at_ms=now_ms() + self.hold_ms if held else None)
        if not held:
            self.sync.outbox.release(key)
            self.sync.worker.wake()


def hook_commands(sync: DossierSync, registry: CommandRegistry) -> None:
    """Exports → liaison notebook, through the registry's observers (invitations are noted
    by ``bots.dossier_link.arrivals``, with the way the history went)."""

    async def observe(ctx: CommandContext, command: Command, values: Mapping[str, Any]) -> None:
        if command.name != "export":
            return
        room_id = ctx.room_id
        if not sync.links.is_patient_room(room_id):
            return
        when = _paris(ctx.origin_server_ts)
        options = values.get("options") or "toute la conversation"
        text = f"Export PDF de la conversation demandé par {ctx.sender} le {when} ({options})"
        entry = AddNotebookEntry(text=text, actor=ctx.sender, room_id=room_id)
        sync.membership.enqueue(idempotency_key(ctx.event_id, command.name), entry)
        sync.activity.exported(room_id, event_id=ctx.event_id, at_ms=ctx.origin_server_ts)

    registry.observers.append(observe)


def _paris(at_ms: int) -> str:
    return format_paris(at_ms or int(datetime.now(UTC).timestamp() * 1000))
