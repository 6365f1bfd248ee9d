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
sys.path.insert(0, str(ROOT / "tests"))

from mail_servers import start_mail_servers  # noqa: E402
from nio import AsyncClient  # noqa: E402

from bench.common.clients import ENCRYPTED, Watcher, e2ee_client, until  # noqa: E402
from bench.common.homeserver import BenchSite, stop  # noqa: E402
from bench.common.measures import pct  # noqa: E402
from bridges.mail.account import ensure_bridge_account  # noqa: E402

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


class MailWatcher(Watcher):
    """The professional's client: when each bench mail shows up in the Courriers room."""

    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client)
        self.arrivals: dict[str, float] = {}
        self.counts: Counter[str] = Counter()
        self.dm_notices: list[str] = []

    def seen(self, event: Any, now: float) -> None:
        content = event.source.get("content", {})
        body = content.get("body", "")
        if content.get("msgtype") == "m.notice":
            self.dm_notices.append(body)
        for line in body.split("\n")[:3]:
            if line.startswith("Objet : bench-"):
                key = line.removeprefix("Objet : ")
                self.counts[key] += 1
                self.arrivals.setdefault(key, now)


async def bench(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="cercle-bench-mail-"))
    servers = start_mail_servers()
    pro_box, sender_box = "pro@mss.test", "labo@mss.test"
    servers.add_mailbox(pro_box, secrets.token_urlsafe(12))
    servers.add_mailbox(sender_box, secrets.token_urlsafe(12))
    site = BenchSite.create(
        work,
        {
            "mail_bridge": {
                "enabled": True, "imap_host": "127.0.0.1", "imap_port": servers.imap_port,
                "smtp_host": "127.0.0.1", "smtp_port": servers.smtp_port,
                "ca_file": str(servers.ca_file), "backfill": 0,
            },
        },
    )  # fmt: skip
    profile, secrets_ = site.profile, site.secrets
    synapse = site.synapse()
    synapse.start()
    bridge_proc: subprocess.Popen[bytes] | None = None
    watcher: MailWatcher | None = None
    try:
        accounts = await site.service_accounts()
        bridge_user = f"@cercle-courrier:{profile.server_name}"
        await ensure_bridge_account(
            profile.homeserver_url,
            accounts.admin_token,
            secrets_,
            user_id=bridge_user,
            display_name="Courriers",
        )
        me = (await site.users(accounts.admin_token, ["bench-pro"]))["bench-pro"]
        bridge_proc = site.spawn("-m", "bridges.mail", log=work / "bridge.log")
        client = await e2ee_client(
            profile.homeserver_url, me.user_id, me.device_id, me.access_token, work / "pro-store"
        )
        watcher = MailWatcher(client)
        watcher.start()
        dm = (
            await client.room_create(invite=[bridge_user], initial_state=ENCRYPTED, is_direct=True)
        ).room_id
        await until(
            lambda: (
                bridge_user in client.rooms[dm].users
                and bridge_user not in client.rooms[dm].invited_users
            ),
            "le pont n'a pas rejoint la conversation",
        )
        await client.room_send(
            dm,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": f"!connecter {pro_box} {servers.passwords[pro_box]}",
            },
            ignore_unverified_devices=True,
        )
        await until(lambda: any("reliée" in n for n in watcher.dm_notices), "boîte non reliée")

        proc = psutil.Process(bridge_proc.pid)
        rss: list[tuple[int, float]] = [(0, proc.memory_info().rss / 2**20)]
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
            while len(watcher.arrivals) < upto and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            return max(watcher.arrivals.values(), default=time.perf_counter())

        def delays(keys: range) -> list[float]:
            return [
                watcher.arrivals[f"bench-{i}"] - submitted[f"bench-{i}"]
                for i in keys
                if f"bench-{i}" in watcher.arrivals
            ]

        # 1. latency: mails at a pace the bridge keeps up with (IDLE wakes it per mail)
        latency_n = min(args.latency_mails, args.mails)
        await submit_paced(0, latency_n, args.latency_rate)
        await arrived(latency_n)
        # 2. throughput: the rest as a burst at --rate (faster than Synapse can take them)
        t_burst = await submit_paced(latency_n, args.mails - latency_n, args.rate)
        t_end = await arrived(args.mails)
        rss.append((args.mails, proc.memory_info().rss / 2**20))
        await asyncio.sleep(5)  # anything posted twice would show now

        load = os.getloadavg()
        print(
            f"{args.mails} courriers (texte + PDF de {len(PDF) // 1024} ko) par la soumission "
            f"TLS, Dovecot (IDLE), pont en processus séparé, Synapse SQLite ; "
            f"{os.cpu_count()} cœurs partagés, charge {load[0]:.1f}"
        )
        print(
            f"  reçus dans Matrix : {len(watcher.arrivals)} / {args.mails} ; "
            f"en double : {sum(1 for c in watcher.counts.values() if c > 1)}"
        )
        lat = delays(range(latency_n))
        if lat:
            print(
                f"  délai soumission → message Matrix, {latency_n} courriers à "
                f"{args.latency_rate:g}/s : p50 = {statistics.median(lat):.2f} s, "
                f"p99 = {pct(lat, 99):.2f} s (objectif p50 ≤ 2 s)"
            )
        burst = delays(range(latency_n, args.mails))
        if burst:
            print(
                f"  débit, {len(burst)} courriers soumis à {args.rate:g}/s : "
                f"{len(burst) / (t_end - t_burst):.1f} courriers/s dans Matrix "
                f"(délai p50 {statistics.median(burst):.1f} s, file d'attente comprise)"
            )
        print("  mémoire du pont (RSS) : " + ", ".join(f"{n} → {m:.0f} Mo" for n, m in rss))
    finally:
        if watcher is not None:
            await watcher.close()
        if bridge_proc is not None:
            stop([bridge_proc], grace=30)
        synapse.stop()
        servers.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="burst phase, mails/s")
    parser.add_argument("--latency-mails", type=int, default=100)
    parser.add_argument("--latency-rate", type=float, default=1.0)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
