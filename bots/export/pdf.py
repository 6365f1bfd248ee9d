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

import copy
import gc
import io
import logging
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fontTools import ttLib
from fpdf import FPDF
from fpdf.enums import PDFResourceType
from fpdf.fonts import SubsetMap, TTFFont
from fpdf.util import escape_parens
from PIL import Image, ImageOps

from bots.export.binding import PdfBinder
from bots.export.layout import (
    EMOJI_STYLE,
    PT,
    Block,
    ImageSlot,
    LayoutStyle,
    Line,
    Spacer,
    Tone,
    TranscriptLayout,
)
from bots.export.transcript import Attachment, Entry, TranscriptHeader
from deployment.conventions import PARIS

log = logging.getLogger(__name__)

FONTS_DIR = Path(__file__).parent / "fonts"
FAMILY = "dejavu"
# Emoji: a monochrome typeface from the distribution (Debian « fonts-symbola », installed by
# the Makefile; free for any use): colour emoji fonts (bitmaps) cannot go into a PDF font.
# Without it, emoji print as « [emoji] » (and a warning says so once per export).
EMOJI_FAMILY = "cercle-emoji"
EMOJI_FONT_FILES = (Path("/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf"),)
MARGIN = 15.0
IMAGE_DPI = 150  # pixels kept per inch of printed size
IMAGE_MAX_PIXELS = 800  # 120 mm wide at 170 dpi: print quality, small PDF
# Pages held in memory at most (one fpdf2 document).  Each part makes its own font subsets
# (~0.1 s; ~25 KB in the file): 400 pages render as fast as one single document did, and
# peak memory is ~3 MB above what 100 pages would give (measured on 30,000 messages).
PAGES_PER_PART = 400
PART_BYTES = 32 * 1024 * 1024  # images and files held by a part before it is written
FOOTER_PADDING = 1.0  # mm between the page number and the right margin
FOOTER_BASELINE = 7.3  # mm from the bottom of the page

_COLORS: Mapping[Tone, tuple[int, int, int]] = {
    Tone.TEXT: (25, 25, 25),
    Tone.MUTED: (115, 115, 115),
    Tone.NOTICE: (95, 105, 125),
    Tone.QUOTE: (85, 85, 85),
    Tone.EVENT: (92, 62, 140),
    Tone.ALERT: (170, 30, 30),
    Tone.DAY: (45, 45, 45),
}


@dataclass(frozen=True)
class RenderSummary:
    messages: int
    attachments: int
    digest: str  # SHA-256 of the exported content (see transcript.ContentDigest)
    pages: int


class _Advances(dict[int, float]):
    """Advance widths by code point; one the font lacks gets .notdef's, without being stored
    (fpdf2's defaultdict stored every code point the line breaker looked up: 65,536 a style,
    20 MB for the four)."""

    def __init__(self, widths: Mapping[int, float], missing: float) -> None:
        super().__init__(widths)
        self.missing = missing

    def __missing__(self, codepoint: int) -> float:
        return self.missing


class FpdfFontMetrics:
    """FontMetrics read from the fonts registered in an FPDF document (copied: the
    document may be dropped, and its font objects subset in place when it is written)."""

    def __init__(self, pdf: FPDF, family: str = FAMILY) -> None:
        self._widths: dict[str, Mapping[int, float]] = {}
        for style in ("", "B", "I", "BI"):
            font = pdf.fonts[f"{family}{style}"]
            if not isinstance(font, TTFFont):
                raise TypeError("the transcript needs the TrueType fonts of fonts/")
            factory = getattr(font.cw, "default_factory", None)
            self._widths[style] = _Advances(font.cw, factory() if factory else 0.0)
            if style == "":
                self._cmap = frozenset(font.cmap)
        emoji = pdf.fonts.get(EMOJI_FAMILY)
        self._emoji_cmap: frozenset[int] = frozenset()
        self._widths[EMOJI_STYLE] = _Advances({}, 1000.0)
        if isinstance(emoji, TTFFont):
            factory = getattr(emoji.cw, "default_factory", None)
            self._widths[EMOJI_STYLE] = _Advances(emoji.cw, factory() if factory else 0.0)
            self._emoji_cmap = frozenset(emoji.cmap)

    def widths(self, style: str) -> Mapping[int, float]:
        return self._widths[style]

    def covers(self, codepoint: int) -> bool:
        return codepoint in self._cmap

    def covered(self) -> Iterable[int]:
        return self._cmap

    def emoji_covers(self, codepoint: int) -> bool:
        return codepoint in self._emoji_cmap

    def emoji_covered(self) -> Iterable[int]:
        return self._emoji_cmap


