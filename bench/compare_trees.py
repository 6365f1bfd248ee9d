#!/usr/bin/env python3
"""Every benchmark of two trees of Cercle, run side by side in one run.

    .venv/bin/python bench/compare_trees.py --old DIR [--new DIR] [--out DIR]
        [--only annuaire,dossier_load] [--rounds 2] [--quick]

For a structural change that must leave behaviour and speed unchanged: ``--old`` is a
checkout of the code before it (``git worktree add DIR REV``) with its own ``.venv`` (install
it with this tree's ``requirements.lock`` as constraints so that only our code differs). Each
benchmark runs from its own tree, with its own venv, alternately (old, new, new, old…), so
both share the machine's state; the load average is noted before each run. Every run's output
is kept whole in ``--out`` (one file per run) and its lines that carry figures are printed
one tree beside the other: reading them is left to a person, since each bench prints its own
figures its own way. A bench that fails in either tree is reported, and the run goes on.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

# Each bench with the arguments of one comparable run: sizes chosen so that the whole set of
# both trees runs in about half an hour on 2 cores (the bench's own default in a comment where
# it is larger). --quick divides them further for a smoke run.
BENCHES: dict[str, list[str]] = {
    "patient_rooms_policy": [],
    "shared_history": [],
    "sync_outbox": ["--writes", "500"],
    "dossier_load": ["--seconds", "5", "--clients", "32"],
    "dossier_pages": ["--seconds", "5", "--clients", "16"],
    "export_memory": ["--sizes", "10000,50000,100000"],
    "annuaire": ["--rows", "500000", "--queries", "1000"],  # default 2,000,000 rows
    "export_pdf": ["--messages", "3000", "--images", "20"],  # default 10,000 and 50
    "bot_latency": ["--rounds", "60", "--burst", "100", "--rooms", "10"],  # 150, 200, 20
}
QUICK: dict[str, list[str]] = {
    "sync_outbox": ["--writes", "50"],
    "dossier_load": ["--seconds", "1", "--clients", "4"],
    "dossier_pages": ["--seconds", "1", "--clients", "2"],
    "export_memory": ["--sizes", "1000,2000"],
    "annuaire": ["--rows", "5000", "--queries", "50"],
    "export_pdf": ["--messages", "50", "--images", "1"],
    "bot_latency": ["--rounds", "4", "--burst", "10", "--rooms", "2"],
}
SINGLE_ROUND = {"annuaire", "export_pdf"}  # long: one run per tree
TIMEOUT_S = 1200


def run_one(tree: Path, bench: str, args: list[str], log: Path) -> tuple[int, float]:
    """Runs one bench from its tree with that tree's venv; its whole output goes to ``log``."""
    workdir = log.with_suffix(".work")
    extra = ["--workdir", str(workdir)] if bench in {"annuaire", "sync_outbox"} else []
    command = [str(tree / ".venv" / "bin" / "python"), f"bench/{bench}.py", *args, *extra]
    started = time.monotonic()
    with log.open("w") as out:
        out.write(f"$ {' '.join(command)}\n# load average before: {os.getloadavg()[0]:.2f}\n")
        out.flush()
        try:
            done = subprocess.run(
                command, cwd=tree, stdout=out, stderr=subprocess.STDOUT, timeout=TIMEOUT_S
            )
            code = done.returncode
        except subprocess.TimeoutExpired:
            out.write(f"\n# stopped after {TIMEOUT_S} s\n")
            code = -1
    return code, time.monotonic() - started


def figures(log: Path) -> list[str]:
    """The lines of a run's output that carry a figure (digits), without tracebacks' lines."""
    lines = log.read_text(errors="replace").splitlines()
    return [
        line.rstrip()
        for line in lines
        if any(c.isdigit() for c in line) and not line.lstrip().startswith(("File ", "at "))
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="checkout before the change")
    parser.add_argument("--new", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cercle-bench-compare"))
    parser.add_argument("--only", default="", help="comma-separated bench names")
    parser.add_argument("--rounds", type=int, default=2, help="runs per tree (ABBA order)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check it runs")
    opts = parser.parse_args()
    chosen = [b for b in opts.only.split(",") if b] or list(BENCHES)
    unknown = [b for b in chosen if b not in BENCHES]
    if unknown:
        print(f"banc inconnu : {', '.join(unknown)} (connus : {', '.join(BENCHES)})")
        return 2
    for tree in (opts.old, opts.new):
        if not (tree / ".venv" / "bin" / "python").exists():
            print(f"{tree} n'a pas de .venv : installez-le d'abord")
            return 2
    opts.out.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    for bench in chosen:
        args = QUICK.get(bench, BENCHES[bench]) if opts.quick else BENCHES[bench]
        rounds = 1 if bench in SINGLE_ROUND else opts.rounds
        order = [("old", "new") if r % 2 == 0 else ("new", "old") for r in range(rounds)]
        runs: dict[str, list[Path]] = {"old": [], "new": []}
        for r, pair in enumerate(order):
            for side in pair:
                tree = opts.old if side == "old" else opts.new
                log = opts.out / f"{bench}.{side}.{r + 1}.log"
                code, took = run_one(tree, bench, args, log)
                print(f"[{bench}] {side} run {r + 1}: exit {code}, {took:.0f} s", flush=True)
                if code != 0:
                    failed.append(f"{bench} ({side}, run {r + 1})")
                runs[side].append(log)
        for side in ("old", "new"):
            for log in runs[side]:
                print(f"--- {bench} · {side} · {log.name}")
                for line in figures(log):
                    print(f"    {line}")
        print(flush=True)
    if failed:
        print("échecs : " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
