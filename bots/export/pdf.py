"""Draw a transcript with fpdf2: A4, French, DejaVu fonts shipped in `fonts/`.

`render_transcript(header, entries, path)` lays entries out one at a time
(`layout.py`), draws their lines, embeds downscaled images and attaches other files.
Memory is bounded whatever the room's size: the pages are drawn in parts (one fpdf2
document per `PAGES_PER_PART` pages), each written to a temp file and appended to `path`
by `binding.PdfBinder` as soon as it is full; the footer's « page X / N » is stamped when
the parts are bound, once N is known.  CPU-bound and synchronous: run it in a worker
thread.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bots.export.binding import PartBinder, PdfBinder
from bots.export.drawing import PageDrawer
from bots.export.layout import (
    LayoutStyle,
    TranscriptLayout,
)
from bots.export.parts import MARGIN, PAGES_PER_PART, PartSeries
from bots.export.transcript import Entry, TranscriptHeader
from bots.export.typefaces import (
    FpdfFontMetrics,
)


@dataclass(frozen=True)
class RenderSummary:
    messages: int
    attachments: int
    digest: str  # SHA-256 of the exported content (see transcript.ContentDigest)
    pages: int


def render_transcript(
    header: TranscriptHeader,
    entries: Iterable[Entry],
    path: Path,
    *,
    style: LayoutStyle | None = None,
    pages_per_part: int = PAGES_PER_PART,
    workdir: Path | None = None,
    binder: Callable[[BinaryIO], PartBinder] = PdfBinder,
) -> RenderSummary:
    """Render the entries as a PDF at `path` and return what the footer says.

    `entries` is consumed once, in order.  The pages are drawn in parts of at most
    `pages_per_part` pages, each written to a temp file in `workdir` (default: next to
    `path`) and bound into `path` at once by a `binder` made with the output file (the
    export's own, `PdfBinder`; the benchmarks measure others against it): memory stays the
    same whatever the room's size.
    """
    try:
        with (
            tempfile.TemporaryDirectory(prefix=".pdf-parts-", dir=workdir or path.parent) as tmp,
            path.open("wb", buffering=1 << 16) as out,
        ):
            parts = PartSeries(header, binder(out), Path(tmp), pages_per_part)
            layout = TranscriptLayout(
                FpdfFontMetrics(parts.pdf),
                style or LayoutStyle(width=parts.pdf.w - 2 * MARGIN),
                with_attachments=header.with_attachments,
            )
            drawer = PageDrawer(parts, layout, header.with_attachments)
            drawer.draw_document_header(header)
            for block in layout.layout_all(entries):
                drawer.draw(block)
            digest = layout.digest.hexdigest()
            messages, attachments = layout.digest.messages, layout.digest.attachments
            if messages == 0:
                drawer.draw_note("Aucun message dans la période demandée.")
            summary_line = (
                f"{messages} message{'s' if messages > 1 else ''}, "
                f"{attachments} pièce{'s' if attachments > 1 else ''} jointe"
                f"{'s' if attachments > 1 else ''} — SHA-256 du contenu : {digest}"
            )
            pages = parts.finish(summary_line, f"SHA-256 du contenu : {digest}")
    except BaseException:
        path.unlink(missing_ok=True)  # never leave half a PDF behind
        raise
    return RenderSummary(messages, attachments, digest, pages)
