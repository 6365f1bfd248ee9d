"""Entries -> positioned lines (pure).

The PDF only draws what this module computes: each entry becomes a `Block` of
`Line`s (runs of text with their x offset already known), image slots and
spacers.  Wrapping is done here with cached word widths: fpdf2's `multi_cell`
re-measures every prefix of a paragraph and is far too slow for big rooms.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

from fpdf.bidi import BidiParagraph

from bots.export.formatting import Paragraph, html_paragraphs, plain_paragraphs
from bots.export.transcript import Attachment, ContentDigest, Entry, EntryKind

PARIS = ZoneInfo("Europe/Paris")
PT = 25.4 / 72  # one point in mm
_UNIT = 0.001 * PT  # a glyph advance (1/1000 em) at 1 pt, in mm
EMOJI = "[emoji]"
MISSING = "\u25a1"  # □
MAX_QUOTE_CHARS = 280

_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
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


@dataclass(frozen=True, slots=True)
class ImageSlot:
    attachment: Attachment
    indent: float
    max_width: float
    max_height: float


@dataclass(frozen=True, slots=True)
class Spacer:
    height: float


Item = Line | ImageSlot | Spacer


@dataclass(frozen=True, slots=True)
class Block:
    entry: Entry
    items: tuple[Item, ...]
    keep_together: int  # the first N items go on the same page
    embedded_file: Attachment | None  # to embed in the PDF


@dataclass(frozen=True)
class LayoutStyle:
    width: float = 180.0  # mm of text width (A4 minus margins)
    body_size: float = 9.5
    small_size: float = 8.0
    indent: float = 4.0
    level_indent: float = 5.0
    line_factor: float = 1.3
    image_max_height: float = 90.0
    image_max_width: float = 120.0
    embed_budget_bytes: int = 80 * 1024 * 1024  # files embedded in one PDF, in total


class TranscriptLayout:
    """Lays entries out one by one; keeps the word-width cache and the digest."""

    def __init__(
        self,
        metrics: FontMetrics,
        style: LayoutStyle | None = None,
        tz: ZoneInfo = PARIS,
        *,
        with_attachments: bool = True,
    ) -> None:
        self.metrics = metrics
        self.style = style or LayoutStyle()
        self.tz = tz
        self.with_attachments = with_attachments
        self.digest = ContentDigest()
        self._widths = {s: metrics.widths(s) for s in ("", "B", "I", "BI")}
        # advance of each code point of the BMP, per style: summed at C speed (`_chars_width`)
        self._bmp: dict[str, list[float]] = {}
        self._word_cache: dict[tuple[str, str], float] = {}
        self._clean_cache: dict[str, str] = {}
        self._uncovered = _uncovered_pattern(metrics)
        self._day: str | None = None
        self._embedded_bytes = 0

    # measuring ------------------------------------------------------------
    def text_width(self, text: str, style: str, size: float) -> float:
        """Width in mm; words are cached (per style, at 1 pt)."""
        cache = self._word_cache
        key = (text, style)
        width = cache.get(key)
        if width is None:
            width = self._chars_width(text, style)
            if len(cache) < 200_000:
                cache[key] = width
        return width * size

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
        """Replace what the font cannot draw: emoji by « [emoji] », the rest by □."""
        if text.isascii() or not self._uncovered.search(text):
            return text
        cached = self._clean_cache.get(text)
        if cached is not None:
            return cached
        covers = self.metrics.covers
        out: list[str] = []
        joined = False  # inside an emoji sequence: ZWJ, variation selectors, skin tones
        for char in text:
            code = ord(char)
            if out and out[-1] == EMOJI and (joined or code in _INVISIBLE):
                joined = code == 0x200D
                continue
            joined = False
            if code < 0x250 or covers(code):
                out.append(char)
            elif code in _INVISIBLE:
                continue
            elif code >= 0x1F000 or unicodedata.category(char) == "So":
                if not (out and out[-1] == EMOJI):
                    out.append(EMOJI)
            else:
                out.append(MISSING)
        result = "".join(out)
        if len(text) < 64 and len(self._clean_cache) < 50_000:
            self._clean_cache[text] = result
        return result

    # entries ----------------------------------------------------------------
    def layout_all(self, entries: Iterable[Entry]) -> Iterator[Block]:
        for entry in entries:
            yield self.layout(entry)

    def layout(self, entry: Entry) -> Block:
        st = self.style
        items: list[Item] = []
        local = entry.timestamp.astimezone(self.tz)
        day = french_day(local)
        clock = f"{local.hour:02d}:{local.minute:02d}"
        date = f"{local.day:02d}/{local.month:02d}/{local.year}"
        if day != self._day:
            self._day = day
            width = self.text_width(day, "B", st.body_size)
            items.append(Spacer(1.5))
            items.append(
                Line(
                    (Run(day, "B", 0.0),),
                    Tone.DAY,
                    st.body_size,
                    st.body_size * PT * 1.8,
                    centered_width=width,
                )
            )
        keep = len(items) + 2
        if entry.kind is EntryKind.EVENT:
            text = (
                f"{clock} — {entry.sender_name} : {entry.body}"
                if entry.sender_name
                else (f"{clock} — {entry.body}")
            )
            items.extend(self._wrap([(text, "I")], Tone.EVENT, st.small_size, st.indent))
            items.append(Spacer(1.0))
            self.digest.add(entry, entry.body)
            return Block(entry, tuple(items), len(items), None)

        notice = entry.kind is EntryKind.NOTICE
        size = st.small_size if notice else st.body_size
        tone = Tone.NOTICE if notice else Tone.TEXT
        header = [(entry.sender_name, "B"), (f"  {date} {clock}", "")]
        if entry.edited:
            header.append(("  (modifié)", "I"))
        items.extend(self._header(header, size, Tone.NOTICE if notice else Tone.TEXT))
        body_indent = st.indent
        if entry.quote is not None:
            quoted = " ".join(entry.quote.text.split())
            if len(quoted) > MAX_QUOTE_CHARS:
                quoted = quoted[:MAX_QUOTE_CHARS] + "…"
            items.extend(
                self._wrap(
                    [(f"En réponse à {entry.quote.sender_name} : ", "B"), (quoted, "I")],
                    Tone.QUOTE,
                    st.small_size,
                    body_indent + 2,
                )
            )

        shown = entry.body
        if entry.kind is EntryKind.REDACTED:
            shown = "message supprimé"
            items.extend(self._wrap([(shown, "I")], Tone.MUTED, size, body_indent))
        elif entry.kind is EntryKind.UNDECRYPTABLE:
            shown = "message non déchiffrable"
            items.extend(self._wrap([(shown, "I")], Tone.ALERT, size, body_indent))
        else:
            paragraphs = self._paragraphs(entry)
            shown = "\n".join(p.text for p in paragraphs)
            prefix = ("* " + entry.sender_name + " ") if entry.kind is EntryKind.EMOTE else ""
            for index, paragraph in enumerate(paragraphs):
                runs = paragraph.runs
                if prefix and index == 0:
                    runs = [(prefix, "I"), *runs]
                items.extend(self._paragraph(paragraph, runs, tone, size, body_indent))
        embedded = None
        if entry.attachment is not None:
            attachment_items, embed = self._attachment(entry.attachment, body_indent)
            items.extend(attachment_items)
            embedded = entry.attachment if embed else None
        if entry.seen_by:
            seen = "Vu par " + ", ".join(entry.seen_by)
            items.extend(self._wrap([(seen, "I")], Tone.MUTED, st.small_size, body_indent))
        items.append(Spacer(2.0))
        self.digest.add(entry, shown)
        return Block(entry, tuple(items), min(keep, len(items)), embedded)

    def _paragraphs(self, entry: Entry) -> list[Paragraph]:
        if entry.formatted_body:
            paragraphs = html_paragraphs(entry.formatted_body)
            if paragraphs:
                return paragraphs
        if entry.attachment is not None and entry.body == entry.attachment.name:
            return []  # a file's body is its name: shown with the attachment
        return plain_paragraphs(entry.body, is_reply=entry.quote is not None)

    def _paragraph(
        self,
        paragraph: Paragraph,
        runs: list[tuple[str, str]],
        tone: Tone,
        size: float,
        indent: float,
    ) -> list[Line]:
        st = self.style
        level_indent = indent + paragraph.level * st.level_indent
        line_tone = Tone.QUOTE if paragraph.quote else tone
        if paragraph.bullet:
            bullet_width = self.text_width(paragraph.bullet, "", size)
            lines = self._wrap(runs, line_tone, size, level_indent + bullet_width)
            if not lines:
                lines = [Line((), line_tone, size, size * PT * st.line_factor)]
            first = lines[0]
            lines[0] = Line(
                (Run(paragraph.bullet, "", level_indent), *first.runs),
                first.tone,
                first.size,
                first.height,
            )
            return lines
        if not runs:
            return [Line((), line_tone, size, size * PT * st.line_factor)]
        return self._wrap(runs, line_tone, size, level_indent)

    def _header(self, runs: list[tuple[str, str]], size: float, tone: Tone) -> list[Line]:
        return self._wrap(runs, tone, size, 0.0)

    def _attachment(self, attachment: Attachment, indent: float) -> tuple[list[Item], bool]:
        """The attachment's lines, and whether the file is embedded in the PDF."""
        st = self.style
        items: list[Item] = []
        size_text = (
            human_size(attachment.size) if attachment.size is not None else "taille inconnue"
        )
        if attachment.is_image and attachment.path is not None and attachment.unavailable is None:
            items.append(Spacer(1.0))
            items.append(
                ImageSlot(
                    attachment,
                    indent,
                    min(st.image_max_width, st.width - indent),
                    st.image_max_height,
                )
            )
            items.extend(
                self._wrap(
                    [(f"Image : {attachment.name} — {size_text}", "I")],
                    Tone.MUTED,
                    st.small_size,
                    indent,
                )
            )
            return items, False
        kind = "Image" if attachment.is_image else "Pièce jointe"
        runs = [(f"{kind} : ", "B"), (attachment.name, ""), (f" — {size_text}", "")]
        items.extend(self._wrap(runs, Tone.TEXT, st.small_size, indent))
        if attachment.sha256:
            items.extend(
                self._wrap(
                    [(f"SHA-256 : {attachment.sha256}", "")], Tone.MUTED, st.small_size, indent
                )
            )
        embed = False
        if attachment.unavailable:
            note = attachment.unavailable
        elif not self.with_attachments:
            note = "non jointe (export sans pièces jointes)"
        elif attachment.path is not None and not attachment.is_image:
            embed = self._fits_budget(attachment)
            if embed:
                note = "jointe à ce PDF (pièces jointes du document)"
            else:
                note = "non jointe (taille totale des pièces jointes dépassée)"
        else:
            note = ""
        if note:
            items.extend(self._wrap([(note, "I")], Tone.MUTED, st.small_size, indent))
        return items, embed

    def _fits_budget(self, attachment: Attachment) -> bool:
        size = attachment.size or 0
        if self._embedded_bytes + size > self.style.embed_budget_bytes:
            return False
        self._embedded_bytes += size
        return True

    # wrapping ---------------------------------------------------------------
    def _wrap(
        self, runs: list[tuple[str, str]], tone: Tone, size: float, indent: float
    ) -> list[Line]:
        """Greedy line breaking over styled runs; words longer than a line are cut."""
        max_x = self.style.width
        height = size * PT * self.style.line_factor
        cleaned = [(self.clean(raw), style) for raw, style in runs]
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
        cache = self._word_cache
        widths = []
        for word in words:
            width = cache.get((word, style))
            if width is None:
                width = self._chars_width(word, style)
                if len(cache) < 200_000:
                    cache[(word, style)] = width
            widths.append(width)
        room = (self.style.width - indent) / size  # in mm at 1 pt
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
        max_x = self.style.width
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


def _uncovered_pattern(metrics: FontMetrics) -> re.Pattern[str]:
    """A regex matching any character the font lacks (one C-level scan per text)."""
    codes = sorted({*range(0x20, 0x250), *(c for c in metrics.covered() if c >= 0x20)})
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    parts = "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )
    return re.compile(f"[^{parts}\\n]")


def french_day(local: datetime) -> str:
    return (
        f"{_DAYS[local.weekday()].capitalize()} {local.day} {_MONTHS[local.month - 1]} {local.year}"
    )


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} o"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} Ko".replace(".", ",")
    return f"{size / (1024 * 1024):.1f} Mo".replace(".", ",")
