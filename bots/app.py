"""The bot, wired in one place: session, ledger, I/O, command families, sync loop,
escalation. ``python -m bots`` builds it from the profile and runs it until SIGTERM.

Adding a command family (issue 6 dossier link, issue 7 ``!trouver``): write
``bots/commands/<family>.py`` with a ``register(registry, …)`` function and add one line to
``BotApp._register_families``; its dependencies come from the ``BotServices`` it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from nio import AsyncClient, Event, RoomMemberEvent

from bots.background_tasks import BackgroundTasks, end
from bots.commands import directory as directory_commands
from bots.commands import export as export_commands
from bots.commands import flags as flag_commands
from bots.commands import help as help_commands
from bots.commands import patients as patient_commands
from bots.commands.registry import CommandRegistry, PowerLevels
from bots.config import BotConfig
from bots.dossier_link import service as dossier_sync
from bots.dossier_link.arrival_store import ArrivalStore
from bots.dossier_link.arrivals import Arrivals, on_sync_response
from bots.dossier_link.arrivals import watch as watch_arrivals
from bots.dossier_link.service import DossierSync
from bots.export.pending import PendingExports
from bots.export.people import DossierRoomPeople
from bots.export.service import ExportService
from bots.export.welcome import TranscriptSender
from bots.flags.escalation import EscalationStore, Escalator
from bots.flags.intents import ClearIntents
from bots.flags.service import FlagService
from bots.flags.spaces import FolderSpaces
from bots.handlers import BotHandlers
from bots.matrix import history, history_bundles
from bots.matrix.handover import Handover
from bots.matrix.io import MatrixIO, MatrixRequestError
from bots.matrix.ledger import EventLedger, open_database
from bots.matrix.room_snapshot import RoomSnapshot
from bots.matrix.room_state import RoomStateCache
from bots.matrix.session import open_cross_signed_session, session_sync_loop
from bots.matrix.sync_loop import SyncLoop
from bots.matrix.trust import MemberDeviceTrust
from bots.shards import direct_scope

log = logging.getLogger(__name__)


# The mail bridge's commands (bridges/mail/handlers.py), typed to this bot by mistake: told
# where they go rather than « Commande inconnue ».
_IN_COURRIERS = (
    "commande des Courriers (messagerie sécurisée de santé) : elle se tape dans votre salon "
    "Courriers ou votre conversation avec le bot des courriers, quand les courriers sont "
    "activés sur ce serveur (demandez à votre administrateur)."
)
MAIL_BRIDGE_COMMANDS = dict.fromkeys(("courrier", "mail", "classer", "connecter"), _IN_COURRIERS)


@dataclass
class BotServices:
    """What command families may depend on."""

    config: BotConfig
    client: AsyncClient
    io: MatrixIO
    cache: RoomStateCache
    flags: FlagService
    patient_hooks: patient_commands.PatientHooks
    db: sqlite3.Connection
    # long-running jobs of command families, started with the app (issue 6: dossier link)
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    arrivals: Arrivals | None = None  # the one way into a patient's conversation (issue 11)
    # rooms made for another of the bot's accounts (bots/shards.py), left once it is in
    handover: Handover | None = None
    # what components start beside the sync loop (greetings, key requests, exports,
    # welcomes): ended by ``BotApp.close`` before the client closes
    side_work: list[BackgroundTasks] = field(default_factory=list)
    # who must see the events of a timeline gap fetched back after a long absence (nio's
    # event callbacks never do): newcomers and departures (SyncLoop.gap_observers)
    gap_observers: list[Callable[[str, Event], Awaitable[None]]] = field(default_factory=list)


@dataclass
class BotApp:
    config: BotConfig
    client: AsyncClient
    db: sqlite3.Connection
    ledger: EventLedger
    registry: CommandRegistry
    services: BotServices
    sync_loop: SyncLoop
    escalator: Escalator
    dossier_sync: DossierSync | None = None  # None: no dossier configured
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @classmethod
    async def create(
        cls, config: BotConfig, *, password: str, pickle_key: str, cross_signing_key: str
    ) -> BotApp:
        client = await open_cross_signed_session(
            config, password=password, pickle_key=pickle_key, cross_signing_key=cross_signing_key
        )
        try:
            history.install_shared_history(client)  # MSC3061 / MSC4268, once cross-signed
            return cls._wire(config, client)
        except BaseException:
            await client.close()
            raise

    @classmethod
    def _wire(cls, config: BotConfig, client: AsyncClient) -> BotApp:
        db = open_database(config.ledger_path)
        ledger = EventLedger(db)
        io = MatrixIO(client, MemberDeviceTrust(client))
        cache = RoomStateCache()
        escalator = Escalator(
            EscalationStore(db),
            interval_seconds=config.escalation.interval_seconds,
            max_reminders=config.escalation.max_reminders,
        )
        folders = FolderSpaces(
            io,
            db,
            bot_user_id=client.user_id,
            server_name=config.server_name,
            siblings=config.shards.siblings,
        )
        flags = FlagService(
            client,
            io,
            cache,
            folders,
            escalator,
            server_name=config.server_name,
            intents=ClearIntents(db),
        )
        services = BotServices(
            config, client, io, cache, flags, patient_commands.PatientHooks(), db
        )
        services.handover = Handover(client, io, cache, config.shards)
        services.side_work.append(services.handover.tasks)
        registry = CommandRegistry(
            config.command_prefix,
            PowerLevels(flag=config.flag_power_level, admin=config.admin_power_level),
            elsewhere=MAIL_BRIDGE_COMMANDS,
        )
        sync = cls._register_families(registry, services)
        handover = services.handover
        handlers = BotHandlers(
            client,
            io,
            registry,
            cache,
            flags,
            server_name=config.server_name,
            elsewhere=handover.elsewhere,
        )
        if config.shards.count > 1:
            client.add_event_callback(handover.on_member, RoomMemberEvent)
        sync_loop = session_sync_loop(
            client, ledger, handlers, config, snapshot=RoomSnapshot(db, cache)
        )
        if services.arrivals is not None:
            sync_loop.observers.append(on_sync_response(services.arrivals))
        sync_loop.gap_observers.extend(services.gap_observers)
        services.side_work += [handlers.tasks, sync_loop.undecryptable.tasks]
        shards = config.shards
        if shards.siblings:

            async def hand_over_and_admit() -> None:
                """Rooms whose account joined while this one was down; on the front, the
                folders made before ``bot.shards`` grew: the new accounts let in."""
                await sync_loop.stats.first_sync_done.wait()
                left = await handover.resume()
                if left:
                    log.info("%d salon(s) remis à leur compte au démarrage", left)
                if not shards.is_front:
                    return
                try:
                    sent = await folders.admit_siblings()
                except MatrixRequestError as exc:  # the flags still work; told, not fatal
                    log.warning(
                        "dossiers personnels : autres comptes non invités (%s)", exc.errcode
                    )
                    return
                if sent:
                    log.info("dossiers personnels : %d invitation(s) des autres comptes", sent)

            services.background.append(hand_over_and_admit)
        return cls(config, client, db, ledger, registry, services, sync_loop, escalator, sync)

    @staticmethod
    def _register_families(registry: CommandRegistry, s: BotServices) -> DossierSync | None:
        """The command families, in the order `!aide` lists them; the dossier link, if any."""
        directory_results = directory_commands.LastResults()  # !trouver -> !inviter <n>
        sync = dossier_sync.connect(s)  # one dossier client, passed to whoever reads the file
        people = DossierRoomPeople(sync.dossier) if sync is not None else None
        exports = ExportService(
            s.client,
            s.io,
            describe_room=people,
            pending=PendingExports(s.db),
            command_prefix=s.config.command_prefix,
            direct_scope=direct_scope(s.config.shards),
        )
        s.arrivals = _arrivals(s, exports)
        s.side_work += [exports.tasks, s.arrivals.tasks]
        if sync is not None:
            sync.membership.attach(s.arrivals)
        patient_commands.register(
            registry,
            client=s.client,
            io=s.io,
            server_name=s.config.server_name,
            label_max_length=s.config.label_max_length,
            hooks=s.patient_hooks,
            patient_rooms=s.cache.patient_rooms,
            arrivals=s.arrivals,
            directory_results=directory_results,
            shards=s.config.shards,
            handover=s.handover,
        )
        flag_commands.register(registry, s.flags, motif_max_length=s.config.motif_max_length)
        export_commands.register(registry, exports)

        async def resume_exports() -> None:  # those a restart cut short
            await exports.resume()

        s.background.append(resume_exports)
        if sync is not None:
            dossier_sync.install(registry, s, sync, arrivals=s.arrivals)
            directory_commands.register(
                registry,
                search=directory_commands.DossierDirectory(sync.dossier),
                results=directory_results,
            )
        help_commands.register(registry)
        return sync

    # -- lifecycle --
    async def start(self) -> None:
        """Start syncing and escalating; returns once the first sync is handled."""
        self._tasks = [
            asyncio.create_task(self.sync_loop.run(), name="bot-sync"),
            asyncio.create_task(self._escalate_once_synced(), name="bot-escalation"),
            *(asyncio.create_task(job(), name="bot-job") for job in self.services.background),
        ]
        waiter = asyncio.create_task(self.sync_loop.stats.first_sync_done.wait())
        pending: set[asyncio.Task[Any]] = {waiter, *self._tasks}
        # the readiness signal (« bot démarré ») is the first sync handled: a background job
        # that ends early (nothing to resume) must not end the wait (issue 15)
        while waiter in pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not waiter and not task.cancelled() and task.exception():
                    waiter.cancel()
                    task.result()  # raise the failure
            if not pending - {waiter} and waiter in pending:  # every task ended cleanly
                await waiter

    async def _escalate_once_synced(self) -> None:
        """Reminders wait for the first sync: before it nio knows no room, and a reminder due
        while the bot was down failed (and was counted as sent) at every restart."""
        await self.sync_loop.stats.first_sync_done.wait()
        await self.escalator.run()

    async def wait(self) -> None:
        """Run until a task fails or the app is stopped."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception():
                raise task.exception()  # type: ignore[misc]

    async def stop(self, drain_timeout: float = 5.0) -> None:
        own = sorted(self.sync_loop.stats.own_ms)
        if own:
            log.info(
                "temps de traitement propre : médiane %.2f ms, p95 %.2f ms (%d événements)",
                own[len(own) // 2],
                own[min(len(own) - 1, round(0.95 * (len(own) - 1)))],
                len(own),
            )
        self.sync_loop.stop()
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await self.sync_loop.drain(drain_timeout)
        await self.close()

    async def close(self) -> None:
        """Every task cancelled where it stands (the sync loop's, the handlers', what the
        components started beside them), then the client and the database closed:
        the end of ``stop`` once the sync loop drained; alone, a crash mid-handling."""
        await end(self._tasks)
        await self.sync_loop.close()
        for side in self.services.side_work:
            await side.close()
        if self.dossier_sync is not None:
            await self.dossier_sync.close()
        await self.client.close()
        self.db.close()


def _arrivals(s: BotServices, exports: ExportService) -> Arrivals:
    """Newcomers of patient rooms: bundle, retries on device changes, PDF fallback."""
    config = s.config
    arrivals = Arrivals(
        s.client,
        s.io,
        ArrivalStore(s.db),
        share_bundle=history_bundles.share_history_bundle,
        capable_devices=history_bundles.capable_devices,
        all_devices=history_bundles.device_ids,
        send_transcript=TranscriptSender(s.client, s.io, config.homeserver_url).send,
        direct_room=exports.direct_room,
        grace_seconds=config.history_fallback_seconds,
        window_seconds=config.history_watch_days * 86400,
    )
    cache, admin_level = s.cache, config.admin_power_level

    def is_admin(room_id: str, user: str) -> bool:
        room = s.client.rooms.get(room_id)
        if user in cache.creators.get(room_id, ()):
            return True
        return room is not None and room.power_levels.get_user_level(user) >= admin_level

    arrivals.is_patient_room = cache.is_patient_room
    arrivals.is_admin = is_admin
    s.gap_observers.append(watch_arrivals(arrivals, s.client))
    s.background.append(arrivals.fallback.run)
    return arrivals
