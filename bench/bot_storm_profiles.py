"""The bot's command round trip during a message storm, on the single profile and on the
region profile in one run, side by side (issue 15: « command round-trip ≤ 1.2× its idle value
during the storm »; docs/capacity.md's « not measured yet »: the storm on the region profile,
the bot's /syncs on a sync worker).

Why: on the single profile, one Synapse process (one core at most: Python's lock) both
persists the storm's messages (0.88 core at 10 encrypted messages a second) and answers the
bot's /syncs, each of which costs it in proportion to the bot account's rooms (docs/
capacity.md, session 10). On the region profile the storm's events are written by the event
persisters and the bot's /syncs are answered by a generic worker, other processes: whether
that lifts the ratio, on this machine's two cores, is what is measured here.

Each deployment is started with ``cercle up`` (its own bot, as deployed: cross-signed, behind
the region's nginx), on fresh data, then:
- ``--rooms`` encrypted rooms made by the bot's account (a token from the Admin API: the
  running bot syncs them as it would rooms made by its commands), 2–3 members each from a
  pool of 40 professionals; the storm's 50 rooms hold one of its ``--storm-senders`` senders
  (default 1; several spread the storm over the region's generic workers as a region's many
  professionals do: nginx keeps each account on one worker), one professional and a bare nio
  echo (``bench/bot_latency.py --echo``, its own process); the last room holds the
  professional who times the commands, and the bot;
- ``--rounds`` × (``!aide`` to the bot, then « ping » to the echo in a direct room), idle;
- the same during a storm: ``--storm-rate`` encrypted messages a second over the 50 rooms;
- printed: p50 / p99 of each, the ratio storm / idle (the goal: ≤ 1.2×), the echo's (what the
  server and the machine add alone), and each process's CPU during the storm.

Loopback only; every wait bounded; the deployment is stopped and its databases dropped even
when the run fails.

Measured 2026-12-06 (2-core machine otherwise idle; docs/capacity.md, « The storm on the
region profile »), storm / idle at p50 / p99, the bot then the bare echo:
  5,000 rooms, 1 sender:  single 1.32× / 1.20× (echo 1.69× / 1.81×); region 2.36× / 2.53×
                          (echo 2.95× / 3.44×)
  2,000 rooms, 8 senders: single 1.39× / 1.53× (echo 1.57× / 1.75×); region 1.93× / 2.36×
                          (echo 2.02× / 2.29×)
On two cores the region's extra hops cost more than its separate processes give back.
  6,000 rooms, single, --shards 1,4: 1.61× / 2.96× with one account, 1.53× / 4.65× over
                          four (the median 148 → 116 ms in the storm, 92 → 76 ms idle;
                          echo 1.79× / 3.78× and 1.50× / 1.38×)

``--shards 1,4`` runs each profile once per number of the bot's accounts (``bot.shards``,
bots/shards.py): room i is made by account i mod K, as the front hands rooms over, so the
storm's rooms and the timed one are spread over them; each account's process is timed.

Usage: .venv/bin/python bench/bot_storm_profiles.py [--rooms 5000] [--rounds 30]
       [--storm-senders 1] [--profiles single,region] [--shards 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bot_scale import POOL, SMALLEST, STORM_ROOMS, alternate  # noqa: E402
from bench.common.bounded import bounded  # noqa: E402
from bench.common.clients import ENCRYPTED, Professional, Storm, e2ee_client, post_as  # noqa: E402
from bench.common.homeserver import stop  # noqa: E402
from bench.common.measures import cpu_seconds, latency_ms, pct  # noqa: E402
from bench.common.signals import clean_up_on_sigterm  # noqa: E402
from bench.common.signals import run as run_cleanly  # noqa: E402
from bench.region_load import (  # noqa: E402
    Deployment,
    deployments,
    drop,
    process_pids,
    register_and_log_in,
    skipped,
)
from deployment.conventions import bot_shard_localpart  # noqa: E402
from homeserver.accounts import ADMIN_TOKEN_FILE  # noqa: E402
from homeserver.admin_api import AdminApi, RegisteredUser  # noqa: E402


@dataclass(frozen=True)
class Site:
    """What populating a deployment left: the timed professional, the storm's senders, the
    echo, the storm's rooms (room i sent to by sender i mod senders) and the command room."""

    me: RegisteredUser
    storm: list[RegisteredUser]
    echo: RegisteredUser
    storm_rooms: list[str]
    command_room: str


