"""Drawing a laid-out transcript (``layout.py``) onto the pages of its parts: the document
header, the lines with their fonts and colours, the images (downscaled) and the attached
files."""

from __future__ import annotations

import gc
import logging

from fpdf.enums import PDFResourceType
from fpdf.util import escape_parens

from bots.export.images import IMAGE_DPI, prepare_image
from bots.export.layout import (
    EMOJI_STYLE,
    PT,
    Block,
    ImageSlot,
    Line,
    Spacer,
    Tone,
    TranscriptLayout,
)
from bots.export.parts import COLORS, MARGIN, PartSeries, TranscriptPdf
from bots.export.transcript import Attachment, TranscriptHeader
from bots.export.typefaces import (
    EMOJI_FAMILY,
    FAMILY,
    GlyphEncoder,
)
from deployment.conventions import PARIS

log = logging.getLogger(__name__)


class PageDrawer:
    def __init__(self, parts: PartSeries, layout: TranscriptLayout, with_attachments: bool) -> None:
        self.parts = parts
        self.layout = layout
        self.with_attachments = with_attachments
        self.embedded_names: set[str] = set()  # unique in the whole document
        self._use_part(parts.pdf)
        self.bottom = self.pdf.h - 20.0
        self.top = 14.0
        parts.add_page()
        self.y = MARGIN

    def _use_part(self, pdf: TranscriptPdf) -> None:
        """Per-document state: fonts, glyph ids, resources, colour."""
        self.pdf = pdf
        self.color: tuple[int, int, int] | None = None
        self.color_op = ""
        self.encoders: dict[int, GlyphEncoder] = {}
        self.fonts = {style: pdf.fonts[f"{FAMILY}{style}"] for style in ("", "B", "I", "BI")}
        if EMOJI_FAMILY in pdf.fonts:
            self.fonts[EMOJI_STYLE] = pdf.fonts[EMOJI_FAMILY]
        self.fonts_on_page: set[tuple[int, int]] = set()

    def new_page(self) -> None:
        if self.parts.add_page():
            self._use_part(self.parts.pdf)
            # the previous part is unreachable now, but its fonts and subset maps refer to
            # each other: free it at once rather than at the cyclic collector's next full pass
            gc.collect()
        self.color = None
        self.y = self.top

    def draw_document_header(self, header: TranscriptHeader) -> None:
        pdf, layout = self.pdf, self.layout
        y = MARGIN
        pdf.set_text_color(*COLORS[Tone.TEXT])
        pdf.set_font(FAMILY, "B", 15)
        y += 5
        pdf.text(MARGIN, y, layout.clean("Transcription de la conversation"))
        self.color = None  # set_text_color above: the next line sets its own
        self.y = y + 2
        for line in layout.wrap([(header.room_label, "B")], Tone.TEXT, 12.0, 0.0):
            self.draw_line(line)  # an emoji in the room's name: drawn by the emoji typeface
        y = self.y
        rows: list[tuple[str, str]] = []
        if header.patient:
            rows.append(("Patient : ", header.patient))
        if header.participants:
            names = [
                f"{p.display_name} ({p.profession})" if p.profession else p.display_name
                for p in header.participants
            ]
            rows.append(("Participants : ", ", ".join(names)))
        if header.invited:
            invited = ", ".join(p.display_name for p in header.invited)
            rows.append(("Invité(e)s sans avoir rejoint : ", invited))
        rows.append(("Période : ", header.period_label))
        exported_at = header.exported_at.astimezone(PARIS)
        rows.append(
            (
                "Exporté par : ",
                f"{header.exported_by}, le {exported_at:%d/%m/%Y à %H:%M} (heure de Paris)",
            )
        )
        if not header.with_attachments:
            rows.append(("Pièces jointes : ", "non incluses (export sans pièces jointes)"))
        self.color = None  # set_text_color above: the next line sets its own
        self.y = y + 1
        for label, value in rows:
            for line in layout.wrap([(label, "B"), (value, "")], Tone.TEXT, 9.0, 0.0):
                self.draw_line(line)
        y = self.y + 2
        self.pdf.set_draw_color(160, 160, 160)
        self.pdf.line(MARGIN, y, self.pdf.w - MARGIN, y)
        self.y = y + 2

    def draw(self, block: Block) -> None:
        keep = 0.0
        for item in block.items[: block.keep_together]:
            keep += self._height(item)
        if self.y + keep > self.bottom and self.y > self.top + 1:
            self.new_page()
        for item in block.items:
            if isinstance(item, Line):
                self.draw_line(item)
            elif isinstance(item, Spacer):
                self.y += item.height
            else:
                self.draw_image(item)
        if block.embedded_file is not None:
            self.embed(block.embedded_file)

    def _height(self, item: Line | ImageSlot | Spacer) -> float:
        if isinstance(item, ImageSlot):
            return 20.0
        return item.height

    def draw_note(self, text: str) -> None:
        for line in self.layout.wrap([(text, "I")], Tone.MUTED, 9.0, 0.0):
            self.draw_line(line)

    def draw_line(self, line: Line) -> None:
        if self.y + line.height > self.bottom:
            self.new_page()
        pdf = self.pdf
        color = COLORS[line.tone]
        if color != self.color:
            pdf.set_text_color(*color)
            self.color = color
            self.color_op = f"{color[0] / 255:.3f} {color[1] / 255:.3f} {color[2] / 255:.3f} rg"
        baseline = self.y + line.size * PT * 1.0
        if line.tone is Tone.QUOTE and line.runs:
            pdf.set_draw_color(190, 190, 190)
            pdf.line(
                MARGIN + line.runs[0].x - 1.5,
                self.y + 0.3,
                MARGIN + line.runs[0].x - 1.5,
                self.y + line.height,
            )
        offset = MARGIN
        if line.centered_width is not None:
            offset = MARGIN + (self.layout.style.width - line.centered_width) / 2
            pdf.set_draw_color(200, 200, 200)
            mid = self.y + line.height / 2 - 0.6
            pdf.line(MARGIN, mid, offset - 3, mid)
            pdf.line(offset + line.centered_width + 3, mid, pdf.w - MARGIN, mid)
        for run in line.runs:
            if run.text:
                self.put_text(offset + run.x, baseline, run.text, run.style, line.size)
        self.y += line.height

    def put_text(self, x: float, y: float, text: str, style: str, size: float) -> None:
        """`FPDF.text` without its per-character and per-call work.

        The font is selected inside the text object and glyph ids are cached per font.
        Relies on fpdf2 internals (`_out`, `_resource_catalog`, the font subset); the tests
        parse the text back, so a change there shows at once.
        """
        pdf = self.pdf
        font = self.fonts[style]
        if (font.i, pdf.page) not in self.fonts_on_page:
            pdf._resource_catalog.add(PDFResourceType.FONT, font.i, pdf.page)
            self.fonts_on_page.add((font.i, pdf.page))
        encoder = self.encoders.get(font.i)
        if encoder is None:
            encoder = self.encoders[font.i] = GlyphEncoder(font)
        mapped = text.translate(encoder).encode("utf-16-be").decode("latin-1")
        escaped = escape_parens(mapped)
        k = pdf.k
        pdf._out(
            f"q {self.color_op} BT /F{font.i} {size:.2f} Tf {x * k:.2f} "
            f"{(pdf.h - y) * k:.2f} Td ({escaped}) Tj ET Q"
        )

    def draw_image(self, slot: ImageSlot) -> None:
        attachment = slot.attachment
        try:
            data, width_px, height_px = prepare_image(attachment)
        except Exception:  # a corrupt or unsupported image must not stop the export
            log.warning("image illisible dans l'export (taille %s)", attachment.size)
            self.draw_note("image illisible")
            return
        width = width_px * 25.4 / IMAGE_DPI
        height = height_px * 25.4 / IMAGE_DPI
        scale = min(1.0, slot.max_width / width, slot.max_height / height)
        width, height = width * scale, height * scale
        if self.y + height > self.bottom:
            self.new_page()
        self.pdf.image(data, x=MARGIN + slot.indent, y=self.y, w=width, h=height)
        self.parts.heavy_bytes += data.getbuffer().nbytes
        self.y += height + 1.0

    def embed(self, attachment: Attachment) -> None:
        if attachment.path is None:
            return
        name = attachment.name or "piece-jointe"
        base, dot, ext = name.rpartition(".")
        candidate, n = name, 1
        while candidate in self.embedded_names:
            n += 1
            candidate = f"{base} ({n}){dot}{ext}" if dot else f"{name} ({n})"
        self.embedded_names.add(candidate)
        data = attachment.path.read_bytes()
        self.parts.heavy_bytes += len(data)
        self.pdf.embed_file(
            bytes=data,
            basename=candidate,
            mime_type=attachment.mimetype or None,
            desc=f"SHA-256 {attachment.sha256}",
            compress=True,
        )
