"""Region profile vs the single-process default, in one run (issue 15), loopback only.

Each deployment is started in turn with `cercle up` (the default: one Synapse on SQLite, one
dossier; then `--profile region`: Synapse's workers on PostgreSQL and Redis behind nginx, two
dossier processes), on fresh data, and receives the same load for ``--seconds``:

- ``--users`` professionals and ``--rooms`` rooms of 3 (default: as many rooms as
  professionals). Room r is made by professional r mod N with two colleagues, so each one is
  in about 3 × rooms / users rooms, as a nurse is in her patients' rooms. Each professional
  keeps a /sync long-poll open (what Element does; ``--sync-timeout``, 30 s as Element) while
  sending messages back to back in the rooms she made, in turn (``m.room.encrypted`` events
  with an opaque ciphertext of Megolm's size: for the server an encrypted message is exactly
  that; the clients here do no crypto so that the server is what is measured); with
  ``--think S`` each pauses 0.5–1.5 × S between two messages (a load the server should serve,
  rather than all it can: 1,000 back to back saturate either profile). Accounts and
  rooms are made concurrently before the clock (``--prepare-concurrency``);
- dossier clients reading a file and writing notebook entries (service token).

Printed per deployment: messages/s, send p50/p99, sync delivery p50/p99 (sent → seen in
the sender's colleague's /sync), dossier reads and writes/s with p50/p99, errors (must be
0), CPU seconds per process and their resident memory at the end. Then the ratio region /
single. A lost message is told apart: in the room's history (``/messages``: only ``/sync``
missed it) or absent; ``limited`` counts the /sync timelines the server cut short.

Nothing lost, nothing doubled: every message the server accepted must reach the /sync of
each of the room's three members exactly once (one event id per transaction id), and every
notebook entry written must be in the file once. A client that gets no answer (a worker
killed under it) retries with the same transaction id / Idempotency-Key, as Element does;
such retries are counted apart, and a request that never succeeds is an error. With
``--kill NAME`` (default for the region profile: ``persister2``, an event persister) that
process is SIGKILLed in the middle of the load; the supervisor must restart it (checked in
``cercle status``) and the counts above must still hold.

With ``--e2ee N``, beside that load, N real E2EE professionals (matrix-nio with encryption
and a store, their own devices) work in patient rooms with the deployment's bot: each creates
one through the bot (``!patient nouveau`` in a direct chat with it), has the next one invited
(``!inviter``) and does one flag cycle there before the clock starts (a person's first flag
creates their folder space); then loops in it, closed loop, staggered between rooms:
Megolm-encrypted messages (round trip: sent → decrypted by the other member), a flag cycle
one operation in 6 (``!urgent <motif>`` → « URGENCE signalée » decrypted by the sender; the
other member's ``!vu`` → « Urgence prise en compte »; ``!fait urgent`` → « … levé »), an
``!export`` one in 12 (asked → the PDF event decrypted, the file downloaded and decrypted,
``%PDF``). Printed per operation and profile: per second, p50/p99 of the round trip, the
bot's part (its notice's server timestamp minus the command's), errors (an answer not there
within 60 s is one: nothing waits without a deadline); lost / doubled: each message
decrypted by the other member exactly once, each command answered by exactly one notice of
its kind, each export by one PDF (bench/common/region_e2ee.py). The worker is killed mid-run as above.

Figures (2026-12-03, the shared 2-core machine, another benchmark running, load average 8–12;
far from the issue's 1,000 professionals and 5,000 rooms): see docs/capacity.md, « Real E2EE
clients, bot commands and exports ». In short: 0 errors, 0 lost, 0 doubled on both profiles,
persister2 killed and restarted, at 3 to 10 E2EE professionals (at normal priority, 10 E2EE,
30 s: message p50 1.4 / 1.8 s, `!urgent` 3.0 / 4.3 s, single / region); the flag round trips are
dominated by the bot's handling, which runs a room's events one after the other, so an
``!vu`` sent at once waits for the end of the ``!urgent`` it answers (room name, folders).
The opaque load's "lost" messages in 2 of 13 region runs with persister2 killed (in the room's
history, never in a member's /sync) were this bench's counting: its /sync loops ended while a
send held by a generic worker during the persister's restart was still unanswered, and its
clock started before every first /sync had answered; both fixed (docs/capacity.md).
With ``--think 150`` (2026-12-05, idle machine): at 1,000 professionals and 5,000 rooms the
single profile served the offered 6.8 msg/s with 0 errors, 0 lost, 0 doubled; the region's
1,000 first /syncs of 15 rooms each did not all answer in 560 s, so it was not measured (the
cause, found in session 12: this machine's PostgreSQL has autovacuum off, Synapse's tables
were never analysed and its queries were planned for millions of rows and JIT-compiled; both
profiles then ran at that size in one run, 300 s, persister2 killed: 6.8 msg/s each, 0
errors, 0 lost, 0 doubled, first /syncs 96 / 106 s; docs/capacity.md, « Both profiles at the
issue's size in one run »). At
1,000 professionals and 1,000 rooms, both profiles in one run, persister2 killed: 7.1 msg/s
each, 0 errors, 0 lost, 0 doubled, sends p50 215 / 658 ms (single / region); docs/capacity.md,
« The issue's size with --think ».
At the issue's size (2026-12-04, ``--users 1000 --rooms 5000 --seconds 120 --e2ee 4``, single
profile; the region one not finished: its rooms took too long on this shared machine):
26.7 msg/s, sends 45 s at p50 (1,000 back to back: saturation), 0 lost, 0 doubled, 5 E2EE
operations unanswered in 60 s; docs/capacity.md, « The issue's size ».

    python bench/region_load.py [--seconds 20] [--users 30] [--rooms 30] [--dossier-clients 8]
                                [--kill persister2|generic1|…|none] [--e2ee 0] [--cpus 1,2]

``--cpus 1,2`` measures both profiles with the server on 1 CPU, then on 2 (``cercle up``
started on them, PostgreSQL and Redis moved there meanwhile, this bench's clients on the
last CPU): the figure per added core, where the machine is too small for the 3× goal.

Needs PostgreSQL (127.0.0.1:5432, user postgres), Redis (127.0.0.1:6379) and nginx; prints
why and exits 0 without them. The databases it creates are dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common.bounded import bounded  # noqa: E402
from bench.common.clients import login_of  # noqa: E402
from bench.common.cpus import counts, every_cpu, services_on, starter_on  # noqa: E402
from bench.common.measures import cpu_seconds, pct, rss_mb  # noqa: E402
from bench.common.postgres import Server  # noqa: E402
from bench.common.region_e2ee import OPERATIONS, E2eeLoad  # noqa: E402
from bench.common.signals import clean_up_on_sigterm  # noqa: E402
from bench.common.signals import run as run_cleanly  # noqa: E402
from deployment.profile import PROJECT_ROOT, load_profile  # noqa: E402
from homeserver.accounts import ADMIN_TOKEN_FILE  # noqa: E402
from homeserver.admin_api import AdminApi, RegisteredUser  # noqa: E402
from tests.support import free_region_base, password_login  # noqa: E402

PASSWORD = "bench-password-region-42"
OP_TIMEOUT = 60.0  # an E2EE operation not answered by then is an error
EXPORT_EVERY = 12  # one E2EE operation in 12 (per room) is an export


def cercle(
    env: dict[str, str], *args: str, timeout: float = 400, cpus: set[int] | None = None
) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cercle", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=starter_on(cpus),  # sched_setaffinity only: nothing a fork could deadlock on
    )
    if done.returncode != 0:
        raise RuntimeError(f"cercle {' '.join(args)} : {done.stderr[-1500:]}")
    return done.stdout


@dataclass
class Deployment:
    name: str
    env: dict[str, str]
    args: tuple[str, ...]  # the profile arguments
    homeserver: str
    dossier: str
    admin_url: str
    var: Path
    databases: list[str] = field(default_factory=list)
    cpus: set[int] | None = None  # --cpus: where its processes run (None: anywhere)

    @property
    def server_name(self) -> str:
        return self.env["CERCLE__SERVER_NAME"]

    def cli(self, *args: str) -> str:
        return cercle(self.env, *self.args, *args, cpus=self.cpus)

    @property
    def bot_user_ids(self) -> tuple[str, ...]:
        """Every account of the bot as the profile it runs names them, the front first."""
        named = PROJECT_ROOT / "config" / f"{self.args[1]}.yaml" if self.args else None
        return load_profile(override_file=named, env=self.env).bot_user_ids


def deployments(tmp: Path) -> Iterator[Deployment]:
    """The single-process deployment, then the region one (its ports chosen only once the
    first is done: a port free at the start can be taken meanwhile)."""
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CERCLE")}
    common = {
        "CERCLE__HOMESERVER__LEGAL__ENABLED": "false",
        # the load, not the anti-abuse limits, is what is measured
        "CERCLE__HOMESERVER__RATE_LIMITS__MESSAGE_PER_SECOND": "10000",
        "CERCLE__HOMESERVER__RATE_LIMITS__MESSAGE_BURST": "100000",
        "CERCLE__HOMESERVER__RATE_LIMITS__LOGIN_PER_SECOND": "1000",
        "CERCLE__HOMESERVER__RATE_LIMITS__LOGIN_BURST": "1000",
        "CERCLE__HOMESERVER__PRESENCE": "false",
    }
    base = free_region_base()
    single = {
        **base_env,
        **common,
        "CERCLE__VAR_DIR": str(tmp / "single" / "var"),
        "CERCLE__SERVER_NAME": f"single-{uuid.uuid4().hex[:6]}.localhost",
        "CERCLE__HOMESERVER__PORT": str(base + 60),
        "CERCLE__DOSSIER__PORT": str(base + 61),
    }
    yield Deployment(
        "single",
        single,
        (),
        f"http://127.0.0.1:{base + 60}",
        f"http://127.0.0.1:{base + 61}",
        f"http://127.0.0.1:{base + 60}",
        tmp / "single" / "var",
    )
    tag = uuid.uuid4().hex[:8]
    base = free_region_base()
    syn, dos = f"cercle_bench_syn_{tag}", f"cercle_bench_dos_{tag}"
    region = {
        **base_env,
        **common,
        "CERCLE__VAR_DIR": str(tmp / "region" / "var"),
        "CERCLE__SERVER_NAME": f"region-{tag}.localhost",
        "CERCLE__REGION__BASE_PORT": str(base),
        "CERCLE__HOMESERVER__PORT": str(base + 60),
        "CERCLE__HOMESERVER__DATABASE__NAME": syn,
        "CERCLE__DOSSIER__PORT": str(base + 61),
        "CERCLE__DOSSIER__PUBLIC_URL": f"http://127.0.0.1:{base + 61}",
        "CERCLE__DOSSIER__DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{dos}",
    }
    yield Deployment(
        "region",
        region,
        ("--profile", "region"),
        f"http://127.0.0.1:{base + 60}",
        f"http://127.0.0.1:{base + 61}",
        f"http://127.0.0.1:{base}",
        tmp / "region" / "var",
        [syn, dos],
    )


def process_pids(dep: Deployment) -> dict[str, int]:
    status = json.loads(dep.cli("status", "--json"))
    pids = {}
    for name, entry in status["services"].items():
        if entry.get("pid"):
            pids["synapse-main" if name == "homeserver" else name] = int(entry["pid"])
    return pids


@dataclass
class Results:
    send: list[float] = field(default_factory=list)
    delivery: list[float] = field(default_factory=list)
    reads: list[float] = field(default_factory=list)
    writes: list[float] = field(default_factory=list)
    errors: int = 0
    # which: "send 429", "/sync 500", "dossier read no answer"…
    error_kinds: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    retries: int = 0  # requests repeated after no answer (a worker killed under them)
    # why they were repeated: the proxy's 502/503/504 (no worker answered), the client's
    # own deadline (aiohttp's 120 s), a connection refused or cut
    proxy_answers: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    timeouts: int = 0
    cut: int = 0
    lost: int = 0  # accepted messages a member never saw, notebook entries missing
    doubled: int = 0  # a transaction persisted as two events, an entry written twice
    redelivered: int = 0  # the same event id twice in one member's /sync (harmless)
    limited: int = 0  # /sync timelines cut short ("limited": a client pages back for the rest)
    # what was lost: "message on the server" (missed by /sync only), "message" (absent from
    # the room's history too), "note"
    lost_detail: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # a few lost messages: which member missed it, when it was sent relative to the kill
    lost_samples: list[str] = field(default_factory=list)
    killed: str = ""
    killed_at: float = 0.0
    restarted: bool = False

    def error(self, what: str, answer: tuple[int, Any] | None) -> None:
        """One error, counted with what it was and its status (or no answer at all)."""
        self.errors += 1
        self.error_kinds[f"{what} {answer[0] if answer else 'no answer'}"] += 1


def why_repeated(res: Results) -> str:
    proxy = ", ".join(f"{n} × {status}" for status, n in sorted(res.proxy_answers.items()))
    return f"délai client dépassé {res.timeouts}, connexion coupée {res.cut}, proxy {proxy or 0}"


async def register_and_log_in(
    dep: Deployment,
    localparts: list[str],
    http: aiohttp.ClientSession,
    concurrency: int = 1,
) -> list[RegisteredUser]:
    """Accounts registered on the main process (the admin API, loopback), then each logged in
    through the front door; ``concurrency`` at a time (each costs a bcrypt hash on the
    server), the logins returned in ``localparts``' order."""
    shared = (dep.var / "secrets" / "registration_shared_secret").read_text().strip()
    async with AdminApi(dep.admin_url) as admin:
        await bounded(
            concurrency, [admin.register(shared, localpart, PASSWORD) for localpart in localparts]
        )

    async def log_in(localpart: str) -> RegisteredUser:
        _, body = await password_login(http, dep.homeserver, localpart, PASSWORD)
        return login_of(body)

    return await bounded(concurrency, [log_in(localpart) for localpart in localparts])