async def populate(
    dep: Deployment,
    rooms: int,
    senders: int,
    concurrency: int,
    http: aiohttp.ClientSession,
    shards: int = 1,
) -> Site:
    """``shards``: the bot's accounts (``bot.shards``); room i is made by account i mod
    shards, as the front hands rooms over (bots/shards.py), the storm's rooms over all."""
    admin_token = (dep.var / "secrets" / ADMIN_TOKEN_FILE).read_text().strip()
    bots = [
        f"@{bot_shard_localpart('cercle-bot', k)}:{dep.server_name}" for k in range(1, shards + 1)
    ]
    pool_ids = [f"@storm-p{i}:{dep.server_name}" for i in range(POOL)]
    async with AdminApi(dep.admin_url, admin_token) as admin:

        async def pool_member(user_id: str) -> str:
            await admin.create_or_modify_user(user_id, displayname=user_id, approved=True)
            await admin.override_ratelimit(user_id)
            return await admin.login_as(user_id)

        pool = await bounded(concurrency, [pool_member(u) for u in pool_ids])
        me, echo, *storm = await register_and_log_in(
            dep, ["storm-me", "storm-echo", *(f"storm-sender{k}" for k in range(senders))], http
        )
        for login in (me, echo, *storm):
            await admin.override_ratelimit(login.user_id)
        # no device: each running bot keeps its own
        bot_tokens = [await admin.login_as(bot) for bot in bots]
    tokens = {**dict(zip(pool_ids, pool, strict=True)), me.user_id: me.access_token}
    tokens |= {s.user_id: s.access_token for s in storm} | {echo.user_id: echo.access_token}

    async def call(token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await post_as(http, dep.homeserver, token, path, body)

    t0 = time.monotonic()
    made = 0

    async def make_room(i: int) -> str:
        nonlocal made
        if i < STORM_ROOMS:
            members = [storm[i % senders].user_id, pool_ids[i % POOL], echo.user_id]
        elif i == rooms - 1:
            members = [me.user_id]
        else:
            members = [pool_ids[i % POOL], pool_ids[(i * 7 + 3) % POOL]]
            if i % 2:
                members.append(pool_ids[(i * 13 + 5) % POOL])
        members = list(dict.fromkeys(members))
        room = await call(
            bot_tokens[i % shards],
            "/_matrix/client/v3/createRoom",
            {"preset": "private_chat", "initial_state": ENCRYPTED, "invite": members},
        )
        room_id = str(room["room_id"])
        for member in members:
            await call(tokens[member], f"/_matrix/client/v3/join/{room_id}", {})
        made += 1
        if made % 500 == 0:
            print(f"   {made}/{rooms} salons ({time.monotonic() - t0:.0f} s)", flush=True)
        return room_id

    made_rooms = await bounded(concurrency, [make_room(i) for i in range(rooms)])
    print(f"   {rooms} salons créés en {time.monotonic() - t0:.0f} s", flush=True)
    return Site(me, storm, echo, made_rooms[:STORM_ROOMS], made_rooms[-1])


def start_echo(dep: Deployment, echo: RegisteredUser) -> subprocess.Popen[bytes]:
    session = dep.var / "bench-echo.json"
    session.write_text(
        json.dumps(
            {
                "homeserver": dep.homeserver,
                "user_id": echo.user_id,
                "device_id": echo.device_id,
                "access_token": echo.access_token,
                "store": str(dep.var / "bench-echo-store"),
            }
        )
    )
    (dep.var / "bench-echo-store").mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "bot_latency.py"), "--echo", str(session)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL,
        stderr=open(dep.var / "bench-echo.log", "wb"),
    )


