"""Line breaking with cached word widths (pure).

fpdf2's `multi_cell` re-measures every prefix of a paragraph and is far too slow for big
rooms; here words are measured once (per style, at 1 pt) and summed at C speed, the
common cases (one line; one style) take a short path, and only the rest goes through the
general greedy loop (several styles, right-to-left text, words longer than a line).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import arabic_reshaper
from fpdf.bidi import BidiParagraph

PT = 25.4 / 72  # one point in mm
_UNIT = 0.001 * PT  # a glyph advance (1/1000 em) at 1 pt, in mm
EMOJI = "[emoji]"  # an emoji neither typeface draws
EMOJI_STYLE = "E"  # runs drawn with the monochrome emoji typeface
_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f]")
MISSING = "\u25a1"  # □
_TOKENS = re.compile(r"\S+|\s+")
_SPACES = re.compile(r"\s+")
_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")
_INVISIBLE = {0x200D, 0xFE0E, 0xFE0F, 0x20E3} | set(range(0x1F3FB, 0x1F400))


class Tone(StrEnum):
    TEXT = "text"
    MUTED = "muted"  # dates, « modifié », « Vu par »
    NOTICE = "notice"  # the bot's notices: lighter
    QUOTE = "quote"
    EVENT = "event"  # flags, membership
    ALERT = "alert"  # « message non déchiffrable »
    DAY = "day"  # day separator


class FontMetrics(Protocol):
    """Glyph advance widths in 1/1000 em per style ("", "B", "I", "BI") and coverage."""

    def widths(self, style: str) -> Mapping[int, float]: ...

    def covers(self, codepoint: int) -> bool: ...

    def emoji_covers(self, codepoint: int) -> bool:
        """Whether the emoji typeface (style ``EMOJI_STYLE``) draws this code point."""
        ...

    def emoji_covered(self) -> Iterable[int]:
        """Every code point the emoji typeface draws (none when it is not installed)."""
        ...

    def covered(self) -> Iterable[int]:
        """Every code point the regular style can draw."""
        ...


@dataclass(frozen=True, slots=True)
class Run:
    text: str
    style: str
    x: float  # mm from the line's left edge (indent included)


@dataclass(frozen=True, slots=True)
class Line:
    runs: tuple[Run, ...]
    tone: Tone
    size: float  # points
    height: float  # mm
    centered_width: float | None = None  # text width when the line is centred


class LineBreaker:
    """Measures and wraps styled runs into `Line`s of at most `width` mm."""

    def __init__(self, metrics: FontMetrics, width: float, line_factor: float) -> None:
        self.metrics = metrics
        self.width = width
        self.line_factor = line_factor
        self._widths = {s: metrics.widths(s) for s in ("", "B", "I", "BI", EMOJI_STYLE)}
        # advance of each code point of the BMP, per style: summed at C speed (`_chars_width`)
        self._bmp: dict[str, list[float]] = {}
        self._word_cache: dict[tuple[str, str], float] = {}
        self._clean_cache: dict[str, str] = {}
        self._uncovered = _uncovered_pattern(metrics)
        self._emoji_only = _emoji_only_pattern(metrics)

    # measuring ------------------------------------------------------------
    def text_width(self, text: str, style: str, size: float) -> float:
        """Width in mm; words are cached (per style, at 1 pt)."""
        return self._word_width(text, style) * size

    def _word_width(self, text: str, style: str) -> float:
        """Width in mm at 1 pt, cached (at most 200,000 words)."""
        cache = self._word_cache
        key = (text, style)
        width = cache.get(key)
        if width is None:
            width = self._chars_width(text, style)
            if len(cache) < 200_000:
                cache[key] = width
        return width

    def _chars_width(self, text: str, style: str) -> float:
        """Width in mm at 1 pt, without the cache."""
        bmp = self._bmp.get(style)
        if bmp is None:
            bmp = self._bmp[style] = list(map(self._widths[style].__getitem__, range(0x10000)))
        try:
            return sum(map(bmp.__getitem__, map(ord, text))) * _UNIT
        except IndexError:  # beyond the BMP
            table = self._widths[style]
            return sum(table[ord(c)] for c in text) * 0.001 * PT

    def clean(self, text: str) -> str:
        """Arabic letters joined (presentation forms, which the font has); what neither
        typeface can draw replaced: an emoji by « [emoji] » (per glyph: the emoji typeface
        draws the others), the rest by □."""
        if text.isascii():
            return text
        cached = self._clean_cache.get(text)
        if cached is not None:
            return cached
        original = text
        if _ARABIC.search(text):
            text = arabic_reshaper.reshape(text)
        if not self._uncovered.search(text):
            if len(original) < 64 and len(self._clean_cache) < 50_000:
                self._clean_cache[original] = text
            return text
        covers = self.metrics.covers
        emoji_covers = self.metrics.emoji_covers
        out: list[str] = []
        joined = False  # inside an emoji sequence: ZWJ, variation selectors, skin tones
        for char in text:
            code = ord(char)
            if out and out[-1] == EMOJI and (joined or code in _INVISIBLE):
                joined = code == 0x200D
                continue
            joined = False
            if code in _INVISIBLE:  # joiners and selectors: the glyphs are drawn one by one
                continue
            if code < 0x250 or covers(code):
                out.append(char)
            elif code >= 0x1F000 or unicodedata.category(char) == "So":
                if emoji_covers(code):
                    out.append(char)
                elif not (out and out[-1] == EMOJI):
                    out.append(EMOJI)
            else:
                out.append(MISSING)
        result = "".join(out)
        if len(original) < 64 and len(self._clean_cache) < 50_000:
            self._clean_cache[original] = result
        return result

    def _emoji_runs(self, runs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Runs split where the emoji typeface takes over from the text's."""
        out: list[tuple[str, str]] = []
        for text, style in runs:
            # what only the emoji typeface draws is, first of all, what the text's lacks: that
            # class scans at C speed, the emoji one (thousands of scattered code points) is
            # ~20 µs a text, a third of the rendering time of plain French messages
            if (
                text.isascii()
                or self._emoji_only is None
                or not self._uncovered.search(text)
                or not self._emoji_only.search(text)
            ):
                out.append((text, style))
                continue
            start = 0
            for found in self._emoji_only.finditer(text):
                if found.start() > start:
                    out.append((text[start : found.start()], style))
                out.append((found.group(), EMOJI_STYLE))
                start = found.end()
            if start < len(text):
                out.append((text[start:], style))
        return out

    # wrapping ---------------------------------------------------------------
    def wrap(
        self, runs: list[tuple[str, str]], tone: Tone, size: float, indent: float
    ) -> list[Line]:
        """Greedy line breaking over styled runs; words longer than a line are cut."""
        max_x = self.width
        height = size * PT * self.line_factor
        cleaned = self._emoji_runs([(self.clean(raw), style) for raw, style in runs])
        one_line = self._one_line(cleaned, tone, size, indent, height)
        if one_line is not None:
            return one_line
        if len(cleaned) == 1:
            single = self._wrap_single(cleaned[0][0], cleaned[0][1], tone, size, indent, height)
            if single is not None:
                return single
        lines: list[Line] = []
        current: list[Run] = []
        seg_text: list[str] = []
        seg_style = ""
        seg_x = indent
        x = indent
        measure = self.text_width
        has_rtl = False

        def flush_segment() -> None:
            nonlocal seg_text
            if seg_text:
                text = "".join(seg_text)
                if has_rtl and _RTL.search(text):
                    text = BidiParagraph(text).get_reordered_string()
                current.append(Run(text, seg_style, seg_x))
                seg_text = []

        def new_line() -> None:
            nonlocal current, x, seg_x
            flush_segment()
            if current:
                last = current[-1]
                if last.text.endswith(" "):
                    current[-1] = Run(last.text.rstrip(" "), last.style, last.x)
            lines.append(Line(tuple(current), tone, size, height))
            current = []
            x = indent
            seg_x = indent

        for text, style in cleaned:
            if not has_rtl and not text.isascii() and _RTL.search(text):
                has_rtl = True
            if style != seg_style:
                flush_segment()
                seg_style = style
                seg_x = x
            for token in _TOKENS.findall(text):
                if token[0].isspace():
                    if x == indent:
                        continue  # no leading spaces on a line
                    width = measure(" ", style, size)
                    if x + width <= max_x:
                        if not seg_text:
                            seg_x = x
                        seg_text.append(" ")
                        x += width
                    continue
                width = measure(token, style, size)
                if x + width > max_x and x > indent:
                    new_line()
                    seg_style = style
                if width <= max_x - indent:
                    if not seg_text:
                        seg_x = x
                    seg_text.append(token)
                    x += width
                    continue
                for piece in self._cut(token, style, size, max_x - x, max_x - indent):
                    piece_width = measure(piece, style, size)
                    if x + piece_width > max_x + 0.01 and x > indent:
                        new_line()
                        seg_style = style
                    if not seg_text:
                        seg_x = x
                    seg_text.append(piece)
                    x += piece_width
        flush_segment()
        if current:
            new_line()
        return lines

    def _wrap_single(
        self, text: str, style: str, tone: Tone, size: float, indent: float, height: float
    ) -> list[Line] | None:
        """One style, no right-to-left text, no word longer than a line: a tight greedy loop."""
        if not text.isascii() and _RTL.search(text):
            return None
        words = text.split()
        word_width = self._word_width
        widths = [word_width(word, style) for word in words]
        room = (self.width - indent) / size  # in mm at 1 pt
        if any(width > room for width in widths):
            return None
        space = self._chars_width(" ", style)
        lines: list[Line] = []
        start = 0
        x = -space
        for index, width in enumerate(widths):
            if x + space + width > room and index > start:
                lines.append(
                    Line((Run(" ".join(words[start:index]), style, indent),), tone, size, height)
                )
                start = index
                x = width
            else:
                x += space + width
        if start < len(words):
            lines.append(Line((Run(" ".join(words[start:]), style, indent),), tone, size, height))
        return lines

    def _one_line(
        self, cleaned: list[tuple[str, str]], tone: Tone, size: float, indent: float, height: float
    ) -> list[Line] | None:
        """The common case, at C speed: the runs fit on one line (None when they do not)."""
        max_x = self.width
        x = indent
        out: list[Run] = []
        for text, style in cleaned:
            if not text.isascii() and _RTL.search(text):
                return None
            if "  " in text or "\n" in text or "\t" in text:
                text = _SPACES.sub(" ", text)
            if not out:
                text = text.lstrip(" ")
            if not text:
                continue
            width = self._chars_width(text, style) * size
            if x + width > max_x:
                last_width = self._chars_width(text.rstrip(" "), style) * size
                if x + last_width > max_x:
                    return None
            out.append(Run(text, style, x))
            x += width
        if not out:
            return []
        last = out[-1]
        if last.text.endswith(" "):
            out[-1] = Run(last.text.rstrip(" "), last.style, last.x)
            if not out[-1].text:
                out.pop()
        return [Line(tuple(out), tone, size, height)]

    def _cut(self, word: str, style: str, size: float, first: float, full: float) -> Iterator[str]:
        """Cut a too-long word into pieces fitting `first` then `full` mm."""
        table = self._widths[style]
        scale = 0.001 * PT * size
        room = first if first > full * 0.3 else full
        start = 0
        width = 0.0
        for index, char in enumerate(word):
            w = table[ord(char)] * scale
            if width + w > room and index > start:
                yield word[start:index]
                start = index
                width = 0.0
                room = full
            width += w
        if start < len(word):
            yield word[start:]


def _emoji_only_pattern(metrics: FontMetrics) -> re.Pattern[str] | None:
    """A regex matching runs of what only the emoji typeface draws (None without it)."""
    codes = sorted(c for c in metrics.emoji_covered() if c >= 0x2000 and not metrics.covers(c))
    if not codes:
        return None
    return re.compile(f"[{_class_of(codes)}]+")


def _class_of(codes: list[int]) -> str:
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )


def _uncovered_pattern(metrics: FontMetrics) -> re.Pattern[str]:
    """A regex matching any character the font lacks (one C-level scan per text)."""
    codes = sorted({*range(0x20, 0x250), *(c for c in metrics.covered() if c >= 0x20)})
    return re.compile(f"[^{_class_of(codes)}\\n]")
