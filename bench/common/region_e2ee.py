"""The E2EE part of bench/region_load.py (``--e2ee N``): real professionals, as Element is for
the server and the bot, in patient rooms with the bot of the deployment.

Each of the N professionals is a matrix-nio client with encryption and a store (its own
device, its keys uploaded, a /sync long-poll open all along). Professional i creates a patient
room through the bot (``!patient nouveau`` in a direct chat with it) and has professional i+1
invited into it (``!inviter``): every patient room holds the bot and two E2EE members. During
the load, each room's creator runs a closed loop of operations in its room:

- ``message``: a Megolm-encrypted text; round trip = sent → decrypted by the other member;
- ``urgent``: ``!urgent <motif>`` → the bot's « URGENCE signalée » notice (with the motif)
  decrypted by the sender;
- ``ack``: the other member's ``!vu`` → « Urgence prise en compte » decrypted by it;
- ``clear``: ``!fait urgent`` → « Signalement « urgence » levé » decrypted by the sender;
- ``export`` (now and then): ``!export`` → the bot's PDF event decrypted, the file downloaded
  and decrypted (it must start with ``%PDF``).

Every wait has a deadline: an operation not answered by then is an error (and the loop goes
on). A send that gets no answer (a worker killed under it) is repeated with the same
transaction id, as Element does, and counted as a retry. At the end, once every expected event
is seen or the drain deadline passed: each message must have been decrypted by the other
member exactly once (one event id), each command answered by exactly one notice of its kind
(a second one is *doubled*, none is *lost*), each export by exactly one PDF. An event the
member could not decrypt is counted as ``undecryptable`` (and its message as lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from nio import AsyncClient, MegolmEvent, RoomCreateResponse, RoomSendResponse, SyncResponse

from bench.common.clients import ENCRYPTED, e2ee_client
from bench.common.measures import pct
from bots.export.media import MediaFetcher, MediaSource
from homeserver.admin_api import RegisteredUser

OPERATIONS = ("message", "urgent", "ack", "clear", "export")
TAG = "bench-e2ee"


def motif(room: int, n: int | str) -> str:
    """A flag's motif, found in the bot's notices by substring: bracketed, so that no motif
    is part of another (« 0-3 » is part of « 0-33 »: each notice of the one counted the
    other's, 74 « doubled » notices in a 5-minute run that had none)."""
    return f"{TAG} [{room}-{n}]"


URGENT, ACK, CLEAR = "URGENCE signalée", "Urgence prise en compte", "« urgence » levé"
OPERATION_OF = {URGENT: "urgent", ACK: "ack", CLEAR: "clear"}  # the notice → its command
SYNC_FILTER = {"room": {"timeline": {"limit": 200}}, "presence": {"not_types": ["*"]}}


@dataclass
class E2eeResults:
    round_trips: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # command accepted by the homeserver → the bot's notice accepted (origin_server_ts): the
    # bot's part of a round trip, the rest being the two clients' sends and syncs
    bot_side: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)  # operation -> unanswered / failed
    retries: int = 0
    lost: Counter[str] = field(default_factory=Counter)  # kind -> expected, never seen
    doubled: Counter[str] = field(default_factory=Counter)  # kind -> seen more than once
    undecryptable: int = 0
    redelivered: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # why a request was repeated


@dataclass
class Seen:
    event_id: str
    sender: str
    content: dict[str, Any]
    at: float  # when the sync that carried it came back (monotonic)
    ts: int  # origin_server_ts (ms): when the homeserver accepted it