async def measure(dep: Deployment, site: Site, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    me = Professional(await e2ee_client(dep.homeserver, site.me, dep.var / "bench-me"))
    storm = [
        Professional(await e2ee_client(dep.homeserver, s, dep.var / f"bench-storm{k}"))
        for k, s in enumerate(site.storm)
    ]
    me.start()
    for sender in storm:
        sender.start()
    echo_proc = start_echo(dep, site.echo)
    room = site.command_room
    try:
        t0 = time.monotonic()
        # the bot has every new room to take in from its /syncs first
        await me.command(room, "!aide", timeout=900)
        print(f"   première réponse du bot : {time.monotonic() - t0:.0f} s", flush=True)
        echo_room = await me.room_with(site.echo.user_id, timeout=120)
        for _ in range(3):  # room keys shared, everything warm
            await me.command(room, "!aide", timeout=120)
            await me.command(echo_room, "ping", timeout=120)
        for i, room_id in enumerate(site.storm_rooms):  # keys shared to the bot and the echo
            await storm[i % len(storm)].send(room_id, "préparation")
        await asyncio.sleep(3)

        idle, echo_idle, _ = await alternate(me, room, echo_room, args.rounds, 120)
        print(f"   !aide au repos : {latency_ms(idle)}", flush=True)
        print(f"   écho au repos  : {latency_ms(echo_idle)}", flush=True)

        # read before the storm: `cercle status` blocks this loop, and the storm would then
        # catch up its delay in a burst
        pids = process_pids(dep)
        messages = Storm(storm, site.storm_rooms, args.storm_rate)
        messages.start()
        try:
            await asyncio.sleep(3)
            cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
            s0, t1 = messages.sent, time.monotonic()
            busy, echo_busy, unanswered = await alternate(me, room, echo_room, args.rounds, 60)
            elapsed = time.monotonic() - t1
            cpu = {name: (cpu_seconds(pid) - cpu0[name]) / elapsed for name, pid in pids.items()}
            rate = (messages.sent - s0) / elapsed
        finally:
            await messages.stop()
        busy = busy or [float("nan")]
        echo_busy = echo_busy or [float("nan")]
        print(f"   !aide pendant la tempête ({rate:.1f} msg/s) : {latency_ms(busy)}", flush=True)
        print(f"   écho pendant la tempête : {latency_ms(echo_busy)}", flush=True)
        if unanswered:
            print(f"   {unanswered} commande(s) sans réponse en 60 s", flush=True)
        shown = {n: round(c, 2) for n, c in sorted(cpu.items()) if c >= 0.01}
        print(f"   CPU pendant la tempête (cœurs) : {shown}", flush=True)
        out |= {
            "storm_msg_per_s": rate,
            "unanswered": unanswered,
            "aide_idle_p50_ms": 1000 * statistics.median(idle),
            "aide_idle_p99_ms": 1000 * pct(idle, 99),
            "aide_storm_p50_ms": 1000 * statistics.median(busy),
            "aide_storm_p99_ms": 1000 * pct(busy, 99),
            "storm_ratio_p50": statistics.median(busy) / statistics.median(idle),
            "storm_ratio_p99": pct(busy, 99) / pct(idle, 99),
            "echo_idle_p50_ms": 1000 * statistics.median(echo_idle),
            "echo_storm_p50_ms": 1000 * statistics.median(echo_busy),
            "echo_ratio_p50": statistics.median(echo_busy) / statistics.median(echo_idle),
            "echo_ratio_p99": pct(echo_busy, 99) / pct(echo_idle, 99),
            "cpu_storm": shown,
        }
        print(
            f"   rapport tempête / repos : !aide p50 {out['storm_ratio_p50']:.2f}× "
            f"p99 {out['storm_ratio_p99']:.2f}× (objectif ≤ 1.2×) ; écho p50 "
            f"{out['echo_ratio_p50']:.2f}× p99 {out['echo_ratio_p99']:.2f}×",
            flush=True,
        )
    finally:
        stop([echo_proc])
        for client in (me, *storm):
            await client.close()
    return out


def dep_shards(dep: Deployment) -> int:
    return int(dep.env.get("CERCLE__BOT__SHARDS", "1"))


async def run_one(dep: Deployment, args: argparse.Namespace) -> dict[str, Any]:
    print(f"== {dep.name} : démarrage…", flush=True)
    try:
        dep.cli("up", "--detach")
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            site = await populate(
                dep, args.rooms, args.storm_senders, args.concurrency, http, dep_shards(dep)
            )
        return await measure(dep, site, args)
    finally:
        dep.cli("down")
        drop(dep.databases)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--storm-rate", type=float, default=10)
    parser.add_argument("--storm-senders", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--profiles", default="single,region")
    parser.add_argument(
        "--shards",
        default="1",
        help="the bot's accounts (bot.shards), e.g. 1,4: each profile once per value",
    )
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    if args.rooms < SMALLEST:
        parser.error(f"--rooms : {SMALLEST} au moins (les {STORM_ROOMS} de la tempête + 1)")
    if not 1 <= args.rounds <= 1000 or not 0 < args.storm_rate <= 200:
        parser.error("--rounds : 1 à 1000 ; --storm-rate : entre 0 et 200 messages/s")
    if not 1 <= args.storm_senders <= STORM_ROOMS:
        parser.error(f"--storm-senders : 1 à {STORM_ROOMS}")
    wanted = {p.strip() for p in args.profiles.split(",") if p.strip()}
    if not wanted or wanted - {"single", "region"}:
        parser.error("--profiles : single, region ou les deux")
    try:
        shard_counts = [int(k) for k in args.shards.split(",") if k.strip()]
    except ValueError:
        shard_counts = []
    if not shard_counts or not all(1 <= k <= 32 for k in shard_counts):
        parser.error("--shards : des nombres de comptes de 1 à 32, séparés par des virgules")
    if "region" in wanted and skipped("bot_storm_profiles"):
        return 0
    clean_up_on_sigterm()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="cercle-bot-storm-") as tmp:
        for k in shard_counts:
            for dep in deployments(Path(tmp) / f"comptes-{k}"):
                if dep.name in wanted:
                    name = dep.name if len(shard_counts) == 1 else f"{dep.name}, {k} compte(s)"
                    env = {**dep.env, "CERCLE__BOT__SHARDS": str(k)}
                    results[name] = run_cleanly(run_one(replace(dep, name=name, env=env), args))
    print()
    print(
        f"bot dans {args.rooms} salons, tempête de {args.storm_rate:g} msg/s dans 50 salons "
        f"par {args.storm_senders} compte(s)"
    )
    print("profil | !aide repos p50/p99 | tempête p50/p99 | rapport p50/p99 | écho p50/p99")
    for name, r in results.items():
        print(
            f"{name:>6} | {r['aide_idle_p50_ms']:.0f} / {r['aide_idle_p99_ms']:.0f} ms | "
            f"{r['aide_storm_p50_ms']:.0f} / {r['aide_storm_p99_ms']:.0f} ms | "
            f"{r['storm_ratio_p50']:.2f}× / {r['storm_ratio_p99']:.2f}× | "
            f"{r['echo_ratio_p50']:.2f}× / {r['echo_ratio_p99']:.2f}×"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
