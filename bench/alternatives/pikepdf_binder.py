"""The export's parts bound with pikepdf (qpdf), to measure against `bots.export.binding`.

Same interface as `PdfBinder` (``bind(path, stamp)`` per part, then ``finish()``), same
result for what the export's tests read back: the pages in order, each with a stamp stream
drawn once the total is known, the embedded files' name tree merged (a name bound twice is
refused), ``/AF`` and the first part's document-wide settings kept, the last part's
information dictionary. qpdf copies each part's objects into one document held in memory
and reads the streams' data from the parts when saving, so every part stays open (and on
disk) until `finish`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, BinaryIO

import pikepdf

from bots.export.binding import PageStamp, PdfBindingError

_FIRST_WINS = (
    "/Lang",
    "/OpenAction",
    "/PageLayout",
    "/PageMode",
    "/ViewerPreferences",
    "/MarkInfo",
    "/Metadata",
)
_REBUILT = {"/Type", "/Pages", "/Names", "/AF", "/Version"}
_SUBSET_TAG = re.compile(r"/[A-Z]{6}\+")


class PikepdfBinder:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.pdf = pikepdf.new()
        self.sources: list[pikepdf.Pdf] = []
        self.stamps: list[tuple[int, int, PageStamp]] = []
        self.names: dict[bytes, tuple[Any, Any]] = {}
        self.associated: list[Any] = []

    def bind(self, path: Path, stamp: PageStamp) -> int:
        part = pikepdf.open(path)
        root = part.Root
        for key in root:
            if key not in _REBUILT and key not in _FIRST_WINS:
                part.close()
                raise PdfBindingError(f"cannot merge the catalog's {key}")
        self.sources.append(part)
        for key in _FIRST_WINS:
            if key in root and key not in self.pdf.Root:
                self.pdf.Root[key] = self._copy(root[key])
        names = root.get("/Names")
        if names is not None and "/EmbeddedFiles" in names:
            flat = names.EmbeddedFiles.Names
            for index in range(0, len(flat) - 1, 2):
                key = bytes(flat[index])
                if key in self.names:
                    raise PdfBindingError(f"the name {key!r} is bound twice")
                self.names[key] = (flat[index], self._copy(flat[index + 1]))
        for item in root.get("/AF", []):
            self.associated.append(self._copy(item))
        if part.trailer.get("/Info") is not None:
            self.pdf.trailer.Info = self._copy(part.trailer.Info)
        _retag_subsets(part, _subset_tag(len(self.sources) - 1))
        first = len(self.pdf.pages)
        self.pdf.pages.extend(part.pages)
        self.stamps.append((first, len(part.pages), stamp))
        return len(part.pages)

    def _copy(self, value: Any) -> Any:
        """A value of a part, for this document (qpdf copies indirect objects only)."""
        if isinstance(value, pikepdf.Object) and value.is_indirect:
            return self.pdf.copy_foreign(value)
        if isinstance(value, pikepdf.Dictionary):
            return pikepdf.Dictionary({key: self._copy(item) for key, item in value.items()})
        if isinstance(value, pikepdf.Array):
            return pikepdf.Array([self._copy(item) for item in value])
        return value

    def finish(self) -> int:
        if not self.sources:
            raise PdfBindingError("no part was bound")
        total = len(self.pdf.pages)
        for first, count, stamp in self.stamps:
            for index in range(first, first + count):
                operators = b"\n" + stamp(index + 1, total)
                self.pdf.pages[index].contents_add(pikepdf.Stream(self.pdf, operators))
        if self.names:
            flat = pikepdf.Array()
            for key in sorted(self.names):
                name, spec = self.names[key]
                flat.append(pikepdf.String(bytes(name)))
                flat.append(spec)
            self.pdf.Root.Names = pikepdf.Dictionary(EmbeddedFiles=pikepdf.Dictionary(Names=flat))
        if self.associated:
            self.pdf.Root.AF = pikepdf.Array(self.associated)
        self.pdf.save(self.out)
        for source in self.sources:
            source.close()
        return total


def _retag_subsets(part: pikepdf.Pdf, tag: str) -> None:
    """Font subsets renamed ``TAG+Name`` with a tag of this part's (each part has its own
    subsets of the same fonts: no two may share a name)."""
    seen: set[tuple[int, int]] = set()

    def retag(holder: Any, key: str) -> None:
        name = holder.get(key)
        if name is not None and _SUBSET_TAG.match(str(name)):
            holder[key] = pikepdf.Name("/" + tag + "+" + str(name)[8:])

    for page in part.pages:
        fonts = page.obj.get("/Resources", {}).get("/Font", {})
        for font in fonts.values():
            if font.is_indirect and font.objgen in seen:
                continue
            seen.add(font.objgen)
            for each in [font, *font.get("/DescendantFonts", [])]:
                retag(each, "/BaseFont")
                if "/FontDescriptor" in each:
                    retag(each.FontDescriptor, "/FontName")


def _subset_tag(index: int) -> str:
    letters = []
    for _ in range(6):
        index, digit = divmod(index, 26)
        letters.append(chr(65 + digit))
    return "".join(reversed(letters))
