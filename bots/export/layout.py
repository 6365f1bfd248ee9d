"""Entries -> positioned lines (pure).

The PDF only draws what this module computes: each entry becomes a `Block` of
`Line`s (runs of text with their x offset already known), image slots and
spacers.  Lines are broken by `lines.LineBreaker`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bots.export.formatting import Paragraph, html_paragraphs, plain_paragraphs
from bots.export.lines import EMOJI_STYLE, PT, FontMetrics, Line, LineBreaker, Run, Tone

__all__ = [
    "EMOJI_STYLE",
    "PT",
    "Block",
    "FontMetrics",
    "ImageSlot",
    "LayoutStyle",
    "Line",
    "Run",
    "Spacer",
    "Tone",
    "TranscriptLayout",
]
from bots.export.transcript import Attachment, ContentDigest, Entry, EntryKind
from deployment.conventions import FRENCH_MONTHS, FRENCH_WEEKDAYS, PARIS

MAX_QUOTE_CHARS = 280


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
        self.lines = LineBreaker(metrics, self.style.width, self.style.line_factor)
        self._day: str | None = None
        self._embedded_bytes = 0

    # measuring (delegated) -------------------------------------------------
    def text_width(self, text: str, style: str, size: float) -> float:
        return self.lines.text_width(text, style, size)

    def clean(self, text: str) -> str:
        return self.lines.clean(text)

    def wrap(
        self, runs: list[tuple[str, str]], tone: Tone, size: float, indent: float
    ) -> list[Line]:
        return self.lines.wrap(runs, tone, size, indent)

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
            items.extend(self.wrap([(text, "I")], Tone.EVENT, st.small_size, st.indent))
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
                self.wrap(
                    [(f"En réponse à {entry.quote.sender_name} : ", "B"), (quoted, "I")],
                    Tone.QUOTE,
                    st.small_size,
                    body_indent + 2,
                )
            )

        shown = entry.body
        if entry.kind is EntryKind.REDACTED:
            shown = "message supprimé"
            items.extend(self.wrap([(shown, "I")], Tone.MUTED, size, body_indent))
        elif entry.kind is EntryKind.UNDECRYPTABLE:
            shown = "message non déchiffrable"
            items.extend(self.wrap([(shown, "I")], Tone.ALERT, size, body_indent))
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
            items.extend(self.wrap([(seen, "I")], Tone.MUTED, st.small_size, body_indent))
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
            lines = self.wrap(runs, line_tone, size, level_indent + bullet_width)
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
        return self.wrap(runs, line_tone, size, level_indent)

    def _header(self, runs: list[tuple[str, str]], size: float, tone: Tone) -> list[Line]:
        return self.wrap(runs, tone, size, 0.0)

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
                self.wrap(
                    [(f"Image : {attachment.name} — {size_text}", "I")],
                    Tone.MUTED,
                    st.small_size,
                    indent,
                )
            )
            return items, False
        kind = "Image" if attachment.is_image else "Pièce jointe"
        runs = [(f"{kind} : ", "B"), (attachment.name, ""), (f" — {size_text}", "")]
        items.extend(self.wrap(runs, Tone.TEXT, st.small_size, indent))
        if attachment.sha256:
            items.extend(
                self.wrap(
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
            items.extend(self.wrap([(note, "I")], Tone.MUTED, st.small_size, indent))
        return items, embed

    def _fits_budget(self, attachment: Attachment) -> bool:
        size = attachment.size or 0
        if self._embedded_bytes + size > self.style.embed_budget_bytes:
            return False
        self._embedded_bytes += size
        return True


def french_day(local: datetime) -> str:
    return f"{FRENCH_WEEKDAYS[local.weekday()].capitalize()} {local.day} {FRENCH_MONTHS[local.month - 1]} {local.year}"


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} o"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} Ko".replace(".", ",")
    return f"{size / (1024 * 1024):.1f} Mo".replace(".", ",")
