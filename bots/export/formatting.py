"""Message bodies -> styled paragraphs (pure).

A small, safe reading of Matrix's `formatted_body` (org.matrix.custom.html): bold,
italics, lists, line breaks, quotes, code blocks; every other tag keeps only its
text, `<mx-reply>` (the reply fallback), `<script>` and `<style>` are dropped.  A
plain `body` is split on line breaks.  Nothing is executed or fetched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

MAX_BLANK_LINES = 3  # runs of empty lines are kept up to this many
BOLD, ITALIC = "B", "I"


@dataclass
class Paragraph:
    runs: list[tuple[str, str]] = field(default_factory=list)  # (text, "", "B", "I", "BI")
    level: int = 0  # list / quote nesting: indentation steps
    bullet: str = ""  # "• " or "3. " on the first line
    quote: bool = False

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.runs)


def plain_paragraphs(body: str, *, is_reply: bool = False) -> list[Paragraph]:
    if is_reply:
        body = strip_reply_fallback(body)
    body = _clean(body)
    paragraphs: list[Paragraph] = []
    blanks = 0
    for line in body.split("\n"):
        if not line.strip():
            blanks += 1
            if blanks > MAX_BLANK_LINES:
                continue
        else:
            blanks = 0
        paragraphs.append(Paragraph(runs=[(line, "")] if line else []))
    while paragraphs and not paragraphs[-1].runs:
        paragraphs.pop()
    return paragraphs


def strip_reply_fallback(body: str) -> str:
    """Drop the « > <@user> quoted text » lines a reply's plain body starts with."""
    lines = body.split("\n")
    i = 0
    while i < len(lines) and lines[i].startswith(">"):
        i += 1
    if i and i < len(lines) and lines[i] == "":
        i += 1
    return "\n".join(lines[i:]) if i else body


def html_paragraphs(formatted_body: str) -> list[Paragraph]:
    parser = _BodyParser()
    parser.feed(formatted_body)
    parser.close()
    parser.end_paragraph()
    paragraphs: list[Paragraph] = []
    blanks = 0
    for paragraph in parser.paragraphs:
        if not paragraph.text.strip() and not paragraph.bullet:
            blanks += 1
            if blanks > MAX_BLANK_LINES:
                continue
            paragraph.runs = []
        else:
            blanks = 0
        paragraphs.append(paragraph)
    while paragraphs and not paragraphs[0].runs and not paragraphs[0].bullet:
        paragraphs.pop(0)
    while paragraphs and not paragraphs[-1].runs and not paragraphs[-1].bullet:
        paragraphs.pop()
    return paragraphs


def _clean(text: str) -> str:
    """Tabs to spaces, other control characters removed."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char == "\n":
            out.append(char)
        elif char == "\t":
            out.append("    ")
        elif char == "\r":
            continue
        elif char.isprintable() or char in "\u200d\ufe0f":
            out.append(char)
    return "".join(out)


_BLOCKS = {
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "blockquote",
    "pre",
    "tr",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "details",
    "summary",
}
_DROPPED = {"mx-reply", "script", "style", "head", "title"}


class _BodyParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[Paragraph] = []
        self.current = Paragraph()
        self.bold = 0
        self.italic = 0
        self.dropped = 0
        self.pre = 0
        self.quotes = 0
        self.lists: list[list[int]] = []  # [kind (0 ul, 1 ol), counter]
        self.pending_space = False
        self.links: list[tuple[str | None, int]] = []  # (href to print, text length before)

    # paragraphs ---------------------------------------------------------
    def end_paragraph(self, *, keep_empty: bool = False) -> None:
        if self.current.runs or self.current.bullet or keep_empty:
            self.paragraphs.append(self.current)
        self.current = Paragraph(level=len(self.lists) + self.quotes, quote=self.quotes > 0)
        self.pending_space = False

    def style(self) -> str:
        return (BOLD if self.bold else "") + (ITALIC if self.italic else "")

    # HTMLParser callbacks ----------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self.dropped += 1
            return
        if tag in ("b", "strong", "h1", "h2", "h3", "h4", "h5", "h6", "th"):
            self.bold += 1
        elif tag in ("i", "em", "cite"):
            self.italic += 1
        if tag == "br":
            self.end_paragraph(keep_empty=True)
            return
        if tag == "a":
            href = next((v for k, v in attrs if k == "href" and v), None)
            shown = href if href and href.startswith(("http://", "https://")) else None
            if shown and shown.startswith("https://matrix.to/"):
                shown = None  # a mention or a room link: its text says who or where
            self.links.append((shown, len(self.current.text)))
            return
        if tag == "img":  # inline images are not fetched: their text stands in
            alt = next((v for k, v in attrs if k in ("alt", "title") and v), "")
            self.handle_data(f" [image : {alt}] " if alt else " [image] ")
            return
        if tag in _BLOCKS:
            self.end_paragraph()
        if tag == "ul":
            self.lists.append([0, 0])
        elif tag == "ol":
            start = next((v for k, v in attrs if k == "start" and v and v.isdigit()), "1")
            self.lists.append([1, int(start) - 1])
        elif tag == "blockquote":
            self.quotes += 1
        elif tag == "pre":
            self.pre += 1
        elif tag == "li":
            if self.lists:
                kind = self.lists[-1]
                kind[1] += 1
                self.current.bullet = f"{kind[1]}. " if kind[0] else "• "
            else:
                self.current.bullet = "• "
        self.current.level = len(self.lists) + self.quotes
        self.current.quote = self.quotes > 0

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            self.dropped = max(0, self.dropped - 1)
            return
        if tag == "a" and self.links:
            href, before = self.links.pop()
            # a link printed on paper keeps its address (« Ouvrir le dossier (https://…) »)
            if href and href not in self.current.text[before:] and not self.dropped:
                self.current.runs.append((f" ({href})", self.style()))
            return
        if tag in ("b", "strong", "h1", "h2", "h3", "h4", "h5", "h6", "th"):
            self.bold = max(0, self.bold - 1)
        elif tag in ("i", "em", "cite"):
            self.italic = max(0, self.italic - 1)
        if tag in _BLOCKS and tag != "br":
            self.end_paragraph()
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        elif tag == "blockquote":
            self.quotes = max(0, self.quotes - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        self.current.level = len(self.lists) + self.quotes
        self.current.quote = self.quotes > 0

    def handle_data(self, data: str) -> None:
        if self.dropped:
            return
        data = _clean(data)
        if self.pre:
            lines = data.split("\n")
            for index, line in enumerate(lines):
                if index:
                    self.end_paragraph(keep_empty=True)
                if line:
                    self.current.runs.append((line, self.style()))
            return
        text = " ".join(data.split())
        if not text:
            if data and self.current.runs:
                self.pending_space = True
            return
        if (data[0].isspace() or self.pending_space) and self.current.runs:
            text = " " + text
        self.pending_space = data[-1].isspace()
        self.current.runs.append((text, self.style()))
