"""The Courriers bridge under load, through real servers: a temporary Synapse, Dovecot (IMAP
over TLS with IDLE, LMTP) and the TLS submission relay of the tests, the bridge as its own
process (``python -m bridges.mail``, exactly as ``cercle up`` starts it).

A sender submits N mails with a PDF attachment (SMTP, TLS + AUTH) to one professional's
mailbox; her E2EE client times each mail from the submission's 250 answer to its message in
the Courriers room. First 100 mails at 1/s (the delay, goal p50 ≤ 2 s with IDLE), then the
rest as a burst (mails/s into Matrix). Printed with the bridge's resident memory along the
run (flat = no growth per mail) and that every mail was posted exactly once.

Usage: .venv/bin/python bench/mail_bridge.py [--mails 1000] [--rate 10] [--latency-mails 100]
       [--latency-rate 1]
"""

from __future__ import annotations

import argparse
import asyncio
import email.policy
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nio import AsyncClient  # noqa: E402

from bench.common.clients import Watcher, e2ee_client, until  # noqa: E402
from bench.common.homeserver import BenchSite  # noqa: E402
from bench.common.measures import pct  # noqa: E402
from bridges.mail.account import ensure_bridge_account  # noqa: E402
from deployment.processes import stop_child  # noqa: E402
from tests.mail_servers import start_mail_servers  # noqa: E402

PDF = b"%PDF-1.4\n" + b"0" * 30_000 + b"\n%%EOF\n"


def bench_mail(i: int, sender: str, to: str) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)  # CRLF, as a mail client submits
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = f"bench-{i}"
    msg["Message-ID"] = f"<bench-{i}-{secrets.token_hex(4)}@lab.mss.test>"
    msg.set_content(f"Résultat n° {i}.")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename=f"resultat-{i}.pdf")
    return msg.as_bytes()


_POSTED = re.compile(r"courrier publié .*?uid=(\d+) .*?t0=([\d.]+) (.*)$")


def bridge_steps(log_file: Path) -> dict[int, dict[str, float]]:
    """Per UID, the monotonic time of each step the bridge logged (``Stopwatch``)."""
    steps: dict[int, dict[str, float]] = {}
    for line in log_file.read_text(errors="replace").splitlines():
        found = _POSTED.search(line)
        if found is None:
            continue
        t0 = float(found.group(2))
        marks = {"avis": t0}
        for item in found.group(3).split():
            name, _, value = item.partition("=+")
            marks[name] = t0 + float(value)
        steps[int(found.group(1))] = marks
    return steps


def where_time_goes(
    steps: dict[int, dict[str, float]],
    keys: list[str],
    submitted: dict[str, float],
    watcher: CourrierWatcher,
) -> list[str]:
    """Median of each leg, SMTP 250 → IDLE announcement → … → the client sees it. The bench's
    mails are the mailbox's only ones, submitted one after the other: mail i has UID i + 1."""
    legs: dict[str, list[float]] = {}

    def leg(name: str, value: float) -> None:
        legs.setdefault(name, []).append(value)

    for i, key in enumerate(keys):
        marks = steps.get(i + 1)
        if marks is None or key not in watcher.arrived:
            continue
        previous, at = "livraison", submitted[key]
        for name in ("avis", "liste", "lu", "analyse", "message"):
            if name in marks:
                leg(f"{previous} → {name}", marks[name] - at)
                previous, at = name, marks[name]
        leg("message → enregistré par Synapse", watcher.server_at[key] - at)
        leg("Synapse → vu par le client", watcher.arrived[key] - watcher.server_at[key])
        if "fichiers" in marks and "message" in marks:
            leg("(message → fichiers postés)", marks["fichiers"] - marks["message"])
    return [
        f"    {name} : p50 {statistics.median(v) * 1000:.0f} ms, p99 {pct(v, 99) * 1000:.0f} ms"
        for name, v in legs.items()
    ]


