"""Peak memory of a render does not grow with the number of messages.

Each render runs in a child process, so that its peak RSS (`ru_maxrss`) is its own, from a
lazy generator of entries (nothing held in a list).  The single fpdf2 document this module
replaced grew by about 12 KB per page: from 8,000 to 30,000 messages (474 to 1,775 pages)
its peak went from 104.8 to 122.5 MB here, +17.7 MB.  Drawn in parts of at most
`PAGES_PER_PART` (400) pages, both renders go past the first part and peak while one part is
written (its pages and fpdf2's output buffer): 93.1 MB both (measured).  5 MB leaves room
for the allocator's noise and the bounded caches warming up, and is well under what the
single document grew by.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ALLOWED_GROWTH_MB = 5.0

CHILD = r"""
import hashlib, json, resource, sys, tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image

from bots.export.pdf import render_transcript
from bots.export.transcript import Attachment, Entry, EntryKind, TranscriptHeader

SENTENCES = [
    "Pansement refait ce matin, la plaie est propre et le cœur régulier.",
    "Tension 13/8, glycémie à 1,10 g/l, pas de fièvre.",
    "Ordonnance renouvelée : Doliprane matin et soir, 12 € restant à charge.",
    "La fille de Mme D. appelle demain pour le portage des repas.",
    "Douleur évaluée à 3/10, œdème en baisse, à surveiller.",
    "Kinésithérapeute passé, rééducation de la marche avec le déambulateur.",
]


def entries(count, tmp):
    photos = []
    for n, color in enumerate(((200, 40, 40), (40, 140, 60))):
        path = tmp / f"photo-{n}.jpg"
        Image.new("RGB", (1200, 900), color).save(path, format="JPEG")
        data = path.read_bytes()
        photos.append(Attachment("photo.jpg", "image/jpeg", True, len(data),
                                 hashlib.sha256(data).hexdigest(), path))
    report = tmp / "cr.txt"
    report.write_bytes(b"compte rendu\n" * 100)
    data = report.read_bytes()
    file = Attachment("cr.txt", "text/plain", False, len(data), hashlib.sha256(data).hexdigest(),
                      report)
    start = datetime(2025, 1, 6, 7, 0, tzinfo=UTC)
    for i in range(count):
        attachment = None
        body = " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(1 + i % 4))
        if i % 400 == 399:
            attachment = photos[(i // 400) % 2]
        elif i % 600 == 599:
            attachment = file
        if attachment is not None:
            body = attachment.name
        yield Entry(f"$e{i}", "@a:x", "Élodie Müller", start + timedelta(minutes=9 * i),
                    EntryKind.MESSAGE, body, attachment=attachment)


count = int(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    header = TranscriptHeader("Mme D.", "tout l'historique", "Chloé", datetime.now(UTC))
    summary = render_transcript(header, entries(count, Path(tmp)), Path(tmp) / "export.pdf")
print(json.dumps({"pages": summary.pages, "messages": summary.messages,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def render_in_child(count: int) -> dict[str, float]:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(count)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    result: dict[str, float] = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["messages"] == count
    return result


def test_peak_memory_does_not_grow_with_the_room() -> None:
    small = render_in_child(8_000)
    large = render_in_child(30_000)
    assert large["pages"] > 3 * small["pages"]
    growth = large["peak_mb"] - small["peak_mb"]
    assert growth < ALLOWED_GROWTH_MB, (
        f"peak RSS {small['peak_mb']:.1f} MB for {small['pages']} pages, "
        f"{large['peak_mb']:.1f} MB for {large['pages']} pages"
    )