class Typefaces:
    """The DejaVu styles, read from their files once per transcript and given to every part.

    `FPDF.add_font` parses a TrueType file (~25 ms a style) and `FPDF.output` subsets that
    parsed font in place and closes it: a part cannot reuse another part's font objects.
    What fpdf2 computed from the file (widths, cmap, glyph ids, descriptor) is read-only,
    though: later parts share it and get only a lazily opened font file and a subset map
    of their own.  Relies on fpdf2 internals (TTFFont's attributes, SubsetMap, FPDF.fonts),
    as `_Drawer.put_text` does; the tests read the text of every part back.
    """

    def __init__(self) -> None:
        self._read: dict[str, TTFFont] = {}

    def install(self, pdf: FPDF) -> None:
        if not self._read:
            for style, suffix in (
                ("", ""),
                ("B", "-Bold"),
                ("I", "-Oblique"),
                ("BI", "-BoldOblique"),
            ):
                pdf.add_font(FAMILY, style, str(FONTS_DIR / f"DejaVuSans{suffix}.ttf"))
            emoji = next((f for f in EMOJI_FONT_FILES if f.exists()), None)
            if emoji is not None:
                pdf.add_font(EMOJI_FAMILY, "", str(emoji))
            else:
                log.warning("police d'emoji absente (%s) : emoji imprimés « [emoji] »",
                            EMOJI_FONT_FILES[0])  # fmt: skip
            for key, font in pdf.fonts.items():
                if not isinstance(font, TTFFont):
                    raise TypeError("the transcript needs the TrueType fonts of fonts/")
                read = self._read[key] = copy.copy(font)
                read.cmap = dict(font.cmap)  # fontTools prunes a cmap when subsetting it
            return
        for key, read in self._read.items():
            font = copy.copy(read)
            font.i = len(pdf.fonts) + 1
            font.ttfont = ttLib.TTFont(read.ttffile, recalcTimestamp=False, lazy=True)
            font.subset = SubsetMap(font)
            font.missing_glyphs = []
            font.biggest_size_pt = 0
            pdf.fonts[key] = font


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
        self.set_text_color(*_COLORS[Tone.MUTED])
        self.text(MARGIN, 9, f"Cercle — {self.room_label}")
        self.set_draw_color(200, 200, 200)
        self.line(MARGIN, 10.5, self.w - MARGIN, 10.5)

    def footer(self) -> None:
        # « page X / N » is stamped when the parts are bound (N is known then), in this
        # part's regular font: make sure every page lists it among its resources
        self._resource_catalog.add(PDFResourceType.FONT, self.fonts[FAMILY].i, self.page)
        if self.summary_line:  # set once every message is drawn: this is the last page
            self.set_font(FAMILY, "", 7)
            self.set_text_color(*_COLORS[Tone.MUTED])
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
        red, green, blue = _COLORS[Tone.MUTED]
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


def render_transcript(
    header: TranscriptHeader,
    entries: Iterable[Entry],
    path: Path,
    *,
    style: LayoutStyle | None = None,
    pages_per_part: int = PAGES_PER_PART,
    workdir: Path | None = None,
) -> RenderSummary:
    """Render the entries as a PDF at `path` and return what the footer says.

    `entries` is consumed once, in order.  The pages are drawn in parts of at most
    `pages_per_part` pages, each written to a temp file in `workdir` (default: next to
    `path`) and bound into `path` at once: memory stays the same whatever the room's size.
    """
    try:
        with (
            tempfile.TemporaryDirectory(prefix=".pdf-parts-", dir=workdir or path.parent) as tmp,
            path.open("wb", buffering=1 << 16) as out,
        ):
            parts = _PartSeries(header, PdfBinder(out), Path(tmp), pages_per_part)
            layout = TranscriptLayout(
                FpdfFontMetrics(parts.pdf),
                style or LayoutStyle(width=parts.pdf.w - 2 * MARGIN),
                with_attachments=header.with_attachments,
            )
            drawer = _Drawer(parts, layout, header.with_attachments)
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


class _PartSeries:
    """The transcript's fpdf2 documents: each holds at most `pages_per_part` pages (or
    `PART_BYTES` of images and files) and is bound into the output as soon as it is full."""

    def __init__(
        self, header: TranscriptHeader, binder: PdfBinder, workdir: Path, pages_per_part: int
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


class _Drawer:
    def __init__(
        self, parts: _PartSeries, layout: TranscriptLayout, with_attachments: bool
    ) -> None:
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
        self.encoders: dict[int, _GlyphEncoder] = {}
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
        pdf.set_text_color(*_COLORS[Tone.TEXT])
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
        color = _COLORS[line.tone]
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
            encoder = self.encoders[font.i] = _GlyphEncoder(font)
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


class _GlyphEncoder(dict[int, str]):
    """str.translate table: code point -> the character of its glyph in the font subset."""

    def __init__(self, font: object) -> None:
        super().__init__()
        self.font = font

    def __missing__(self, codepoint: int) -> str:
        mapped = self.font.subset.pick(codepoint)  # type: ignore[attr-defined]
        value = chr(mapped) if mapped is not None else ""
        self[codepoint] = value
        return value


def prepare_image(attachment: Attachment) -> tuple[io.BytesIO, int, int]:
    """Decode (JPEG: at a reduced scale), apply the EXIF orientation, downscale, re-encode."""
    assert attachment.path is not None
    with Image.open(attachment.path) as image:
        if image.format == "JPEG":
            ratio = IMAGE_MAX_PIXELS / max(image.size)
            if ratio < 1:  # let libjpeg decode at 1/2, 1/4 or 1/8 of the size directly
                image.draft(
                    "RGB", (max(1, int(image.width * ratio)), max(1, int(image.height * ratio)))
                )
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        image.thumbnail(
            (IMAGE_MAX_PIXELS, IMAGE_MAX_PIXELS), Image.Resampling.BILINEAR, reducing_gap=2.0
        )
        has_alpha = image.mode in ("RGBA", "LA") or (
            image.mode == "P" and "transparency" in image.info
        )
        prepared: Image.Image = image
        if has_alpha:
            rgba = image.convert("RGBA")
            prepared = Image.new("RGB", rgba.size, (255, 255, 255))
            prepared.paste(rgba, mask=rgba.getchannel("A"))
        elif image.mode != "RGB":
            prepared = image.convert("RGB")
        out = io.BytesIO()
        prepared.save(out, format="JPEG", quality=80)
        out.seek(0)
        return out, prepared.width, prepared.height