class CourrierWatcher(Watcher):
    """The professional's client: when each bench mail shows up in the Courriers room."""

    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client)
        self.arrived: dict[str, float] = {}
        self.server_at: dict[str, float] = {}  # Synapse's origin_server_ts, as monotonic time
        self.counts: Counter[str] = Counter()
        self.dm_notices: list[str] = []

    def seen(self, event: Any, now: float) -> None:
        body = event.source.get("content", {}).get("body", "")
        if event.source.get("content", {}).get("msgtype") == "m.notice":
            self.dm_notices.append(body)
        for line in body.split("\n")[:3]:
            if line.startswith("Objet : bench-"):
                key = line.removeprefix("Objet : ")
                self.counts[key] += 1
                self.arrived.setdefault(key, now)
                self.server_at.setdefault(
                    key, event.server_timestamp / 1000 - (time.time() - time.perf_counter())
                )


async def bench(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="cercle-bench-mail-"))
    servers = start_mail_servers()
    pro_box, sender_box = "pro@mss.test", "labo@mss.test"
    servers.add_mailbox(pro_box, secrets.token_urlsafe(12))
    servers.add_mailbox(sender_box, secrets.token_urlsafe(12))
    site = BenchSite.create(
        work,
        extra={
            "mail_bridge": {
                "enabled": True,
                "imap_host": "127.0.0.1",
                "imap_port": servers.imap_port,
                "smtp_host": "127.0.0.1",
                "smtp_port": servers.smtp_port,
                "ca_file": str(servers.ca_file),
                "backfill": 0,
            }
        },
    )
    profile = site.profile
    synapse = site.synapse()
    synapse.start()
    bridge_proc: subprocess.Popen[bytes] | None = None
    client: AsyncClient | None = None
    try:
        accounts = await site.service_accounts()
        bridge_user = f"@cercle-courrier:{profile.server_name}"
        await ensure_bridge_account(
            profile.homeserver_url,
            accounts.admin_token,
            site.secrets,
            user_id=bridge_user,
            display_name="Courriers",
        )
        me = (await site.users(accounts.admin_token, ["bench-pro"]))["bench-pro"]
        bridge_proc = site.spawn("-m", "bridges.mail", log=work / "bridge.log")
        client = await e2ee_client(
            profile.homeserver_url, me, work / "pro-store", store_sync_tokens=False
        )
        watcher = CourrierWatcher(client)
        watcher.start()
        dm = await watcher.room_with(bridge_user, timeout=60)
        await watcher.send(dm, f"!connecter {pro_box} {servers.passwords[pro_box]}")
        await until(lambda: any("reliée" in n for n in watcher.dm_notices), "boîte non reliée", 120)

        proc = psutil.Process(bridge_proc.pid)
        assert synapse.pid is not None
        servers_proc = psutil.Process(synapse.pid)
        rss: list[tuple[int, float]] = [(0, proc.memory_info().rss / 2**20)]

        def cpu() -> tuple[float, float]:
            """CPU seconds used so far by the bridge and by Synapse (user + system): the work
            per mail, which the load of the machine does not change."""
            a, b = proc.cpu_times(), servers_proc.cpu_times()
            return a.user + a.system, b.user + b.system

        cpu_start = cpu()
        submitted: dict[str, float] = {}

        async def submit_paced(first: int, count: int, rate: float) -> float:
            """Submit mails first … first+count-1 at ``rate``/s; the time the first left."""
            t0 = time.perf_counter()
            for n in range(count):
                i = first + n
                if (delay := t0 + n / rate - time.perf_counter()) > 0:
                    await asyncio.sleep(delay)
                raw = bench_mail(i, sender_box, pro_box)
                await asyncio.to_thread(servers.submit, raw, sender_box, [pro_box])
                submitted[f"bench-{i}"] = time.perf_counter()
                if (i + 1) % max(1, args.mails // 4) == 0:
                    rss.append((i + 1, proc.memory_info().rss / 2**20))
            return t0

        async def arrived(upto: int) -> float:
            deadline = time.monotonic() + 900
            while len(watcher.arrived) < upto and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            return max(watcher.arrived.values(), default=time.perf_counter())

        def delays(keys: range) -> list[float]:
            return [
                watcher.arrived[f"bench-{i}"] - submitted[f"bench-{i}"]
                for i in keys
                if f"bench-{i}" in watcher.arrived
            ]

        # 1. latency: mails at a pace the bridge keeps up with (IDLE wakes it per mail)
        latency_n = min(args.latency_mails, args.mails)
        load_start = os.getloadavg()[0]
        await submit_paced(0, latency_n, args.latency_rate)
        await arrived(latency_n)
        load_latency = (load_start, os.getloadavg()[0])
        cpu_latency = cpu()
        # 2. throughput: the rest as a burst at --rate (faster than Synapse can take them)
        t_burst = await submit_paced(latency_n, args.mails - latency_n, args.rate)
        t_end = await arrived(args.mails)
        cpu_end = cpu()
        rss.append((args.mails, proc.memory_info().rss / 2**20))
        await asyncio.sleep(5)  # anything posted twice would show now
        await watcher.close()

        load = os.getloadavg()
        print(
            f"{args.mails} courriers (texte + PDF de {len(PDF) // 1024} ko) par la soumission "
            f"TLS, Dovecot (IDLE), pont en processus séparé, Synapse SQLite ; "
            f"{os.cpu_count()} cœurs partagés, charge {load[0]:.1f}"
        )
        print(
            f"  reçus dans Matrix : {len(watcher.arrived)} / {args.mails} ; "
            f"en double : {sum(1 for c in watcher.counts.values() if c > 1)}"
        )
        lat = delays(range(latency_n))
        if lat:
            print(
                f"  délai soumission → message Matrix, {latency_n} courriers à "
                f"{args.latency_rate:g}/s : p50 = {statistics.median(lat):.2f} s, "
                f"p99 = {pct(lat, 99):.2f} s (objectif p50 ≤ 2 s ; charge pendant cette phase "
                f"{load_latency[0]:.1f} → {load_latency[1]:.1f})"
            )
            steps = bridge_steps(work / "bridge.log")
            print("  où passe le délai (phase de délai) :")
            for line in where_time_goes(
                steps, [f"bench-{i}" for i in range(latency_n)], submitted, watcher
            ):
                print(line)
        burst = delays(range(latency_n, args.mails))
        if burst:
            print(
                f"  débit, {len(burst)} courriers soumis à {args.rate:g}/s : "
                f"{len(burst) / (t_end - t_burst):.1f} courriers/s dans Matrix "
                f"(délai p50 {statistics.median(burst):.1f} s, file d'attente comprise)"
            )
        per_mail = [
            (after - before) * 1000 / n
            for before, after, n in (
                (cpu_start[0], cpu_latency[0], max(1, latency_n)),
                (cpu_start[1], cpu_latency[1], max(1, latency_n)),
                (cpu_latency[0], cpu_end[0], max(1, args.mails - latency_n)),
                (cpu_latency[1], cpu_end[1], max(1, args.mails - latency_n)),
            )
        ]
        print(
            f"  temps CPU par courrier (indépendant de la charge) : pont {per_mail[0]:.0f} ms, "
            f"Synapse {per_mail[1]:.0f} ms (phase de délai) ; pont {per_mail[2]:.0f} ms, "
            f"Synapse {per_mail[3]:.0f} ms (rafale)"
        )
        middle = min(rss, key=lambda r: abs(r[0] - args.mails // 2))
        print(
            f"  mémoire du pont (RSS) : début {rss[0][1]:.0f} Mo, milieu {middle[1]:.0f} Mo, "
            f"fin {rss[-1][1]:.0f} Mo (" + ", ".join(f"{n} → {m:.0f} Mo" for n, m in rss) + ")"
        )
        print(f"  charge (uptime) à la fin : {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        if client is not None:
            await client.close()
        if bridge_proc is not None:
            stop_child(bridge_proc, timeout=30)
        synapse.stop()
        servers.stop()
        if args.keep:
            print(f"  dossier de travail gardé : {work} (bridge.log, var/)")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="burst phase, mails/s")
    parser.add_argument("--latency-mails", type=int, default=100)
    parser.add_argument("--latency-rate", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true", help="keep the logs and data")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