class Member:
    """One professional's device: its sync loop records every timeline event it decrypts."""

    def __init__(self, client: AsyncClient, results: E2eeResults) -> None:
        self.client = client
        self.results = results
        self.timeline: dict[str, list[Seen]] = defaultdict(list)
        self.event_ids: set[str] = set()
        self.tick = asyncio.Event()
        self.running = True
        self.task: asyncio.Task[None] | None = None

    @property
    def user_id(self) -> str:
        return str(self.client.user_id)

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while self.running:
            try:
                resp = await asyncio.wait_for(
                    self.client.sync(timeout=5_000, sync_filter=SYNC_FILTER), 40
                )
            except (TimeoutError, aiohttp.ClientError, OSError):
                await asyncio.sleep(0.5)
                continue
            now = time.monotonic()
            if not isinstance(resp, SyncResponse):
                await asyncio.sleep(0.5)
                continue
            for room_id, info in resp.rooms.join.items():
                for event in info.timeline.events:
                    if event.event_id in self.event_ids:
                        self.results.redelivered += 1
                        continue
                    self.event_ids.add(event.event_id)
                    if isinstance(event, MegolmEvent):
                        self.results.undecryptable += 1
                        continue
                    content = event.source.get("content", {})
                    seen = Seen(event.event_id, event.sender, content, now, event.server_timestamp)
                    self.timeline[room_id].append(seen)
            if self.client.should_query_keys:
                with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
                    await asyncio.wait_for(self.client.keys_query(), 30)
            self.tick.set()
            self.tick = asyncio.Event()

    async def wait(
        self, room_id: str, found: Callable[[Seen], bool], deadline: float, start: int = 0
    ) -> Seen | None:
        """The first event of ``room_id``'s timeline (from ``start``) that ``found`` accepts,
        or None once ``deadline`` (monotonic) passed."""
        checked = start
        while True:
            events = self.timeline[room_id]
            for seen in events[checked:]:
                if found(seen):
                    return seen
            checked = len(events)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.tick.wait(), left)

    def mark(self, room_id: str) -> int:
        return len(self.timeline[room_id])

    async def send(self, room_id: str, body: str, deadline: float) -> str | None:
        """A text sent encrypted, repeated with the same transaction id while no answer comes
        (what Element does); its event id, or None by ``deadline``."""
        txn = uuid.uuid4().hex
        first = True
        while time.monotonic() < deadline:
            if not first:
                self.results.retries += 1
                await asyncio.sleep(0.5)
            first = False
            try:
                resp = await asyncio.wait_for(
                    self.client.room_send(
                        room_id,
                        "m.room.message",
                        {"msgtype": "m.text", "body": body},
                        tx_id=txn,
                        ignore_unverified_devices=True,
                    ),
                    max(0.1, deadline - time.monotonic()),
                )
            except Exception as exc:  # a bench: every failure is retried, counted
                self.results.reasons[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1
                continue
            if isinstance(resp, RoomSendResponse):
                return str(resp.event_id)
            self.results.reasons[str(getattr(resp, "status_code", type(resp).__name__))] += 1
        return None

    async def close(self) -> None:
        self.running = False
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.client.close()


def _notice(kind: str, motif: str | None = None) -> Callable[[Seen], bool]:
    def found(seen: Seen) -> bool:
        body = str(seen.content.get("body", ""))
        return (
            seen.content.get("msgtype") == "m.notice"
            and kind in body
            and (motif is None or motif in body)
        )

    return found


def _pdf(bots: frozenset[str]) -> Callable[[Seen], bool]:
    def found(seen: Seen) -> bool:
        return seen.sender in bots and seen.content.get("msgtype") == "m.file"

    return found


class E2eeLoad:
    """N professionals, their patient rooms with the bot, and the operations' loop."""

    def __init__(
        self, homeserver: str, bots: tuple[str, ...], work: Path, http: aiohttp.ClientSession
    ):
        """``bots``: every account of the bot, the front (the one people write to) first;
        a patient room lives with any of them (``bot.shards``)."""
        self.homeserver = homeserver
        self.bot = bots[0]
        self.bots = frozenset(bots)
        self.work = work
        self.http = http
        self.results = E2eeResults()
        self.members: list[Member] = []
        self.rooms: list[str] = []
        # what must be seen exactly once at the end
        self.messages: list[tuple[int, str]] = []  # (room index, text) the other member reads
        self.commands: Counter[tuple[int, str, str]] = Counter()  # (room, kind, motif) asked
        self.exports: Counter[int] = Counter()  # room index -> exports asked

    # -- setting up, before the clock starts --
    async def prepare(self, logins: list[RegisteredUser]) -> None:
        """``logins``: each professional's."""
        deadline = time.monotonic() + 240 + 10 * len(logins)
        for i, login in enumerate(logins):
            client = await asyncio.wait_for(
                e2ee_client(self.homeserver, login, self.work / f"store{i}"),
                max(1.0, deadline - time.monotonic()),
            )
            self.members.append(Member(client, self.results))
        for member in self.members:
            member.start()
        self.rooms = list(
            await asyncio.gather(*(self._patient_room(i, deadline) for i in range(len(logins))))
        )
        await asyncio.gather(*(self._invite_next(i, deadline) for i in range(len(logins))))
        # a first flag cycle per room, untimed: a person's first flag of a kind creates their
        # folder (a space), once in the deployment's life; the load measures the next ones
        # (a room's first cycle took 3–8× longer in the functional runs)
        left = max(1.0, deadline - time.monotonic())
        await asyncio.gather(
            *(self._flag_cycle(i, motif(i, "prep"), left) for i in range(len(logins)))
        )

    async def _patient_room(self, i: int, deadline: float) -> str:
        me = self.members[i]
        resp = await asyncio.wait_for(
            me.client.room_create(invite=[self.bot], initial_state=ENCRYPTED, is_direct=True),
            max(1.0, deadline - time.monotonic()),
        )
        if not isinstance(resp, RoomCreateResponse):
            raise RuntimeError(f"salon direct avec le bot refusé : {resp}")
        dm = str(resp.room_id)
        await self._until(lambda: self._joined(me, dm, self.bot), deadline, "bot dans le salon")
        label = f"Suivi bench {i}"
        await self._command(me, dm, f"!patient nouveau {label}", deadline)
        notice = await me.wait(dm, _notice(f"Salon patient « {label} » créé"), deadline)
        if notice is None:
            said = [
                str(x.content.get("body", ""))[:80] for x in me.timeline[dm] if x.sender == self.bot
            ]
            raise RuntimeError(f"salon patient non créé à temps ; le bot a dit : {said}")
        body = str(notice.content["body"])
        link = next(w for w in body.split() if w.startswith("https://matrix.to/#/!"))
        room_id = link.split("#/")[1].split("?")[0]
        await self._join(me, room_id, deadline)
        await self._until(partial(self._joined, me, room_id, me.user_id), deadline, "salon vu")
        return room_id

    async def _invite_next(self, i: int, deadline: float) -> None:
        me, other, room_id = self._room(i)
        start = me.mark(room_id)
        await self._command(me, room_id, f"!inviter {other.user_id}", deadline)
        if await me.wait(room_id, _notice("a été invité(e)"), deadline, start) is None:
            raise RuntimeError("invitation non confirmée à temps")
        await self._join(other, room_id, deadline)
        for a, b in ((me, other), (other, me)):
            await self._until(partial(self._joined, a, room_id, b.user_id), deadline, "membre vu")
            # b's device known by a: the room key will be shared with it
            await self._until(partial(self._knows, a, b), deadline, "appareil connu")

    @staticmethod
    def _joined(member: Member, room_id: str, user_id: str) -> bool:
        room = member.client.rooms.get(room_id)
        return bool(room and user_id in room.users and user_id not in room.invited_users)

    @staticmethod
    def _knows(member: Member, other: Member) -> bool:
        return other.client.device_id in member.client.device_store[other.user_id]

    @staticmethod
    async def _until(probe: Callable[[], bool], deadline: float, what: str) -> None:
        while not probe():
            if time.monotonic() > deadline:
                raise RuntimeError(f"préparation E2EE : {what} (délai dépassé)")
            await asyncio.sleep(0.1)

    async def _join(self, member: Member, room_id: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                resp = await asyncio.wait_for(member.client.join(room_id), 30)
                if getattr(resp, "room_id", None):
                    return
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.3)
        raise RuntimeError("salon patient : jonction impossible à temps")

    async def _command(self, member: Member, room_id: str, body: str, deadline: float) -> None:
        if await member.send(room_id, body, deadline) is None:
            raise RuntimeError("commande non envoyée à temps")

    # -- the load --
    async def run(self, stop: float, op_timeout: float, export_every: int) -> None:
        # only the load's figures: the history before a member joined is not theirs to read,
        # a send before the joined room reached the sync is the set-up's own haste, and the
        # first flag cycle is the set-up's (its errors, lost and doubled still count)
        self.results.undecryptable = 0
        self.results.retries = 0
        self.results.reasons.clear()
        self.results.round_trips.clear()
        self.results.bot_side.clear()
        await asyncio.gather(
            *(self._room_loop(i, stop, op_timeout, export_every) for i in range(len(self.rooms)))
        )

    async def _room_loop(self, i: int, stop: float, op_timeout: float, export_every: int) -> None:
        n = 0
        while time.monotonic() < stop:
            # staggered by room: the rooms' exports (and flags) do not all start together
            if export_every and (n + i) % export_every == 0:
                await self._export(i, op_timeout)
            elif (n + i) % 6 == 3:
                await self._flag_cycle(i, motif(i, n), op_timeout)
            else:
                await self._message(i, f"{TAG} {i}-{n} {uuid.uuid4().hex}", op_timeout)
            n += 1

    def _timed(self, op: str, t0: float, seen: Seen | None) -> bool:
        if seen is None:
            self.results.errors[op] += 1
            return False
        self.results.round_trips[op].append(seen.at - t0)
        return True

    def _room(self, i: int) -> tuple[Member, Member, str]:
        """Room i's creator, its other E2EE member, its id."""
        return self.members[i], self.members[(i + 1) % len(self.members)], self.rooms[i]

    async def _message(self, i: int, text: str, op_timeout: float) -> None:
        me, other, room = self._room(i)
        t0 = time.monotonic()
        deadline = t0 + op_timeout
        start = other.mark(room)
        if await me.send(room, text, deadline) is None:
            self.results.errors["message"] += 1
            return
        self.messages.append((i, text))
        seen = await other.wait(room, lambda s: s.content.get("body") == text, deadline, start)
        self._timed("message", t0, seen)

    async def _ask(
        self, op: str, who: Member, room: str, body: str, kind: str, motif: str | None, t: float
    ) -> bool:
        t0 = time.monotonic()
        start = who.mark(room)
        sent = await who.send(room, body, t0 + t)
        if sent is None:
            self.results.errors[op] += 1
            return False
        notice = await who.wait(room, _notice(kind, motif), t0 + t, start)
        command = next((s for s in who.timeline[room] if s.event_id == sent), None)
        if notice is not None and command is not None:
            self.results.bot_side[op].append((notice.ts - command.ts) / 1000)
        return self._timed(op, t0, notice)

    async def _flag_cycle(self, i: int, motif: str, t: float) -> None:
        me, other, room = self._room(i)
        self.commands[(i, URGENT, motif)] += 1
        if not await self._ask("urgent", me, room, f"!urgent {motif}", URGENT, motif, t):
            return
        self.commands[(i, ACK, motif)] += 1
        await self._ask("ack", other, room, "!vu", ACK, motif, t)
        self.commands[(i, CLEAR, "")] += 1
        await self._ask("clear", me, room, "!fait urgent", CLEAR, None, t)

    async def _export(self, i: int, op_timeout: float) -> None:
        me, _, room = self._room(i)
        t0 = time.monotonic()
        deadline = t0 + op_timeout
        start = me.mark(room)
        self.exports[i] += 1
        if await me.send(room, "!export", deadline) is None:
            self.results.errors["export"] += 1
            return
        seen = await me.wait(room, _pdf(self.bots), deadline, start)
        if seen is None:
            self.results.errors["export"] += 1
            return
        source = MediaSource.from_content(seen.content)
        try:
            if source is None:
                raise ValueError("fichier sans clé")
            # a directory per export: the fetcher names its files media-1, media-2…
            with tempfile.TemporaryDirectory(dir=self.work) as tmp:
                fetcher = MediaFetcher(
                    self.http, self.homeserver, me.client.access_token, Path(tmp)
                )
                fetched = await asyncio.wait_for(
                    fetcher.fetch(source), max(0.1, deadline - time.monotonic())
                )
                is_pdf = fetched.path.read_bytes()[:5] == b"%PDF-"
        except Exception as exc:  # counted, with its kind
            self.results.reasons[f"export:{type(exc).__name__}"] += 1
            is_pdf = False
        if not is_pdf:
            self.results.errors["export"] += 1
            return
        self.results.round_trips["export"].append(time.monotonic() - t0)

    # -- the end: nothing lost, nothing doubled --
    def _expected_seen(self) -> bool:
        return all(c == 0 for c in self._missing().values())

    def _missing(self) -> Counter[str]:
        """Per kind, how many expected events are not seen (yet)."""
        missing: Counter[str] = Counter()
        for what, count in self._counts().items():
            missing[what[0]] += max(0, what[1] - count)
        return missing

    def _counts(self) -> dict[tuple[str, int, Any], int]:
        """(kind, expected, key) -> how many distinct events were seen for it."""
        counts: dict[tuple[str, int, Any], int] = {}
        size = len(self.members)
        read: dict[int, Counter[Any]] = {}  # room -> texts its other member decrypted
        for i, room in enumerate(self.rooms):
            other = self.members[(i + 1) % size]
            read[i] = Counter(s.content.get("body") for s in other.timeline[room])
        for i, text in self.messages:
            counts[("message", 1, (i, text))] = read[i][text]
        for (i, kind, motif), asked in self.commands.items():
            who = self.members[(i + 1) % size] if kind == ACK else self.members[i]
            found = _notice(kind, motif or None)
            n = sum(1 for s in who.timeline[self.rooms[i]] if s.sender in self.bots and found(s))
            counts[(kind, asked, (i, motif))] = n
        for i, asked in self.exports.items():
            pdf = _pdf(self.bots)
            n = sum(1 for s in self.members[i].timeline[self.rooms[i]] if pdf(s))
            counts[("export", asked, i)] = n
        return counts

    async def settle(self, drain: float) -> None:
        """Wait (at most ``drain`` s) for every expected event, then a few more syncs for a
        late double; then count lost and doubled."""
        deadline = time.monotonic() + drain
        while not self._expected_seen() and time.monotonic() < deadline:
            await asyncio.sleep(0.3)
        await asyncio.sleep(min(6.0, max(0.0, deadline - time.monotonic())))
        for (kind, expected, _key), count in self._counts().items():
            op = OPERATION_OF.get(kind, kind)
            self.results.lost[op] += max(0, expected - count)
            self.results.doubled[op] += max(0, count - expected)

    async def close(self) -> None:
        await asyncio.gather(*(m.close() for m in self.members), return_exceptions=True)

    def summary(self, seconds: float) -> dict[str, Any]:
        r = self.results
        out: dict[str, Any] = {}
        for op in OPERATIONS:
            values = r.round_trips.get(op, [])
            out[op] = {
                "n": len(values),
                "per_s": round(len(values) / seconds, 2),
                "p50_ms": round(1000 * pct(values, 50)) if values else None,
                "p99_ms": round(1000 * pct(values, 99)) if values else None,
                "errors": r.errors[op],
            }
            if op in r.bot_side:
                out[op]["bot_p50_ms"] = round(1000 * pct(r.bot_side[op], 50))
        out |= {
            "errors": sum(r.errors.values()),
            "lost": sum(r.lost.values()),
            "doubled": sum(r.doubled.values()),
            "lost_by_kind": {k: v for k, v in r.lost.items() if v},
            "doubled_by_kind": {k: v for k, v in r.doubled.items() if v},
            "undecryptable": r.undecryptable,
            "retries": r.retries,
            "redelivered": r.redelivered,
            "retry_reasons": dict(r.reasons),
        }
        return out