async def load_accounts(dep: Deployment, localparts: list[str], concurrency: int) -> list[str]:
    """The opaque load's accounts and a token each, made through the Admin API with the
    deployment's administrator: no password, so no bcrypt hash per account on the server
    (1,000 through registration and /login took 8.5 min here). Their login is not what is
    measured; the E2EE professionals still log in through the front door."""
    token = (dep.var / "secrets" / ADMIN_TOKEN_FILE).read_text().strip()
    async with AdminApi(dep.admin_url, token) as admin:

        async def one(localpart: str) -> str:
            user_id = f"@{localpart}:{dep.server_name}"
            await admin.create_or_modify_user(user_id, displayname=localpart, approved=True)
            return await admin.login_as(user_id)

        return await bounded(concurrency, [one(localpart) for localpart in localparts])


@dataclass(frozen=True)
class Room:
    room_id: str
    members: tuple[int, int, int]  # professionals' indexes; the first made it and sends there


def members_of(room: int, users: int) -> tuple[int, int, int]:
    """Room ``room``'s three professionals among ``users``: its maker (room mod users) and two
    colleagues at distances that grow with each round of rooms (1 and 2 for the first room
    each one makes, then 2 and 4, 3 and 6…), so a professional shares rooms with many
    colleagues, not always the same two."""
    maker, layer = room % users, room // users
    near, far = (layer + 1) % users, (2 * layer + 2) % users
    if 0 in (near, far) or near == far:
        raise ValueError(f"{room} salons pour {users} professionnels : trop de salons")
    return maker, (maker + near) % users, (maker + far) % users


