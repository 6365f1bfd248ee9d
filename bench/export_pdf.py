#!/usr/bin/env python3
"""Benchmark of the PDF export on a real local Synapse with E2EE.

    .venv/bin/python bench/export_pdf.py [--messages 10000] [--images 50] [--workdir DIR]
                                         [--binders hand,pikepdf] [--rounds 2]

1. Starts a Synapse rendered by the deployment's own code (as the test fixture does), creates
   an encrypted room with Alice, Bob and an exporter, and fills it with N encrypted messages
   (sent concurrently, rate limits lifted) and M encrypted photos (1600x1200 JPEG).
2. In a child process (so that its peak RSS is the export's alone), the exporter pages and
   decrypts the whole history and downloads + decrypts the photos — (a), what any exporter
   must pay — then renders the PDF — (b) — exactly as `!export` does.
3. For comparison, renders the first 1,000 messages with naive `multi_cell` (fpdf2's own
   wrapping), the baseline the issue mentions.

Prints (a), (b), total, peak RSS, and checks the goals: rendering >= 3,000 msg/s,
total <= 2 x (a), peak RSS <= 200 MB.

``--binders`` exports the same room once per way of binding the PDF's parts (``hand``, the
export's own; ``pikepdf``, `bench/alternatives/pikepdf_binder.py`), in turn, ``--rounds``
times (A, B, A, B); each export is reported on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common.clients import e2ee_client, login_of  # noqa: E402
from bench.common.transcripts import WORDS, part_binder  # noqa: E402

if TYPE_CHECKING:
    from tests.support import SynapseUnderTest


def message_body(rng: random.Random, i: int) -> dict[str, str]:
    length = rng.choice((4, 8, 12, 20, 30, 45, 70))
    words = " ".join(rng.choice(WORDS) for _ in range(length))
    body = f"[{i}] {words[0].upper()}{words[1:]}."
    content = {"msgtype": "m.text", "body": body}
    if i % 10 == 0:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = f"<b>[{i}]</b> {words}<br><ul><li>à revoir</li></ul>"
    if i % 97 == 0:
        content["body"] += "\n\nSuite :\n- point 1\n- point 2"
    return content


def photo(rng: random.Random) -> bytes:
    from PIL import Image, ImageDraw, ImageFilter

    image = Image.new("RGB", (1600, 1200), (rng.randrange(256), 120, 90))
    draw = ImageDraw.Draw(image)
    for _ in range(200):
        x, y = rng.randrange(1600), rng.randrange(1200)
        draw.ellipse(
            (x, y, x + rng.randrange(20, 200), y + rng.randrange(20, 200)),
            fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)),
        )
    image = image.filter(ImageFilter.GaussianBlur(1))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=88)
    return out.getvalue()


async def populate(
    hs: SynapseUnderTest, n_messages: int, n_images: int, store: Path
) -> dict[str, Any]:
    from nio import AsyncClient, RoomSendResponse, UploadResponse

    def user(name: str) -> dict[str, Any]:
        return hs.register(f"{name}-{os.getpid()}", "bench-password-" + name, displayname=name)

    async def client_for(login: dict[str, Any], name: str) -> AsyncClient:
        return await e2ee_client(hs.base_url, login_of(login), store / name)

    logins = {name: user(name) for name in ("alice", "bob", "exporter")}
    alice = await client_for(logins["alice"], "alice")
    bob = await client_for(logins["bob"], "bob")
    exporter = await client_for(logins["exporter"], "exporter")
    created = await alice.room_create(name="Bench — Mme D.", invite=[bob.user_id, exporter.user_id])
    room_id = created.room_id
    for member in (bob, exporter):
        await member.sync(timeout=0)
        await member.join(room_id)
    await alice.sync(timeout=0)
    await alice.keys_query()

    rng = random.Random(4)
    started = time.perf_counter()
    image_at = {int((k + 0.5) * n_messages / max(1, n_images)) for k in range(n_images)}
    semaphore = asyncio.Semaphore(24)
    sent = 0

    async def send(content: dict[str, Any]) -> None:
        nonlocal sent
        async with semaphore:
            for _attempt in range(5):
                response = await alice.room_send(
                    room_id, "m.room.message", content, ignore_unverified_devices=True
                )
                if isinstance(response, RoomSendResponse):
                    sent += 1
                    return
                await asyncio.sleep(0.5)
            raise RuntimeError(f"send failed: {response}")

    async def send_photo(index: int) -> None:
        data = photo(rng)
        async with semaphore:
            response, keys = await alice.upload(
                lambda *_: io.BytesIO(data),
                content_type="image/jpeg",
                filename=f"photo-{index}.jpg",
                encrypt=True,
                filesize=len(data),
            )
        assert isinstance(response, UploadResponse), response
        await send(
            {
                "msgtype": "m.image",
                "body": f"photo-{index}.jpg",
                "info": {"mimetype": "image/jpeg", "size": len(data), "w": 1600, "h": 1200},
                "file": {
                    "url": response.content_uri,
                    "key": keys["key"],
                    "iv": keys["iv"],
                    "hashes": keys["hashes"],
                    "v": keys["v"],
                },
            }
        )

    # the first message creates and shares the Megolm session; then everything in parallel
    await send(message_body(rng, 0))
    batch: list[Coroutine[Any, Any, None]] = []
    for i in range(1, n_messages):
        batch.append(send_photo(i) if i in image_at else send(message_body(rng, i)))
        if len(batch) >= 500:
            await asyncio.gather(*batch)
            batch = []
            print(f"  … {sent} messages sent", file=sys.stderr, flush=True)
    await asyncio.gather(*batch)
    elapsed = time.perf_counter() - started
    last = await alice.room_send(
        room_id,
        "m.room.message",
        {"msgtype": "m.text", "body": "Fin du bench."},
        ignore_unverified_devices=True,
    )
    await bob.sync(timeout=0)
    await bob.room_read_markers(room_id, last.event_id, last.event_id)
    for _ in range(5):  # the exporter receives the room keys (to-device)
        await exporter.sync(timeout=500)
    for client in (alice, bob, exporter):
        await client.close()
    return {
        "room_id": room_id,
        "exporter": logins["exporter"],
        "base_url": hs.base_url,
        "store": str(store / "exporter"),
        "send_seconds": elapsed,
        "sent": sent + 1,
    }


def export_child(spec_path: str, binder_name: str) -> None:
    """Runs in a fresh process: fetch + decrypt (a), then render (b)."""
    spec = json.loads(Path(spec_path).read_text())
    binder = part_binder(binder_name)

    async def run() -> dict[str, float]:
        import aiohttp

        from bots.export.history import HistoryRequest, fetch_history
        from bots.export.media import MediaFetcher
        from bots.export.pdf import render_transcript
        from bots.export.transcript import TranscriptHeader

        login = spec["exporter"]
        client = await e2ee_client(spec["base_url"], login_of(login), Path(spec["store"]))
        from datetime import UTC, datetime

        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            async with aiohttp.ClientSession() as session:
                media = MediaFetcher(session, client.homeserver, client.access_token, Path(tmp))
                history = await fetch_history(client, HistoryRequest(spec["room_id"]), media)
            t1 = time.perf_counter()
            rss_after_fetch = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            header = TranscriptHeader(
                "Bench — Mme D.",
                "tout l'historique",
                "Exporteur",
                datetime.now(UTC),
                participants=history.participants,
            )
            out = Path(tmp) / "export.pdf"
            cpu = time.process_time()  # the event loop idles: this is the render thread's CPU
            summary = await asyncio.to_thread(
                render_transcript, header, history.entries, out, binder=binder
            )
            t2 = time.perf_counter()
            render_cpu = time.process_time() - cpu
            size = out.stat().st_size
            undecryptable = sum(1 for e in history.entries if e.kind.value == "undecryptable")
            images = sum(1 for e in history.entries if e.attachment and e.attachment.path)
            seen = sum(1 for e in history.entries if e.seen_by)
        await client.close()
        return {
            "fetch": t1 - t0,
            "render": t2 - t1,
            "render_cpu": render_cpu,
            "entries": len(history.entries),
            "messages": summary.messages,
            "attachments": summary.attachments,
            "images_downloaded": images,
            "undecryptable": undecryptable,
            "pages": summary.pages,
            "pdf_bytes": size,
            "seen_lines": seen,
            "rss_after_fetch_mb": rss_after_fetch,
            "paging": history.seconds_paging,
            "media": history.seconds_media,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }

    print(json.dumps(asyncio.run(run())))


def naive_multicell_rate(n: int = 1000) -> float:
    """fpdf2's own wrapping (multi_cell per message), the baseline of the issue."""
    from fpdf import FPDF

    from bots.export.typefaces import FONTS_DIR

    rng = random.Random(4)
    bodies = [message_body(rng, i)["body"] for i in range(n)]
    pdf = FPDF(format="A4")
    pdf.add_font("dejavu", "", str(FONTS_DIR / "DejaVuSans.ttf"))
    pdf.add_font("dejavu", "B", str(FONTS_DIR / "DejaVuSans-Bold.ttf"))
    pdf.add_page()
    started = time.perf_counter()
    for i, body in enumerate(bodies):
        pdf.set_font("dejavu", "B", 9.5)
        pdf.multi_cell(0, 5, f"Alice  25/11/2026 14:{i % 60:02d}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("dejavu", "", 9.5)
        pdf.multi_cell(0, 5, body, new_x="LMARGIN", new_y="NEXT")
    pdf.output(os.devnull)
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the room already filled in --workdir (skips the sending)",
    )
    parser.add_argument("--binders", default="hand", help="comma-separated: hand, pikepdf")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--binder", default="hand", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        export_child(args.child, args.binder)
        return

    from tests.support import start_synapse

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="cercle-bench-export-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"Synapse in {workdir} …", file=sys.stderr)
    hs = start_synapse(workdir / "var")
    spec_path = workdir / "spec.json"
    try:
        if args.reuse and spec_path.exists():
            spec = json.loads(spec_path.read_text())
            spec["base_url"] = hs.base_url  # a new free port at each start
            print(f"reusing the room filled earlier: {spec['sent']} encrypted events", flush=True)
        else:
            spec = asyncio.run(populate(hs, args.messages, args.images, workdir / "stores"))
            print(
                f"room filled: {spec['sent']} encrypted events ({args.images} photos) in "
                f"{spec['send_seconds']:.1f} s",
                flush=True,
            )
        spec_path.write_text(json.dumps(spec))
        results = []
        for binder in [b for _ in range(args.rounds) for b in args.binders.split(",")]:
            child = subprocess.run(
                [sys.executable, __file__, "--child", str(spec_path), "--binder", binder],
                capture_output=True,
                text=True,
                check=False,
            )
            if child.returncode != 0:
                print(child.stderr[-4000:], file=sys.stderr)
                raise SystemExit("export child failed")
            results.append((binder, json.loads(child.stdout.strip().splitlines()[-1])))
    finally:
        hs.stop()
        if args.workdir is None:  # a room kept for --reuse needs a --workdir of its own
            shutil.rmtree(workdir, ignore_errors=True)
    naive = naive_multicell_rate()
    for binder, result in results:
        if len(args.binders.split(",")) > 1 or binder != "hand":
            print(f"--- binder: {binder}")
        report(result, naive)


