"""The parts of a transcript: fpdf2 documents of at most ``PAGES_PER_PART`` pages, each
bound into the output as soon as it is full (``binding.PdfBinder``); the page look (header,
footer, colours, margins) and the « page X / N » stamped once N is known."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import PDFResourceType
from fpdf.fonts import TTFFont
from fpdf.util import escape_parens

from bots.export.binding import PartBinder
from bots.export.layout import (
    Tone,
)
from bots.export.transcript import TranscriptHeader
from bots.export.typefaces import (
    FAMILY,
    Typefaces,
)

log = logging.getLogger(__name__)

MARGIN = 15.0
# Pages held in memory at most (one fpdf2 document).  Each part makes its own font subsets
# (~0.1 s; ~25 KB in the file): 400 pages render as fast as one single document did, and
# peak memory is ~3 MB above what 100 pages would give (measured on 30,000 messages).
PAGES_PER_PART = 400
PART_BYTES = 32 * 1024 * 1024  # images and files held by a part before it is written
FOOTER_PADDING = 1.0  # mm between the page number and the right margin
FOOTER_BASELINE = 7.3  # mm from the bottom of the page

COLORS: Mapping[Tone, tuple[int, int, int]] = {
    Tone.TEXT: (25, 25, 25),
    Tone.MUTED: (115, 115, 115),
    Tone.NOTICE: (95, 105, 125),
    Tone.QUOTE: (85, 85, 85),
    Tone.EVENT: (92, 62, 140),
    Tone.ALERT: (170, 30, 30),
    Tone.DAY: (45, 45, 45),
}


class TranscriptPdf(FPDF):
    """One part of the transcript: pages `first_page` … of the whole document."""

    def __init__(
        self, room_label: str, typefaces: Typefaces | None = None, first_page: int = 1
    ) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.room_label = room_label
        self.first_page = first_page
        self.summary_line: str | None = None
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(False)
        (typefaces or Typefaces()).install(self)
        self.set_lang("fr-FR")
        self.set_creator("Cercle")

    @property
    def page_number(self) -> int:
        """The current page's number in the whole document."""
        return self.first_page + self.page_no() - 1

    def header(self) -> None:
        if self.page_number == 1:
            return
        self.set_font(FAMILY, "", 7)
        self.set_text_color(*COLORS[Tone.MUTED])
        self.text(MARGIN, 9, f"Cercle — {self.room_label}")
        self.set_draw_color(200, 200, 200)
        self.line(MARGIN, 10.5, self.w - MARGIN, 10.5)

    def footer(self) -> None:
        # « page X / N » is stamped when the parts are bound (N is known then), in this
        # part's regular font: make sure every page lists it among its resources
        self._resource_catalog.add(PDFResourceType.FONT, self.fonts[FAMILY].i, self.page)
        if self.summary_line:  # set once every message is drawn: this is the last page
            self.set_font(FAMILY, "", 7)
            self.set_text_color(*COLORS[Tone.MUTED])
            width = self.get_string_width(self.summary_line)
            self.text((self.w - width) / 2, self.h - 12, self.summary_line)


class PageNumberStamp:
    """« page X / N », right-aligned in the footer, for the pages of one part.

    Drawn by `PdfBinder.finish` once N is known, after the part's document is gone: the
    glyphs are picked into the part's font subset when the part is opened and only their
    ids and widths are kept (each part has its own subset: ids differ from part to part).
    """

    CHARACTERS = "page 0123456789/"
    SIZE = 7.0

    def __init__(self, pdf: TranscriptPdf) -> None:
        font = pdf.fonts[FAMILY]
        assert isinstance(font, TTFFont)
        glyphs: dict[str, bytes] = {}
        self.widths: dict[str, float] = {}
        for char in self.CHARACTERS:
            glyph = font.subset.pick(ord(char))
            if glyph is None:
                raise ValueError("the footer font lacks a digit")
            encoded = chr(glyph).encode("utf-16-be")
            glyphs[char] = escape_parens(encoded)
            self.widths[char] = font.cw[ord(char)] * self.SIZE / 1000  # in points
        self.glyphs = glyphs
        red, green, blue = COLORS[Tone.MUTED]
        self.prefix = (
            f"q {red / 255:.3f} {green / 255:.3f} {blue / 255:.3f} rg BT /F{font.i} "
            f"{self.SIZE:.2f} Tf "
        ).encode()
        self.right = (pdf.w - MARGIN - FOOTER_PADDING) * pdf.k  # points from the left
        self.baseline = FOOTER_BASELINE * pdf.k  # points from the bottom

    def __call__(self, number: int, total: int) -> bytes:
        text = f"page {number} / {total}"
        width = sum(map(self.widths.__getitem__, text))
        glyphs = b"".join(map(self.glyphs.__getitem__, text))
        position = f"{self.right - width:.2f} {self.baseline:.2f} Td (".encode()
        return self.prefix + position + glyphs + b") Tj ET Q"


class PartSeries:
    """The transcript's fpdf2 documents: each holds at most `pages_per_part` pages (or
    `PART_BYTES` of images and files) and is bound into the output as soon as it is full."""

    def __init__(
        self, header: TranscriptHeader, binder: PartBinder, workdir: Path, pages_per_part: int
    ) -> None:
        if pages_per_part < 1:
            raise ValueError("a part holds one page at least")
        self.header = header
        self.binder = binder
        self.workdir = workdir
        self.pages_per_part = pages_per_part
        self.pages_bound = 0
        self.parts_bound = 0
        self.typefaces = Typefaces()
        self.pdf, self.stamp = self._open()
        self.heavy_bytes = 0  # images and files held by the current part

    def _open(self) -> tuple[TranscriptPdf, PageNumberStamp]:
        pdf = TranscriptPdf(self.header.room_label, self.typefaces, first_page=self.pages_bound + 1)
        pdf.set_title(f"Transcription — {self.header.room_label}")
        pdf.set_author(self.header.exported_by)
        pdf.set_creation_date(self.header.exported_at)
        return pdf, PageNumberStamp(pdf)

    def add_page(self) -> bool:
        """Start a page; True when it starts a new part (a new document: new fonts)."""
        full = self.pdf.page_no() >= self.pages_per_part or self.heavy_bytes >= PART_BYTES
        if full:
            self._bind()
            self.pdf, self.stamp = self._open()
            self.heavy_bytes = 0
        self.pdf.add_page()
        return full

    def finish(self, summary_line: str, subject: str) -> int:
        """Bind the last part (its last page gets the summary line); the total of pages."""
        self.pdf.summary_line = summary_line
        self.pdf.set_subject(subject)
        self._bind()
        return self.binder.finish()

    def _bind(self) -> None:
        path = self.workdir / f"part-{self.parts_bound}.pdf"
        self.pdf.output(str(path))
        self.pages_bound += self.binder.bind(path, self.stamp)
        self.parts_bound += 1
        path.unlink()
