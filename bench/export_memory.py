#!/usr/bin/env python3
"""Peak memory and speed of the PDF rendering alone, on synthetic rooms of growing size.

    .venv/bin/python bench/export_memory.py [--sizes 10000,50000,100000] [--images-every 500]
                                            [--binders hand,pikepdf] [--rounds 2]

Each size is rendered in a fresh child process (so that its peak RSS, `ru_maxrss`, is that
render's alone) from a lazy generator of entries: French text (1 in 10 formatted, a few
multi-paragraph, replies, « Vu par » lines), a 1600x1200 photo every `--images-every`
messages and a small embedded file every `--files-every` (same name each time: made unique
in the PDF).  Nothing is kept in a list, so what grows with the room is the renderer's alone.
The three photos repeat: one document stored each once, parts store them once per part, so
the PDF is bigger here than for a real room (whose photos all differ).

Prints one line per size: pages, PDF size, render time and msg/s (wall and CPU), peak RSS;
then whether memory stayed flat (largest minus smallest peak < 15 MB) and rendering
>= 3,000 msg/s at every size (wall time suffers when other work shares the machine: the
load average is printed, and the CPU-time rate is checked too).

By default each message starts with « [i] », a word never seen before: the line breaker
caches word widths (up to 200,000 words), so that part of memory grows until the cache is
full; --no-numbers shows the renderer alone.

``--binders`` renders every size with each way of binding the parts into one PDF: ``hand``
(`bots.export.binding`, the export's own) and ``pikepdf`` (qpdf, `bench/alternatives/pikepdf_binder.py`),
interleaved (size after size, binder after binder, round after round) so that the machine's
other work falls on both alike; each line names its binder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common.transcripts import WORDS, part_binder  # noqa: E402

if TYPE_CHECKING:
    from bots.export.transcript import Entry

FLAT_MB = 15.0
GOAL_RATE = 3000.0


def synthetic_entries(
    count: int,
    workdir: Path,
    *,
    images_every: int,
    files_every: int,
    numbered: bool = True,
    seed: int = 7,
) -> Iterator[Entry]:
    """`count` entries made on the fly (a generator: the caller never holds them all)."""
    from PIL import Image

    from bots.export.transcript import Attachment, Entry, EntryKind, Quote

    rng = random.Random(seed)
    photos = []
    for n, color in enumerate(((200, 40, 40), (40, 140, 60), (30, 60, 170))):
        path = workdir / f"photo-{n}.jpg"
        image = Image.new("RGB", (1600, 1200), color)
        for x in range(0, 1600, 40):  # some detail, so that the JPEG is not trivial
            image.paste((x % 255, 90, 200 - x % 200), (x, 0, x + 20, 1200))
        image.save(path, format="JPEG", quality=85)
        data = path.read_bytes()
        photos.append(
            Attachment(
                "photo.jpg", "image/jpeg", True, len(data), hashlib.sha256(data).hexdigest(), path
            )
        )
    report = workdir / "compte-rendu.txt"
    report.write_bytes("Compte rendu de visite : pansement refait, 15 €.\n".encode() * 60)
    report_data = report.read_bytes()
    report_file = Attachment(
        "compte-rendu.txt",
        "text/plain",
        False,
        len(report_data),
        hashlib.sha256(report_data).hexdigest(),
        report,
    )
    start = datetime(2025, 1, 6, 7, 0, tzinfo=UTC)
    names = ("Élodie Müller", "Dr Martin", "Chloé Bernard", "Karim Haddad")
    texts = [  # drawn once: the generator's own cost stays small next to the render's
        " ".join(rng.choice(WORDS) for _ in range(rng.choice((4, 8, 12, 20, 30, 45, 70))))
        for _ in range(997)
    ]
    for i in range(count):
        sender = i % len(names)
        words = texts[i % len(texts)]
        number = f"[{i}] " if numbered else ""  # one word never seen before per message
        body = f"{number}{words[0].upper()}{words[1:]}."
        formatted = None
        if i % 10 == 0:
            formatted = f"<b>{number}</b>{words}<br><ul><li>à revoir</li></ul>"
        if i % 97 == 0:
            body += "\n\nSuite :\n- point 1\n- point 2"
        attachment = None
        if images_every and i % images_every == images_every - 1:
            attachment = photos[(i // images_every) % len(photos)]
            body, formatted = attachment.name, None
        elif files_every and i % files_every == files_every - 1:
            attachment = report_file
            body, formatted = attachment.name, None
        yield Entry(
            event_id=f"$ev{i}",
            sender=f"@u{sender}:cercle.test",
            sender_name=names[sender],
            timestamp=start + timedelta(minutes=7 * i),
            kind=EntryKind.NOTICE if i % 53 == 0 else EntryKind.MESSAGE,
            body=body,
            formatted_body=formatted,
            quote=Quote(names[(sender + 1) % 4], "la dose du soir ?") if i % 13 == 0 else None,
            attachment=attachment,
            seen_by=(names[(sender + 2) % 4],) if i % 29 == 0 else (),
        )


def render_child(count: int, options: argparse.Namespace) -> dict[str, float]:
    from bots.export.pdf import render_transcript
    from bots.export.transcript import TranscriptHeader

    binder = part_binder(options.binder)

    with tempfile.TemporaryDirectory(prefix="cercle-bench-memory-") as tmp:
        workdir = Path(tmp)
        entries = synthetic_entries(
            count,
            workdir,
            images_every=options.images_every,
            files_every=options.files_every,
            numbered=not options.no_numbers,
        )
        header = TranscriptHeader(
            "Bench — Mme D.", "tout l'historique", "Exporteur", datetime.now(UTC)
        )
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out = workdir / "export.pdf"
        cpu, wall = time.process_time(), time.perf_counter()
        summary = render_transcript(header, entries, out, binder=binder)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return {
            "entries": count,
            "messages": summary.messages,
            "pages": summary.pages,
            "pdf_bytes": out.stat().st_size,
            "seconds": wall,
            "cpu_seconds": cpu,
            "rss_before_mb": baseline,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000,100000", help="comma-separated counts")
    parser.add_argument("--images-every", type=int, default=500)
    parser.add_argument("--files-every", type=int, default=700)
    parser.add_argument(
        "--no-numbers",
        action="store_true",
        help="no « [i] » at the start of each message (no new word per message: the line "
        "breaker's word cache, bounded at 200,000 words, then stops growing at once)",
    )
    parser.add_argument("--binders", default="hand", help="comma-separated: hand, pikepdf")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--binder", default="hand", help=argparse.SUPPRESS)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(render_child(args.child, args)))
        return

    results = []
    passed = ["--images-every", str(args.images_every), "--files-every", str(args.files_every)]
    if args.no_numbers:
        passed.append("--no-numbers")
    runs = [
        (size, binder)
        for _ in range(args.rounds)
        for size in (int(s) for s in args.sizes.split(","))
        for binder in args.binders.split(",")
    ]
    for size, binder in runs:
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(size), "--binder", binder, *passed],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            print(child.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"render of {size} entries failed")
        result = json.loads(child.stdout.strip().splitlines()[-1])
        result["binder"] = binder
        results.append(result)
        print(
            f"{binder:>7} {result['entries']:>8,} entries: {result['pages']:>6,} pages, "
            f"{result['pdf_bytes'] / 1e6:6.1f} MB PDF, render {result['seconds']:6.2f} s "
            f"({result['entries'] / result['seconds']:6,.0f} msg/s wall, "
            f"{result['entries'] / result['cpu_seconds']:6,.0f} msg/s CPU), "
            f"peak RSS {result['peak_rss_mb']:6.1f} MB "
            f"(before rendering {result['rss_before_mb']:.1f} MB), "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    print(f"machine load average (1 min, {os.cpu_count()} cores): {os.getloadavg()[0]:.1f}")
    for binder in args.binders.split(","):
        verdicts([r for r in results if r["binder"] == binder], binder)


def verdicts(results: list[dict[str, Any]], binder: str) -> None:
    peaks = [r["peak_rss_mb"] for r in results]
    growth = max(peaks) - min(peaks)
    slowest = min(r["entries"] / r["seconds"] for r in results)
    slowest_cpu = min(r["entries"] / r["cpu_seconds"] for r in results)
    print(f"{binder}:")
    for name, ok in (
        (f"peak RSS flat: grows by {growth:.1f} MB < {FLAT_MB:.0f} MB", growth < FLAT_MB),
        (
            f"rendering >= {GOAL_RATE:,.0f} msg/s (wall) at every size: {slowest:,.0f}",
            slowest >= GOAL_RATE,
        ),
        (
            f"rendering >= {GOAL_RATE:,.0f} msg/s (CPU time) at every size: {slowest_cpu:,.0f}",
            slowest_cpu >= GOAL_RATE,
        ),
    ):
        print(f"  {'OK  ' if ok else 'MISS'} {name}")


if __name__ == "__main__":
    main()