def report(result: dict[str, float], naive: float) -> None:
    fetch, render = result["fetch"], result["render"]
    total = fetch + render
    rate = result["entries"] / render
    cpu_rate = result["entries"] / result["render_cpu"]
    print(
        f"entries exported: {result['entries']} ({result['messages']} messages, "
        f"{result['attachments']} attachments, {result['images_downloaded']} images "
        f"downloaded+decrypted, {result['undecryptable']} undecryptable, "
        f"{result['seen_lines']} « Vu par » lines)"
    )
    print(f"PDF: {result['pages']} pages, {result['pdf_bytes'] / 1e6:.1f} MB")
    print(
        f"(a) fetch + decrypt history and media : {fetch:7.2f} s "
        f"({result['entries'] / fetch:,.0f} msg/s)"
    )
    print(
        f"      of which paging + decryption    : {result['paging']:7.2f} s; attachments "
        f"{result['media']:.2f} s"
    )
    print(
        f"(b) render (layout + fpdf2 + output)  : {render:7.2f} s ({rate:,.0f} msg/s); "
        f"CPU {result['render_cpu']:.2f} s ({cpu_rate:,.0f} msg/s of CPU)"
    )
    print(f"total                                 : {total:7.2f} s = {total / fetch:.2f} x (a)")
    print(
        f"peak RSS of the export process        : {result['peak_rss_mb']:7.1f} MB "
        f"(after fetch: {result['rss_after_fetch_mb']:.1f} MB)"
    )
    print(
        f"naive multi_cell baseline             : {naive:,.0f} msg/s -> ours is "
        f"{rate / naive:.1f}x faster"
    )
    print(f"machine load average (1 min, {os.cpu_count()} cores): {os.getloadavg()[0]:.1f}")
    goals = [
        ("rendering >= 3,000 msg/s (wall)", rate >= 3000),
        ("rendering >= 3,000 msg/s (CPU time)", cpu_rate >= 3000),
        ("total <= 2 x (a)", total <= 2 * fetch),
        ("peak RSS <= 200 MB", result["peak_rss_mb"] <= 200),
    ]
    for name, ok in goals:
        print(f"  {'OK  ' if ok else 'MISS'} {name}")


if __name__ == "__main__":
    main()
