"""The transcript's typefaces: DejaVu (shipped in ``fonts/``) and a monochrome emoji font,
read once per transcript and shared by its parts, their metrics for the layout, and the
glyph encoding of text drawn with a subset font."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

from bots.export.layout import EMOJI_STYLE

log = logging.getLogger(__name__)

FONTS_DIR = Path(__file__).parent / "fonts"
FAMILY = "dejavu"
# Emoji: a monochrome typeface from the distribution (Debian « fonts-symbola », installed by
# the Makefile; free for any use): colour emoji fonts (bitmaps) cannot go into a PDF font.
# Without it, emoji print as « [emoji] » (and a warning says so once per export).
EMOJI_FAMILY = "cercle-emoji"
EMOJI_FONT_FILES = (Path("/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf"),)


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
                log.warning(
                    "police d'emoji absente (%s) : emoji imprimés « [emoji] »", EMOJI_FONT_FILES[0]
                )
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


class GlyphEncoder(dict[int, str]):
    """str.translate table: code point -> the character of its glyph in the font subset."""

    def __init__(self, font: object) -> None:
        super().__init__()
        self.font = font

    def __missing__(self, codepoint: int) -> str:
        mapped = self.font.subset.pick(codepoint)  # type: ignore[attr-defined]
        value = chr(mapped) if mapped is not None else ""
        self[codepoint] = value
        return value
