"""The dossier of both profiles side by side, by bisection (issue 15), loopback only.

Both deployments are started with `cercle up` (the single profile, then `--profile
region`, as `bench/region_load.py` starts them) and stay up together; the same closed-loop
dossier clients (service token, one file) then hit in turn, seconds apart, round after
round: the single profile's dossier, the region's nginx (two dossier processes behind it)
and one region dossier process directly (its own loopback port, no nginx). Each turn runs
each request pattern (``W`` a note written, ``R`` the file read: ``WRRRR`` is
`region_load`'s mix, ``R`` reads only, which always hit the file cache). Printed per turn:
reads and writes/s, p50/p99, errors, CPU seconds of the dossier processes, nginx and every
PostgreSQL process of the machine (others' included), and the load average: only ratios
within one run mean anything on a shared machine.

    python bench/region_dossier_bisect.py [--seconds 6] [--clients 8] [--rounds 2]
                                          [--patterns WRRRR,R]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common.measures import cpu_seconds, pct  # noqa: E402
from bench.region_load import (  # noqa: E402
    Deployment,
    deployments,
    drop,
    open_file,
    process_pids,
    skipped,
)


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds of each process (nginx with its workers) and of all PostgreSQL's."""
    out = {}
    for name, pid in pids.items():
        total = cpu_seconds(pid)
        if name == "proxy":
            children = Path(f"/proc/{pid}/task/{pid}/children")
            if children.exists():
                total += sum(cpu_seconds(int(c)) for c in children.read_text().split())
        out[name] = total
    postgres = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    postgres += cpu_seconds(int(entry.name))
            except OSError:
                continue
    out["postgres"] = postgres
    return out


async def _turn(
    http: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    pid: str,
    pattern: str,
    seconds: float,
    clients: int,
) -> dict[str, Any]:
    reads: list[float] = []
    writes: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds

    async def client(i: int) -> None:
        nonlocal errors
        n = 0
        while time.monotonic() < stop:
            write = pattern[n % len(pattern)] == "W"
            t0 = time.monotonic()
            if write:
                resp = await http.post(
                    f"{url}/api/v1/patients/{pid}/notebook",
                    headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                    json={"kind": "note", "text": f"note {i}-{n}"},
                )
            else:
                resp = await http.get(f"{url}/api/v1/patients/{pid}", headers=headers)
            await resp.read()
            resp.release()
            errors += resp.status >= 300
            (writes if write else reads).append(time.monotonic() - t0)
            n += 1

    await asyncio.gather(*(client(i) for i in range(clients)))
    return {"reads": reads, "writes": writes, "errors": errors}


async def _run(deps: list[Deployment], args: argparse.Namespace) -> None:
    targets = []  # (label, deployment, url, processes whose CPU is counted)
    for dep in deps:
        pids = {k: v for k, v in process_pids(dep).items() if k.startswith(("dossier", "proxy"))}
        if dep.name == "region":
            direct = f"http://127.0.0.1:{int(dep.env['CERCLE__REGION__BASE_PORT']) + 50}"
            targets.append(("region via nginx", dep, dep.dossier, pids))
            targets.append(("region dossier1", dep, direct, {"dossier1": pids["dossier1"]}))
        else:
            targets.append(("single", dep, dep.dossier, pids))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        files = {}
        for dep in deps:
            headers, pid = await open_file(http, dep)
            if pid is None:
                raise SystemExit(f"{dep.name} : le dossier du banc n'a pas pu être ouvert")
            files[dep.name] = (headers, pid)
        for rnd in range(args.rounds):
            for label, dep, url, pids in targets:
                headers, pid = files[dep.name]
                for pattern in args.patterns.split(","):
                    before = _cpu(pids)
                    res = await _turn(http, url, headers, pid, pattern, args.seconds, args.clients)
                    after = _cpu(pids)
                    done = len(res["reads"]) + len(res["writes"])
                    cpu = " ".join(
                        f"{k} {after[k] - before[k]:.1f} s ({1000 * (after[k] - before[k]) / max(done, 1):.1f} ms/req)"
                        for k in after
                    )
                    print(
                        f"{rnd} {label:17} {pattern:6} reads/s {len(res['reads']) / args.seconds:6.1f} "
                        f"p50/p99 {1000 * pct(res['reads'], 50):5.0f}/{1000 * pct(res['reads'], 99):5.0f} ms "
                        f"writes/s {len(res['writes']) / args.seconds:5.1f} err {res['errors']} | "
                        f"CPU {cpu} | load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--patterns", default="WRRRR,R")
    args = parser.parse_args()
    if set(args.patterns) - set("WR,"):
        parser.error("--patterns : des W et des R, séparés par des virgules")
    if skipped("region_dossier_bisect"):
        return 0
    with tempfile.TemporaryDirectory(prefix="cercle-region-bisect-") as tmp:
        started = []
        try:
            for dep in deployments(Path(tmp)):  # the region's ports picked once single is up
                started.append(dep)
                dep.cli("up", "--detach")
            asyncio.run(_run(started, args))
        finally:
            for dep in started:
                dep.cli("down")
                drop(dep.databases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
