"""Pure: the names of a transcript — the room's label (without the flag markers) and the
PDF's file name (room and period)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from nio import AsyncClient

from bots.export.history import History
from bots.flags.model import MARKERS
from deployment.conventions import PARIS


def count_words(n: int, one: str, many: str) -> str:
    return f"{n} {one if n <= 1 else many}"


def room_label(client: AsyncClient, room_id: str) -> str:
    room = client.rooms.get(room_id)
    label = (room.name or room.display_name) if room else None
    label = label or "Salon"
    changed = True
    while changed:  # the flag markers are not part of the room's own name
        changed = False
        for marker in MARKERS.values():
            if label.startswith(marker):
                label, changed = label[len(marker) :], True
    return label.strip() or "Salon"


def export_filename(label: str, history: History, requested_at: datetime) -> str:
    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_label).strip("-")[:60] or "salon"
    start = (history.first or requested_at).astimezone(PARIS).strftime("%Y-%m-%d")
    end = (history.last or requested_at).astimezone(PARIS).strftime("%Y-%m-%d")
    period = start if start == end else f"{start}_au_{end}"
    return f"Transcription_{slug}_{period}.pdf"