async def prepare(
    dep: Deployment, users: int, rooms: int, http: aiohttp.ClientSession, concurrency: int
) -> tuple[list[str], list[Room]]:
    """``users`` accounts with a token each, and ``rooms`` rooms of three
    (``members_of``), every invitation accepted: (their tokens, the rooms)."""
    server = dep.server_name
    t0 = time.monotonic()
    tokens = await load_accounts(dep, [f"pro{i}" for i in range(users)], concurrency)
    t1 = time.monotonic()

    async def post(token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with http.post(
            f"{dep.homeserver}{path}", headers={"Authorization": f"Bearer {token}"}, json=body
        ) as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200:  # a room not made is a bench that measures something else
                raise RuntimeError(f"region_load : {path.split('/')[4]} refusé ({resp.status})")
            return dict(data)

    async def make(r: int) -> Room:
        members = members_of(r, users)
        invite = [f"@pro{m}:{server}" for m in members[1:]]
        made = await post(
            tokens[members[0]],
            "/_matrix/client/v3/createRoom",
            {"preset": "private_chat", "invite": invite},
        )
        room_id = str(made["room_id"])
        for m in members[1:]:
            await post(tokens[m], f"/_matrix/client/v3/join/{room_id}", {})
        return Room(room_id, members)

    made = await bounded(concurrency, [make(r) for r in range(rooms)])
    if users >= 100 or rooms >= 100:
        print(
            f"   {users} comptes en {t1 - t0:.0f} s, {rooms} salons en "
            f"{time.monotonic() - t1:.0f} s",
            flush=True,
        )
    return tokens, made


async def open_file(
    http: aiohttp.ClientSession, dep: Deployment
) -> tuple[dict[str, str], str | None]:
    """The bench's patient file, opened by the bot's token on behalf of its first
    professional: (the headers to use it, its id or None when refused)."""
    token = (dep.var / "secrets" / "dossier_service_token").read_text().strip()
    coord = f"@pro0:{dep.server_name}"
    headers = {"Authorization": f"Bearer {token}", "X-Cercle-On-Behalf-Of": coord}
    async with http.post(
        f"{dep.dossier}/api/v1/patients",
        headers=headers,
        json={"label": "Suivi bench", "coordinator": coord},
    ) as resp:
        body = await resp.json()
        pid = body.get("patient", body).get("id") if resp.status < 300 else None
    return headers, pid


async def load(
    dep: Deployment,
    seconds: float,
    users: tuple[list[str], list[Room]],
    dossier_clients: int,
    http: aiohttp.ClientSession,
    kill: str | None = None,
    e2ee: E2eeLoad | None = None,
    sync_timeout: float = 30,
    think: float = 0,
) -> Results:
    res = Results()
    tokens, rooms = users
    count = len(tokens)
    # the first /syncs, of many rooms each, at once: on the region profile 1,000 of 15 rooms
    # were not all answered in 560 s on 2 cores (the single profile: 7 s); a run given up
    # there has spent its half hour of room making for nothing, so the wait is long
    first_syncs = max(120.0, 1.5 * count)
    # until the clock starts (once every first /sync has answered): no end yet
    stop = math.inf
    drain_until = time.monotonic() + first_syncs + 60  # what is accepted must be seen by then
    sent_at: dict[str, float] = {}
    answered_at: dict[str, float] = {}  # transaction id -> when its send was answered 200
    # member index -> when its first /sync answered, when its /sync loop ended
    first_synced: dict[int, float] = {}
    sync_ended: dict[int, float] = {}
    sending: set[int] = set()  # the senders not finished yet: one may still be answered
    accepted: dict[str, int] = {}  # transaction id -> index of its room
    # member index -> transaction id -> event ids seen in that member's /sync
    seen: list[dict[str, set[str]]] = [defaultdict(set) for _ in tokens]
    ciphertext = base64.b64encode(os.urandom(400)).decode()
    # each professional sends in the rooms she made, in turn
    made_by: list[list[int]] = [[] for _ in tokens]
    for r, room in enumerate(rooms):
        made_by[room.members[0]].append(r)

    async def until_answered(method: str, url: str, **kwargs: Any) -> tuple[int, Any] | None:
        """One request, repeated as a client would (same transaction id) while no answer
        comes back; None when it never did before the drain deadline."""
        first = True
        while time.monotonic() < drain_until:
            if not first:
                res.retries += 1
                await asyncio.sleep(0.5)
            first = False
            try:
                async with http.request(method, url, **kwargs) as resp:
                    if resp.status in (502, 503, 504):  # the proxy: no worker answered
                        res.proxy_answers[resp.status] += 1
                        continue
                    return resp.status, await resp.json(content_type=None)
            except TimeoutError:
                res.timeouts += 1
                continue
            except aiohttp.ClientError:
                res.cut += 1
                continue
            except ValueError:  # a body that is not JSON: an error, told with its status
                return resp.status, {"errcode": "not JSON"}
        return None

    async def sender(index: int, token: str) -> None:
        sending.add(index)
        try:
            await send_loop(index, token)
        finally:
            sending.discard(index)

    async def pause(seconds: float) -> None:
        await asyncio.sleep(max(0.0, min(seconds, stop - time.monotonic())))

    async def send_loop(index: int, token: str) -> None:
        mine = made_by[index]
        n = 0
        draw = random.Random(index)  # the same pauses for both profiles
        if think:  # each professional's first message somewhere in the first pause
            await pause(draw.uniform(0, think))
        while time.monotonic() < stop and mine:
            r = mine[n % len(mine)]
            n += 1
            room = rooms[r].room_id
            txn = uuid.uuid4().hex
            body = {
                "algorithm": "m.megolm.v1.aes-sha2",
                "ciphertext": ciphertext,
                "device_id": "BENCH",
                "sender_key": "x" * 43,
                "session_id": txn,
            }
            t0 = time.monotonic()
            sent_at[txn] = t0
            answer = await until_answered(
                "PUT",
                f"{dep.homeserver}/_matrix/client/v3/rooms/{room}/send/m.room.encrypted/{txn}",
                headers={"Authorization": f"Bearer {token}"},
                json=body,
            )
            if answer is None or answer[0] != 200:
                res.error("send", answer)
                continue
            accepted[txn] = r
            answered_at[txn] = time.monotonic()
            res.send.append(time.monotonic() - t0)
            if think:
                await pause(draw.uniform(0.5, 1.5) * think)

    def all_seen() -> bool:
        return all(txn in seen[m] for txn, r in accepted.items() for m in rooms[r].members)

    async def syncer(index: int, token: str) -> None:
        try:
            await sync_loop(index, token)
        finally:
            sync_ended[index] = time.monotonic()

    async def sync_loop(index: int, token: str) -> None:
        since = None
        flt = json.dumps({"room": {"timeline": {"limit": 100}}, "presence": {"not_types": ["*"]}})
        # a long-poll answers at once when something is there; its timeout only bounds the
        # quiet wait (Element: 30 s); the loops are cancelled once everything is seen
        wait_ms = str(int(sync_timeout * 1000))
        mine = seen[index]
        while time.monotonic() < drain_until:
            # a send still waiting for its answer (held by a generic worker until the killed
            # persister is back: 17 s in one run) is accepted after the end of the load, so
            # each /sync loop goes on until every sender is done and every message seen
            if time.monotonic() > stop + 2 and not sending and all_seen():
                return
            params = {"timeout": wait_ms, "filter": flt, **({"since": since} if since else {})}
            answer = await until_answered(
                "GET",
                f"{dep.homeserver}/_matrix/client/v3/sync",
                params=params,
                headers={"Authorization": f"Bearer {token}"},
            )
            if answer is None:
                return
            status, data = answer
            if status != 200:
                res.error("/sync", answer)
                await asyncio.sleep(0.5)
                continue
            now = time.monotonic()
            first_synced.setdefault(index, now)
            if since is not None:
                for room in data.get("rooms", {}).get("join", {}).values():
                    res.limited += bool(room.get("timeline", {}).get("limited"))
                    for ev in room.get("timeline", {}).get("events", []):
                        sid = ev.get("content", {}).get("session_id")
                        if sid not in sent_at:
                            continue
                        if ev["event_id"] in mine[sid]:
                            res.redelivered += 1
                            continue
                        if not mine[sid] and index != accepted.get(sid, index):
                            res.delivery.append(now - sent_at[sid])
                        mine[sid].add(ev["event_id"])
            since = data["next_batch"]

    headers, pid = await open_file(http, dep)
    if pid is None:
        res.error("dossier file opened", None)
    written: list[str] = []

    async def dossier_client(i: int) -> None:
        n = 0
        while time.monotonic() < stop and pid is not None:
            write = n % 5 == 0
            t0 = time.monotonic()
            if write:
                text = f"note {i}-{n}"
                answer = await until_answered(
                    "POST",
                    f"{dep.dossier}/api/v1/patients/{pid}/notebook",
                    headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                    json={"kind": "note", "text": text},
                )
            else:
                answer = await until_answered(
                    "GET", f"{dep.dossier}/api/v1/patients/{pid}", headers=headers
                )
            ok = answer is not None and answer[0] < 300
            if ok and write:
                written.append(text)
            (res.writes if write else res.reads).append(time.monotonic() - t0)
            if not ok:
                res.error("dossier write" if write else "dossier read", answer)
            n += 1

    # the pid looked up before the clock: `cercle status` at idle priority on a busy machine
    # took over 10 s, which put the "mid-run" kill of an 8-s run after its end
    victim = 0
    if kill:
        pid_of = await asyncio.to_thread(process_pids, dep)
        if kill not in pid_of:
            raise RuntimeError(f"--kill {kill} : processus inconnu ({', '.join(sorted(pid_of))})")
        victim = pid_of[kill]

    async def killer() -> None:
        if not kill:
            return
        await asyncio.sleep(seconds / 2)
        os.kill(victim, signal.SIGKILL)
        res.killed, res.killed_at = kill, time.monotonic()
        print(f"   {kill} tué (SIGKILL) à mi-parcours", flush=True)

    # first syncs: their tokens, before the clock starts — every one of them answered (a
    # message persisted before a member's first /sync is in that answer, which is not read)
    syncs = [asyncio.create_task(syncer(i, t)) for i, t in enumerate(tokens)]
    began = time.monotonic()
    give_up, told = began + first_syncs, began
    while len(first_synced) < count:
        if time.monotonic() > give_up or any(task.done() for task in syncs):
            for task in syncs:
                task.cancel()
            raise RuntimeError(
                f"region_load : {count - len(first_synced)} premières /sync sur {count} sans "
                f"réponse après {time.monotonic() - began:.0f} s "
                f"(erreurs : {dict(res.error_kinds)}, requêtes répétées : {res.retries} — "
                f"{why_repeated(res)})"
            )
        if time.monotonic() - told >= 60:
            told = time.monotonic()
            print(
                f"   premières /sync : {len(first_synced)}/{count} ({why_repeated(res)})",
                flush=True,
            )
        await asyncio.sleep(0.1)
    print(f"   premières /sync : {count} en {time.monotonic() - began:.0f} s", flush=True)
    start = time.monotonic()
    stop = start + seconds
    drain_until = stop + 60
    tasks = [asyncio.create_task(sender(i, t)) for i, t in enumerate(tokens)]
    tasks += [asyncio.create_task(dossier_client(i)) for i in range(dossier_clients)]
    tasks.append(asyncio.create_task(killer()))
    if e2ee is not None:
        tasks.append(asyncio.create_task(e2ee.run(stop, OP_TIMEOUT, EXPORT_EVERY)))
    await asyncio.gather(*tasks)
    # every sender is done: the /sync loops end once each accepted message is seen by each
    # member (or at the drain deadline); one still in its quiet long-poll is cancelled
    while time.monotonic() < drain_until and not all(t.done() for t in syncs) and not all_seen():
        await asyncio.sleep(0.1)
    for task in syncs:
        task.cancel()
    await asyncio.gather(*syncs, return_exceptions=True)
    if e2ee is not None:
        await e2ee.settle(max(5.0, drain_until - time.monotonic()))

    for txn, r in accepted.items():
        for k, member in enumerate(rooms[r].members):
            events = seen[member].get(txn, set())
            if not events:
                res.lost += 1
                where = rooms[r].room_id
                on_server = await in_history(dep, http, tokens[member], where, txn)
                res.lost_detail["message on the server" if on_server else "message"] += 1
                if len(res.lost_samples) < 10:
                    res.lost_samples.append(
                        lost_sample(
                            "sender" if k == 0 else "colleague",
                            sent_at[txn] - start,
                            answered_at[txn] - start,
                            res.killed_at - start if res.killed_at else None,
                            first_synced.get(member, float("nan")) - start,
                            sync_ended.get(member, float("nan")) - start,
                        )
                    )
            res.doubled += max(0, len(events) - 1)
    if pid is not None:
        found = await notebook_texts(dep, pid, headers, http)
        missing = sum(1 for text in written if found.get(text, 0) == 0)
        res.lost += missing
        res.lost_detail["note"] += missing
        res.doubled += sum(max(0, found.get(text, 0) - 1) for text in written)
    if kill:  # restarted by the supervisor, and serving again
        for _ in range(60):
            status = json.loads(await asyncio.to_thread(dep.cli, "status", "--json"))
            entry = status["services"].get(kill, {})
            res.restarted = entry.get("restarts", 0) >= 1 and entry.get("state") == "running"
            if res.restarted:
                break
            await asyncio.sleep(1)
    return res


def lost_sample(
    who: str, sent: float, answered: float, kill: float | None, first_sync: float, ended: float
) -> str:
    """One lost message told in seconds from the start of the load: when it was sent and
    answered, the kill, and the /sync loop of the member that missed it (its first answer,
    its end) — a message answered after that loop ended, or sent before its first /sync
    answered, is one the bench could not see."""
    killed = f", kill at {kill:+.1f}" if kill is not None else ""
    return (
        f"{who}: sent {sent:+.1f} s, answered {answered:+.1f} s{killed}; that member's "
        f"first /sync answered {first_sync:+.1f} s, its /sync loop ended {ended:+.1f} s"
    )


async def in_history(
    dep: Deployment, http: aiohttp.ClientSession, token: str, room: str, txn: str
) -> bool:
    """Whether the message of transaction ``txn`` is in ``room``'s history as ``token``'s
    member reads it with /messages (newest first, 20 pages of 100 at most)."""
    params = {"dir": "b", "limit": "100"}
    for _ in range(20):
        async with http.get(
            f"{dep.homeserver}/_matrix/client/v3/rooms/{room}/messages",
            headers={"Authorization": f"Bearer {token}"},
            params=params,
        ) as resp:
            page = await resp.json()
        if any(ev.get("content", {}).get("session_id") == txn for ev in page.get("chunk", [])):
            return True
        if not page.get("end") or not page.get("chunk"):
            return False
        params["from"] = page["end"]
    return False


async def notebook_texts(
    dep: Deployment, pid: Any, headers: dict[str, str], http: aiohttp.ClientSession
) -> dict[str, int]:
    """How many times each note's text is in the file (every page of the notebook)."""
    found: dict[str, int] = defaultdict(int)
    before = None
    for _ in range(10_000):
        params = {"limit": "200", "kind": "note", **({"before": before} if before else {})}
        async with http.get(
            f"{dep.dossier}/api/v1/patients/{pid}/notebook", headers=headers, params=params
        ) as resp:
            page = await resp.json()
        for item in page["items"]:
            found[item.get("text", "")] += 1
        before = page.get("next_before")
        if not before:
            break
    return found


def drop(names: list[str]) -> None:
    if names:
        Server("postgresql://postgres@127.0.0.1:5432/postgres").drop(names)


def missing() -> str | None:
    """What the region profile needs and this machine lacks, or None."""
    for port, what in ((5432, "PostgreSQL"), (6379, "Redis")):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            return f"{what} absent sur 127.0.0.1:{port}"
    if not Path("/usr/sbin/nginx").exists():
        return "nginx absent"
    return None


def skipped(bench: str) -> bool:
    """True, once ``bench : ignoré (…)`` is printed, when the region profile cannot run here
    (the bench then ends with success: nothing to measure)."""
    lacking = missing()
    if lacking:
        print(f"{bench} : ignoré ({lacking})")
    return lacking is not None


async def run_one(dep: Deployment, args: argparse.Namespace) -> dict[str, Any]:
    print(f"== {dep.name} : démarrage…", flush=True)
    e2ee: E2eeLoad | None = None
    t0 = time.monotonic()
    try:  # a start that fails or is interrupted is taken down too, its databases dropped
        dep.cli("up", "--detach")
        started = time.monotonic() - t0
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            users = await prepare(
                dep, args.users, args.rooms or args.users, http, args.prepare_concurrency
            )
            if args.e2ee:
                e2ee = E2eeLoad(dep.homeserver, dep.bot_user_ids, dep.var / "bench-e2ee", http)
                t1 = time.monotonic()
                e2ee_pros = [f"e2ee{i}" for i in range(args.e2ee)]
                await e2ee.prepare(
                    await register_and_log_in(dep, e2ee_pros, http, args.prepare_concurrency)
                )
                print(
                    f"   {args.e2ee} salons patients E2EE prêts en {time.monotonic() - t1:.0f} s",
                    flush=True,
                )
            pids = process_pids(dep)
            cpu0 = {n: cpu_seconds(p) for n, p in pids.items()}
            kill = None if args.kill == "none" or dep.name == "single" else args.kill
            res = await load(
                dep,
                args.seconds,
                users,
                args.dossier_clients,
                http,
                kill,
                e2ee,
                args.sync_timeout,
                args.think,
            )
            cpu = {n: cpu_seconds(p) - cpu0[n] for n, p in pids.items()}
            rss = {n: rss_mb(p) for n, p in process_pids(dep).items()}
    except BaseException:  # the processes' logs outlive the run's temporary directory
        kept = Path(tempfile.mkdtemp(prefix=f"cercle-region-bench-{dep.name}-logs-"))
        shutil.copytree(dep.var / "log", kept, dirs_exist_ok=True)
        # and Synapse's (each worker's log): why its first /syncs did not answer (session 11)
        for log_file in (dep.var / "synapse").glob("**/*.log"):
            shutil.copy2(log_file, kept / f"synapse-{log_file.name}")
        print(f"   échec : journaux des processus gardés dans {kept}", flush=True)
        raise
    finally:
        if e2ee is not None:
            await e2ee.close()
        dep.cli("down")
        drop(dep.databases)
    return {
        "start_s": started,
        "msg_per_s": len(res.send) / args.seconds,
        "send_p50_ms": 1000 * pct(res.send, 50),
        "send_p99_ms": 1000 * pct(res.send, 99),
        "delivery_p50_ms": 1000 * pct(res.delivery, 50),
        "delivery_p99_ms": 1000 * pct(res.delivery, 99),
        "dossier_reads_per_s": len(res.reads) / args.seconds,
        "dossier_read_p99_ms": 1000 * pct(res.reads, 99),
        "dossier_writes_per_s": len(res.writes) / args.seconds,
        "dossier_write_p99_ms": 1000 * pct(res.writes, 99),
        "errors": res.errors,
        "error_kinds": dict(res.error_kinds),
        "lost": res.lost,
        "doubled": res.doubled,
        "retries": res.retries,
        "why_repeated": why_repeated(res),
        "redelivered": res.redelivered,
        "limited": res.limited,
        "lost_detail": dict(res.lost_detail),
        "lost_samples": res.lost_samples,
        "killed": res.killed or "-",
        "restarted": res.restarted,
        "cpu_s": {n: round(v, 1) for n, v in sorted(cpu.items()) if v > 0.05},
        "rss_mb": {n: round(v) for n, v in sorted(rss.items())},
        **({"e2ee": e2ee.summary(args.seconds)} if e2ee is not None else {}),
    }


CHECKED = ("errors", "lost", "doubled")


def print_e2ee(single: dict[str, Any], region: dict[str, Any]) -> None:
    """Per E2EE operation and profile: per second, round trip p50 / p99, the bot's part (its
    notice's server time minus the command's) p50, in ms; then the counts."""
    cols = ("per_s", "p50_ms", "p99_ms", "bot_p50_ms")
    head = "".join(f"{c:>9}" for c in ("/s", "p50", "p99", "bot p50"))
    print(f"\nE2EE (ms){'':11}single{head[6:]}   region{head[6:]}   ratio")
    for op in OPERATIONS:
        row = [single[op].get(c) for c in cols] + [region[op].get(c) for c in cols]
        cells = "".join(
            "        -" if v is None else f"{v:9.2f}" if isinstance(v, float) else f"{v:9}"
            for v in row
        )
        per_s = single[op]["per_s"]
        ratio = region[op]["per_s"] / per_s if per_s else float("nan")
        print(f"{op:20}{cells[:36]}   {cells[36:]}{ratio:8.2f}")
    for key in ("errors", "lost", "doubled", "undecryptable", "retries", "redelivered"):
        print(f"{key:20}{single[key]:9}{'':27}   {region[key]:9}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument(
        "--rooms", type=int, default=0, help="salons de 3 professionnels (0 : autant que --users)"
    )
    parser.add_argument(
        "--sync-timeout",
        type=float,
        default=30,
        help="attente maximale d'une /sync sans nouveauté, en secondes (Element : 30)",
    )
    parser.add_argument(
        "--think",
        type=float,
        default=0,
        help="pause moyenne d'un professionnel entre deux messages, en secondes (0 : à la "
        "suite, ce que le serveur peut servir au plus)",
    )
    parser.add_argument(
        "--prepare-concurrency",
        type=int,
        default=8,
        help="comptes et salons créés en parallèle avant la mesure",
    )
    parser.add_argument("--dossier-clients", type=int, default=8)
    parser.add_argument(
        "--kill",
        default="persister2",
        help="process of the region profile SIGKILLed mid-run (none: no kill)",
    )
    parser.add_argument(
        "--e2ee",
        type=int,
        default=0,
        help="E2EE professionals (nio, real Megolm) in patient rooms with the bot (0: none)",
    )
    parser.add_argument(
        "--cpus",
        default="",
        help="nombres de cœurs du serveur, mesurés tour à tour (ex. 1,2 : le chiffre par cœur "
        "ajouté) ; le serveur, PostgreSQL et Redis y sont épinglés, les clients sur le dernier",
    )
    args = parser.parse_args()
    clean_up_on_sigterm()
    if args.e2ee == 1:  # each patient room holds two of them: one alone reads nobody
        parser.error("--e2ee : 0, ou 2 au moins")
    # nio's warnings (a session missing, history from before a join not decryptable) are
    # counted by the bench, not printed line by line
    logging.getLogger("nio").setLevel(logging.ERROR)
    if args.users < 3:  # each professional's room has the next two: fewer would invite oneself
        parser.error("--users : 3 au moins")
    for name, value, least in (
        ("--rooms", args.rooms, 0),
        ("--think", args.think, 0),
        ("--sync-timeout", args.sync_timeout, 0),
        ("--prepare-concurrency", args.prepare_concurrency, 1),  # 0 would wait for ever
    ):
        if value < least:
            parser.error(f"{name} : {least} au moins, pas {value}")
    try:  # every round of rooms, each one making one more per professional
        for layer in range(((args.rooms or args.users) - 1) // args.users + 1):
            members_of(layer * args.users, args.users)
    except ValueError:
        parser.error(f"--rooms : trop de salons pour {args.users} professionnels")
    if skipped("region_load"):
        return 0
    sizes = counts(args.cpus) if args.cpus else [0]  # 0: the whole machine, unpinned
    by_size: dict[int, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="cercle-region-bench-") as tmp:
        for n in sizes:
            by_size[n] = measure_on(n, Path(tmp) / f"cpus{n}", args)
    sound = all(summarise(results, args, n) for n, results in by_size.items())
    if len(sizes) > 1:
        print("\nmessages/s par nombre de cœurs du serveur (clients du bench sur le dernier cœur)")
        print(f"{'cœurs':>6}{'single':>10}{'region':>10}{'region/single':>15}")
        for n in sizes:
            single, region = by_size[n]["single"]["msg_per_s"], by_size[n]["region"]["msg_per_s"]
            print(f"{n:6}{single:10.1f}{region:10.1f}{region / single if single else 0:15.2f}")
        first, last = sizes[0], sizes[-1]
        if last > first:
            for name in ("single", "region"):
                a, b = by_size[first][name]["msg_per_s"], by_size[last][name]["msg_per_s"]
                print(
                    f"{name} : {b / a if a else 0:.2f}× de {first} à {last} cœurs, "
                    f"{(b - a) / (last - first):+.1f} msg/s par cœur ajouté"
                )
    return 0 if sound else 1


def measure_on(n: int, tmp: Path, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Both profiles in turn; with n > 0 their processes, PostgreSQL and Redis on the first
    n CPUs, this bench's clients on the last."""
    server = set(range(n)) if n else None
    if server is not None:
        os.sched_setaffinity(0, {max(every_cpu())})
        print(f"=== serveur sur {n} cœur(s) : {sorted(server)}", flush=True)
    results = {}
    try:
        with services_on(server) if server else contextlib.nullcontext():
            for dep in deployments(tmp):
                dep.cpus = server
                results[dep.name] = run_cleanly(run_one(dep, args))
                print(json.dumps({dep.name: results[dep.name]}, ensure_ascii=False), flush=True)
    finally:
        os.sched_setaffinity(0, every_cpu())
    return results


def summarise(results: dict[str, dict[str, Any]], args: argparse.Namespace, n: int) -> bool:
    """The two profiles side by side; True when nothing was lost, doubled or in error."""
    single, region = results["single"], results["region"]
    print(f"\n{'':24}{'single':>12}{'region':>12}" + (f"   ({n} cœur(s))" if n else ""))
    for key in (
        "msg_per_s",
        "send_p50_ms",
        "send_p99_ms",
        "delivery_p50_ms",
        "delivery_p99_ms",
        "dossier_reads_per_s",
        "dossier_read_p99_ms",
        "dossier_writes_per_s",
        "dossier_write_p99_ms",
        "errors",
        "lost",
        "doubled",
        "retries",
        "redelivered",
        "limited",
        "start_s",
    ):
        print(f"{key:24}{single[key]:12.1f}{region[key]:12.1f}")
    ratio = region["msg_per_s"] / single["msg_per_s"] if single["msg_per_s"] else float("nan")
    print(f"\nmessages/s region / single : {ratio:.2f}× sur {n or os.cpu_count()} cœurs")
    if region["killed"] != "-":
        print(
            f"{region['killed']} tué à mi-parcours : "
            + ("redémarré par le superviseur" if region["restarted"] else "PAS redémarré")
        )
    if args.e2ee:
        print_e2ee(single["e2ee"], region["e2ee"])
    checked = [*results.values(), *(r["e2ee"] for r in results.values() if "e2ee" in r)]
    sound = all(r[k] == 0 for r in checked for k in CHECKED)
    sound = sound and (region["killed"] == "-" or region["restarted"])
    print("rien de perdu ni de doublé" if sound else "ÉCHEC : erreurs, pertes ou doublons")
    return sound


if __name__ == "__main__":
    sys.exit(main())
