"""The bot's sync loop: at-least-once delivery to the handlers, never twice.

- The sync token lives in the bot's ledger and is saved only once every event of the batch
  (and of all earlier batches) has been handled: a crash re-reads the unhandled events.
- Every event handed to the handlers is recorded in the ledger ('started', then 'done'); an
  event already 'done' is never handled again, after a restart or a replayed sync.
- Events are handled in order within a room, rooms in parallel. The next /sync waits for a
  batch's handlers, up to ``reply_window_seconds`` (``REPLY_WINDOW_SECONDS``, why below); past
  it the loop keeps syncing while handlers run: a slow command does not hold other rooms.
- At start, the rooms' state comes from the room snapshot (``room_snapshot.py``) and the sync
  resumes from the saved token, without ``full_state``: a restart costs the homeserver what
  happened while the bot was away, not the state of every room (issue 15). The full state is
  asked for only when the snapshot is not complete (first start, first start after upgrade).
- Incremental syncs lazy-load members once the snapshot holds them all (``sync_filter``): the
  rooms a lazy response may leave incomplete (just joined, a gap) have their members read
  back from the server before any handler runs (``member_repair.py``). A member a lazy
  response only sent again is named as a device-list change by Synapse: its key query is
  deferred and batched, not made ahead of the batch (``device_changes.py``).
- Ignored: the bot's own events, events older than the bot's join in that room, and, on
  the very first start (no token yet), the backlog of the initial sync.
- Undecryptable events go to ``UndecryptableEvents`` (logged by id, key requested, retried
  when keys arrive); they never reach a handler undecrypted.
- The homeserver going away: nio retries each request with exponential back-off; sync
  errors answered by the server are retried here with back-off too.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from nio import (
    AsyncClient,
    Event,
    ForwardedRoomKeyEvent,
    InviteMemberEvent,
    MatrixRoom,
    MegolmEvent,
    RoomKeyEvent,
    RoomMemberEvent,
    SyncError,
    SyncResponse,
    UploadFilterResponse,
)

from bots.matrix.device_changes import DeferredKeyQueries, lazy_resends, unknown_senders
from bots.matrix.ledger import EventLedger, now_ms
from bots.matrix.member_repair import repair_members, rooms_to_check
from bots.matrix.room_snapshot import RoomSnapshot
from bots.matrix.timeline_gap import fetch_gap
from bots.matrix.timing import HandlingClock
from bots.matrix.undecryptable import UndecryptableEvents
from deployment.conventions import wait_set
from deployment.incidents import new_reference

log = logging.getLogger(__name__)

LEDGER_RETENTION_MS = 30 * 24 * 3600 * 1000  # handled-event ids kept 30 days

# how long the next /sync waits for a batch's handlers, as nio's ``sync_forever`` does. Asked
# for while a reply was on its way, the /sync reached Synapse ahead of it and the stored reply
# woke the bot's /sync together with the recipient's: two answers computed at once (the
# recipient's second in 14 of 27 measured rounds, never for a bare nio echo; issue 15).
# Above a quick command's reply (20–60 ms, p99 ~120 ms on the loaded 2-core bench machine);
# what a slow handler adds to other rooms' events, and a handler waiting for a room to appear
# in a later sync (one just created) waits this much more.
REPLY_WINDOW_SECONDS = 0.2
# a member a lazy sync only sent again has its keys queried at most this much later
DEFERRED_KEYS_SECONDS = 30.0


def sync_filter(timeline_limit: int, *, lazy_members: bool = False) -> dict[str, Any]:
    """The bot's /sync filter. ``lazy_members`` for incremental syncs once the room snapshot
    holds every member: an eager /sync costs Synapse a lookup per room of the account (73 ms
    at 20,000 rooms, against 3 ms for a client in 51; issue 15), a lazy one does not; the
    members a lazy response leaves out are read back by ``member_repair``."""
    return {
        "room": {
            "timeline": {"limit": timeline_limit},
            "state": {"lazy_load_members": lazy_members},
            "ephemeral": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]},
        },
        "presence": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
    }


class EventHandlers(Protocol):
    def wants(self, event: Event, room: MatrixRoom) -> bool: ...

    async def handle(self, event: Event, room: MatrixRoom) -> None: ...

    def observe_state(self, room_id: str, event: Event) -> None: ...

    async def on_invite(
        self, room_id: str, inviter: str | None, *, direct: bool = False
    ) -> None: ...


@dataclass
class _Batch:
    token: str
    outstanding: int = 0
    sealed: bool = False
    # set once every event of this batch is handled (the next /sync may go)
    handled: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Work:
    event: Event
    room: MatrixRoom
    batch: _Batch | None
    done: asyncio.Future[None] | None = None


@dataclass
class SyncStats:
    batches: int = 0
    handled: int = 0
    skipped_done: int = 0
    errors: int = 0
    last_error_ref: str | None = None
    first_sync_done: asyncio.Event = field(default_factory=asyncio.Event)
    # the bot's own handling time per event (homeserver waits excluded), most recent 10,000
    own_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))


class SyncLoop:
    def __init__(
        self,
        client: AsyncClient,
        ledger: EventLedger,
        handlers: EventHandlers,
        undecryptable: UndecryptableEvents,
        *,
        timeout_ms: int = 30_000,
        backoff_max_seconds: float = 60.0,
        timeline_limit: int = 100,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        snapshot: RoomSnapshot | None = None,
        reply_window_seconds: float = REPLY_WINDOW_SECONDS,
        deferred_keys_seconds: float = DEFERRED_KEYS_SECONDS,
    ) -> None:
        self.filter = sync_filter(timeline_limit)
        self.lazy_filter = sync_filter(timeline_limit, lazy_members=True)
        self.client = client
        self.ledger = ledger
        self.handlers = handlers
        self.undecryptable = undecryptable
        self.timeout_ms = timeout_ms
        self.backoff_max = backoff_max_seconds
        self.reply_window = reply_window_seconds
        self._sleep = sleep
        # None: no snapshot, the full state is asked for at every start
        self.snapshot = snapshot
        self._batches: deque[_Batch] = deque()
        self._queues: dict[str, asyncio.Queue[_Work]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._in_flight: set[str] = set()
        self._stopping = False
        self.stats = SyncStats()
        # key queries of members a lazy sync only sent again, made together later
        self.deferred_keys = DeferredKeyQueries(deferred_keys_seconds)
        # called with every sync response once handled (device-list changes, key requests:
        # bots.dossier_link.arrivals); they must not block (spawn their work)
        self.observers: list[Callable[[SyncResponse], None]] = []
        # called with each event of a timeline gap fetched back (a long absence): nio's own
        # event callbacks only ever see the sync's timeline (bots.dossier_link.membership)
        self.gap_observers: list[Callable[[str, Event], Awaitable[None]]] = []
        undecryptable.set_redeliver(self.redeliver)

    # -- the loop --
    async def run(self) -> None:
        token = self.ledger.sync_token()
        first_ever = token is None
        full_state = True
        if token is not None and self.snapshot is not None and self.snapshot.complete():
            started = asyncio.get_running_loop().time()
            rooms = self.snapshot.restore(self.client)
            full_state = False
            log.info(
                "état de %d salons relu en %.1f s ; reprise incrémentale de la sync",
                rooms,
                asyncio.get_running_loop().time() - started,
            )
        first_sync = True
        delay = 0.5
        eager = await self._filter_id(self.filter)
        # lazy only with a snapshot: it holds the members a lazy response leaves out
        lazy = await self._filter_id(self.lazy_filter) if self.snapshot is not None else eager
        await self.undecryptable.retry_all()
        self.ledger.prune(now_ms() - LEDGER_RETENTION_MS)
        while not self._stopping:
            pending = set(self.client.users_for_key_query)  # before nio reads the response
            try:
                resp = await self.client.sync(
                    timeout=0 if first_sync else self.timeout_ms,
                    sync_filter=eager if full_state else lazy,
                    since=token,
                    full_state=full_state or None,
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                # nio retries connection errors itself; anything else (a proxy's garbage
                # answer …) is logged and retried with back-off, never fatal
                log.warning("sync en échec, nouvel essai dans %.1f s", delay, exc_info=True)
                await self._sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            if isinstance(resp, SyncError):
                if resp.status_code in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"):
                    raise RuntimeError("jeton d'accès du bot refusé par le serveur")
                log.warning("sync refusée (%s), nouvel essai dans %.1f s", resp.status_code, delay)
                await self._sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            incremental = not (token is None or full_state)
            to_check: dict[str, str] = {}
            resent: set[str] = set()
            if self.snapshot is not None:
                # before the batch exists, so its token is never saved ahead of the snapshot;
                # not recorded (disk full …): the same sync is asked for again
                try:
                    if incremental:
                        before = self.snapshot.members(resp.rooms.join)
                        to_check = rooms_to_check(resp, before)
                        if not first_sync:  # a catch-up: a device may have been added
                            resent = lazy_resends(resp, before) - pending
                    self.snapshot.record(resp, full_state=not incremental, unread=to_check)
                except Exception:
                    log.exception("état des salons non enregistré, nouvel essai dans %.1f s", delay)
                    await self._sleep(delay)
                    delay = min(delay * 2, self.backoff_max)
                    continue
            elif incremental:
                to_check = rooms_to_check(resp)
            # at once, before anything awaits: a handler still running from an earlier batch
            # would otherwise query the keys of those just named
            self._defer_key_queries(resp, resent)
            delay = 0.5
            batch: _Batch | None = None
            try:
                if incremental:
                    await self._repair_members(to_check)
                batch = await self._after_sync(resp, skip_timeline=first_ever, since=token)
            except asyncio.CancelledError:
                raise
            except Exception:
                ref = new_reference()
                log.exception("réponse de sync mal traitée réf=%s", ref)
            token = resp.next_batch
            first_ever = False
            first_sync = False
            full_state = False
            self.stats.batches += 1
            self.stats.first_sync_done.set()
            if batch is not None and batch.outstanding:
                await self._await_replies(batch)

    async def _await_replies(self, batch: _Batch) -> None:
        """Until the batch's handlers are done, or the reply window has passed."""
        await wait_set(batch.handled, self.reply_window)

    async def _repair_members(self, to_check: dict[str, str]) -> None:
        """Before any handler: no former member re-added by a stale state block, and the
        members a lazy response left out read back. With a snapshot, every read-back it owes
        (``to_check`` recorded there, and any earlier one unanswered or cut by a crash)."""
        rooms = sorted(self.snapshot.unread_members()) if self.snapshot else list(to_check)
        for room_id in rooms:
            try:
                await repair_members(
                    self.client, room_id, self.snapshot, stale=to_check.get(room_id) == "state"
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("membres du salon non relus room=%s", room_id, exc_info=True)

    async def _filter_id(self, sync_filter: dict[str, Any]) -> str | dict[str, Any]:
        """The filter uploaded once: every /sync names it instead of carrying it, so the
        homeserver does not parse and validate it again at each request. Inline if refused."""
        try:
            resp = await self.client.upload_filter(
                room=sync_filter["room"],
                presence=sync_filter["presence"],
                account_data=sync_filter["account_data"],
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            resp = None
        if isinstance(resp, UploadFilterResponse):
            return str(resp.filter_id)
        log.warning("filtre de sync non enregistré par le serveur : envoyé à chaque requête")
        return sync_filter

    def stop(self) -> None:
        self._stopping = True

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for the events already queued to be handled (shutdown, tests)."""
        queues = [q.join() for q in self._queues.values()]
        if queues:
            await asyncio.wait_for(asyncio.gather(*queues), timeout)

    async def close(self) -> None:
        for task in self._workers.values():
            task.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)
        self._workers.clear()

    # -- one sync response --
    async def _after_sync(
        self, resp: SyncResponse, *, skip_timeline: bool, since: str | None = None
    ) -> _Batch:
        client = self.client
        # what sync_forever would do: keys and to-device traffic
        jobs = [client.send_to_device_messages()]
        if client.should_upload_keys:
            jobs.append(client.keys_upload())
        if client.should_query_keys:
            jobs.append(client.keys_query())
        if client.should_claim_keys:
            jobs.append(client.keys_claim(client.get_users_for_key_claiming()))
        for result in await asyncio.gather(*jobs, return_exceptions=True):
            if isinstance(result, Exception):  # e.g. a key query already done concurrently
                log.warning("requête de clés en échec : %r", type(result).__name__)

        batch = _Batch(resp.next_batch)
        self._batches.append(batch)
        try:
            await self._dispatch(resp, batch, skip_timeline=skip_timeline, since=since)
        finally:
            # sealed even after a failure, or the saved token could never move again
            batch.sealed = True
            self._commit_tokens()
        for observer in self.observers:
            try:
                observer(resp)
            except Exception:
                log.exception("observateur de sync en échec")
        return batch

    def _defer_key_queries(self, resp: SyncResponse, resent: set[str] | frozenset[str]) -> None:
        """Members a lazy sync sent again are not queried before this batch is handled, but
        with the others deferred, once due (``device_changes``); the observers see the
        device-list changes the same way: the real ones now, the deferred ones when due."""
        olm = self.client.olm
        if olm is None:
            return
        # a device the bot does not know spoke to it: that device list did change
        unknown = unknown_senders(resp.to_device_events, self._known_keys)
        resent = set(resent) - unknown
        self.deferred_keys.release(unknown)
        olm.users_for_key_query.difference_update(resent)
        olm.users_for_key_query.update(unknown)
        self.deferred_keys.defer(resent)
        due = self.deferred_keys.due()
        olm.users_for_key_query.update(due)
        if resent or due or unknown:
            changed = [u for u in resp.device_list.changed if u not in resent]
            resp.device_list.changed = changed + sorted((due | unknown) - set(changed))

    def _known_keys(self, user_id: str) -> list[str]:
        return [d.curve25519 for d in self.client.device_store.active_user_devices(user_id)]

    async def _dispatch(
        self, resp: SyncResponse, batch: _Batch, *, skip_timeline: bool, since: str | None
    ) -> None:
        client = self.client

        for room_id, info in resp.rooms.invite.items():
            invite = next(
                (
                    e
                    for e in info.invite_state
                    if isinstance(e, InviteMemberEvent) and e.state_key == client.user_id
                ),
                None,
            )
            inviter = invite.sender if invite is not None else None
            direct = bool(invite is not None and invite.content.get("is_direct"))
            try:
                await self.handlers.on_invite(room_id, inviter, direct=direct)
            except Exception:
                log.warning("invitation non traitée room=%s", room_id, exc_info=True)

        for room_id, info in resp.rooms.join.items():
            room = client.rooms.get(room_id)
            if room is None:
                continue
            for event in info.state:
                self._observe(room_id, event)
            # state first (our own join among it), so that events from before the join,
            # earlier in the same timeline, are recognised as such
            for event in info.timeline.events:
                if event.source.get("state_key") is not None:  # nio events lack .state_key
                    self._observe(room_id, event)
            if skip_timeline:
                continue
            events = list(info.timeline.events)
            if info.timeline.limited and since:
                # more happened than the sync returns (a long absence): fetch the gap
                gap = await fetch_gap(self.client, room_id, info.timeline.prev_batch, since)
                for event in gap:
                    if event.source.get("state_key") is not None:  # nio events lack .state_key
                        self._observe(room_id, event)
                    for observe in self.gap_observers:
                        await observe(room_id, event)
                events = gap + events
            for event in events:
                self._route(event, room, batch)

        sessions = {
            e.session_id
            for e in resp.to_device_events
            if isinstance(e, RoomKeyEvent | ForwardedRoomKeyEvent)
        }
        for session_id in sessions:
            await self.undecryptable.retry_session(session_id)

    def _observe(self, room_id: str, event: Event) -> None:
        if (
            isinstance(event, RoomMemberEvent)
            and event.state_key == self.client.user_id
            and event.membership == "join"
            and event.prev_membership != "join"  # a join, not a profile change
        ):
            self.ledger.record_join(room_id, event.server_timestamp)
        self.handlers.observe_state(room_id, event)

    def _route(self, event: Event, room: MatrixRoom, batch: _Batch | None) -> None:
        if event.sender == self.client.user_id:
            return
        joined = self.ledger.joined_ts(room.room_id)
        if joined is not None and event.server_timestamp < joined:
            return
        if isinstance(event, MegolmEvent):
            self.undecryptable.add(event, room.room_id)
            return
        if not self.handlers.wants(event, room):
            return
        event_id = event.event_id
        if event_id in self._in_flight or self.ledger.is_done(event_id):
            self.stats.skipped_done += 1
            return
        self._in_flight.add(event_id)
        if batch is not None:
            batch.outstanding += 1
        self._queue_for(room.room_id).put_nowait(_Work(event, room, batch))

    async def redeliver(self, event: Event, room_id: str) -> None:
        """A formerly undecryptable event, now decrypted: handle it like a fresh one."""
        room = self.client.rooms.get(room_id)
        if room is not None:
            self._route(event, room, None)

    # -- per-room workers --
    def _queue_for(self, room_id: str) -> asyncio.Queue[_Work]:
        queue = self._queues.get(room_id)
        if queue is None:
            queue = self._queues[room_id] = asyncio.Queue()
            self._workers[room_id] = asyncio.create_task(
                self._worker(room_id, queue), name=f"room-{room_id}"
            )
        return queue

    async def _worker(self, room_id: str, queue: asyncio.Queue[_Work]) -> None:
        """Handles one room's events in order; ends when the room has nothing left, so idle
        rooms (tens of thousands in a region) cost no task."""
        while True:
            work = await queue.get()
            try:
                await self._handle(work)
            finally:
                queue.task_done()
            if queue.empty():  # nothing can be queued between this check and the return
                del self._queues[room_id]
                del self._workers[room_id]
                return

    async def _handle(self, work: _Work) -> None:
        event_id = work.event.event_id
        room_id = work.room.room_id
        with HandlingClock() as clock:  # ledger writes included, homeserver waits excluded
            try:
                self.ledger.mark_started(event_id, room_id)
                await self.handlers.handle(work.event, work.room)
                self.stats.handled += 1
            except asyncio.CancelledError:
                raise  # shutdown: not done, the token is not advanced past it
            except Exception:
                ref = new_reference()
                self.stats.errors += 1
                self.stats.last_error_ref = ref
                log.exception("échec du traitement réf=%s event=%s room=%s", ref, event_id, room_id)
            # done even after an unexpected error: a poison event must not loop forever
            self.ledger.mark_done(event_id, room_id)
        self.stats.own_ms.append(clock.own_seconds * 1000)
        self._in_flight.discard(event_id)
        if work.batch is not None:
            work.batch.outstanding -= 1
            if not work.batch.outstanding:
                work.batch.handled.set()
            self._commit_tokens()

    def _commit_tokens(self) -> None:
        last: str | None = None
        while self._batches and self._batches[0].sealed and self._batches[0].outstanding == 0:
            last = self._batches.popleft().token
        if last is not None:
            self.ledger.save_sync_token(last)
