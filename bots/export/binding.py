"""Bind PDF parts into one PDF, one object at a time: memory does not grow with the document.

A long transcript is drawn as a series of parts (fpdf2 documents of a bounded number of
pages, written to temp files); `PdfBinder` appends each part to the final file as soon as it
is written, then the part can be deleted.  What is kept in memory until the end is a few
integers per page and per object (their offsets, the page list) and one entry per embedded
file name — never a page's content.

    binder = PdfBinder(out)                       # out: a binary file open for writing
    binder.bind(part_path, stamp)                 # each part, in page order
    total_pages = binder.finish()                 # page stamps, page tree, catalog, xref

Parts must use classic cross-reference tables (no object or cross-reference streams), as
fpdf2 writes them.  Objects are renumbered; every page of a part gets one more content
stream, drawn by `stamp(page_number, total_pages)` once the total is known (the footer's
« page X / N »), so a stamp may only use resources the page already has.  Font subset tags
are made unique per part (each part has its own subsets of the same fonts).  The catalog's
name trees (embedded files) and associated files (/AF) are merged; a few document-wide
settings (/Lang, /OpenAction, …) are taken from the first part that has them; anything else
in a catalog is refused rather than silently dropped.  The document information dictionary
is the last part's (the renderer writes the digest there once every message is drawn).

Why not pikepdf (qpdf)?  Measured side by side on `bench/export_memory.py --binders
hand,pikepdf --rounds 2` (interleaved; 2 cores shared, load average 6 to 10), a pikepdf
binder with this interface (`bench/alternatives/pikepdf_binder.py`, which passes
test_binding.py and test_pdf_parts.py) holds the whole output document until it is saved:
qpdf copies each part's objects into it and reads their streams back from the parts when
writing.  Peak RSS then grows with the room, and rendering is slower:

    messages (pages)     peak RSS, here / pikepdf      render CPU rate, here / pikepdf
     10,000   (720)      101.4-101.5 / 109.6-109.7 MB  6,201-6,317 / 5,761-6,072 msg/s
     50,000 (3,600)      101.7-101.9 / 151.1-151.2 MB  5,564-6,020 / 4,867-5,108 msg/s
    100,000 (7,200)      107.0       / 211.5-211.7 MB  5,365-6,287 / 4,416-4,756 msg/s

(pikepdf's import alone adds 6 MB.)  End to end on a real Synapse (`bench/export_pdf.py
--messages 3000 --images 20 --binders hand,pikepdf --rounds 2`, load 8.5; 220 pages, one
part) the two are even: peak 133.4 / 139.8-140.2 MB, render CPU 3,686-3,854 / 3,540-4,072
msg/s; what differs is the growth past one part, above.  The memory goal of the export (peak flat within 15 MB
from 10,000 to 100,000 messages) holds here (+5.6 MB) and not with pikepdf (+102 MB), so
this binder stays.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from bots.export.pdf_syntax import (
    IndirectObject,
    Name,
    PdfSyntaxError,
    PdfValue,
    Ref,
    String,
    Token,
    parse_object,
    parse_value,
    renumbered,
    write_value,
)

__all__ = ["PageStamp", "PartBinder", "PdfBinder", "PdfBindingError"]

PageStamp = Callable[[int, int], bytes]
"""(page number in the whole document, total pages) -> content stream operators."""


class PartBinder(Protocol):
    """What binds the renderer's parts into its output (`render_transcript`'s ``binder``,
    made with the output file): `PdfBinder`; other binders are only measured against it
    (bench/alternatives/pikepdf_binder.py)."""

    def bind(self, path: Path, stamp: PageStamp) -> int:
        """Append the part at `path` (its pages, in order); returns its number of pages."""
        ...

    def finish(self) -> int:
        """Stamp every page, write what binds the parts together; the total of pages."""
        ...


_PAGES, _CATALOG, _INFO = 1, 2, 3  # numbers of the objects written by `finish`
_INHERITED = (Name(b"Resources"), Name(b"MediaBox"), Name(b"CropBox"), Name(b"Rotate"))
_FIRST_WINS = {  # document-wide settings: the first part that has one gives it
    Name(b"Lang"),
    Name(b"OpenAction"),
    Name(b"PageLayout"),
    Name(b"PageMode"),
    Name(b"ViewerPreferences"),
    Name(b"MarkInfo"),
    Name(b"Metadata"),
}
_REBUILT = {Name(b"Type"), Name(b"Pages"), Name(b"Names"), Name(b"AF"), Name(b"Version")}
_HEAD_BYTES = 1 << 20  # read at once to parse an object; a stream's data is then copied
_COPY_CHUNK = 1 << 20


class PdfBindingError(ValueError):
    """A part this binder cannot append (not the PDF fpdf2 writes)."""


@dataclass(frozen=True, slots=True)
class _BoundPart:
    stamp: PageStamp
    first_page: int  # number in the whole document
    page_count: int
    first_stamp_object: int


@dataclass(frozen=True, slots=True)
class _NamedEntry:
    key: bytes  # the string's bytes: name trees are sorted on them
    written_key: bytes
    written_value: bytes


class PdfBinder:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.position = 0
        self.offsets: list[int] = [0, 0, 0, 0]  # by object number; 1-3 written by finish
        self.kids: list[int] = []
        self.parts: list[_BoundPart] = []
        self.settings: dict[Name, bytes] = {}
        self.name_trees: dict[Name, list[_NamedEntry]] = {}
        self.associated_files: list[bytes] = []
        self.version = b""  # the highest of the parts'
        self.header_version = b""
        self.info: bytes | None = None
        self.ids = hashlib.md5(usedforsecurity=False)

    # appending a part ------------------------------------------------------------
    def bind(self, path: Path, stamp: PageStamp) -> int:
        """Append the part's pages (in order) and everything they use; returns its pages."""
        with path.open("rb") as part:
            reader = _PartReader(part)
            trailer = reader.trailer()
            root = _ref(trailer.get(Name(b"Root")), "/Root")
            info = trailer.get(Name(b"Info"))
            catalog = _dict(reader.object(root.number).value, "catalog")
            pages_ref = _ref(catalog.get(Name(b"Pages")), "/Pages")
            pages_node = _dict(reader.object(pages_ref.number).value, "page tree")
            kids = [_ref(kid, "/Kids") for kid in _list(pages_node.get(Name(b"Kids")), "/Kids")]
            if _integer(pages_node.get(Name(b"Count"))) != len(kids):
                raise PdfBindingError("nested page trees are not supported")
            skipped = {root.number, pages_ref.number}
            if isinstance(info, Ref):
                skipped.add(info.number)
            refs = {pages_ref.number: _PAGES}
            for number in reader.numbers():
                if number not in skipped:
                    refs[number] = len(self.offsets)
                    self.offsets.append(0)
            first_stamp = len(self.offsets)
            self.offsets.extend([0] * len(kids))
            page_stamps = {kid.number: first_stamp + index for index, kid in enumerate(kids)}
            self._merge_catalog(catalog, refs)  # first: a catalog refused, nothing written
            if isinstance(info, Ref):
                self.info = _written(reader.object(info.number).value, refs)
            for identifier in _list(trailer.get(Name(b"ID"), []), "/ID"):
                self.ids.update(bytes(identifier) if isinstance(identifier, String) else b"")
            version = reader.version()
            if not self.header_version:
                self.header_version = version
                self._write(b"%PDF-" + version + b"\n%\xe9\xeb\xf1\xbf\n")
            self.version = max(self.version, version, key=_version_key)
            tag = _subset_tag(len(self.parts))
            for number in reader.numbers():
                if number in skipped:
                    continue
                if number in page_stamps:
                    page = _dict(reader.object(number).value, "page")
                    self._write_page(refs[number], page, pages_node, refs, page_stamps[number])
                else:
                    self._copy_object(reader, number, refs[number], refs, tag)
        self.parts.append(_BoundPart(stamp, len(self.kids) + 1, len(kids), first_stamp))
        self.kids.extend(refs[kid.number] for kid in kids)
        return len(kids)

    def _write_page(
        self,
        number: int,
        page: dict[Name, PdfValue],
        pages_node: dict[Name, PdfValue],
        refs: dict[int, int],
        stamp_number: int,
    ) -> None:
        if page.get(Name(b"Type")) != Name(b"Page"):
            raise PdfBindingError("nested page trees are not supported")
        for key in _INHERITED:
            if key not in page and key in pages_node:
                page[key] = pages_node[key]
        try:
            bound = renumbered(page, refs)
        except KeyError as missing:
            raise PdfBindingError(f"a page refers to object {missing}, not bound") from None
        assert isinstance(bound, dict)
        contents = bound.get(Name(b"Contents"))
        streams = contents if isinstance(contents, list) else [] if contents is None else [contents]
        bound[Name(b"Contents")] = [*streams, Ref(stamp_number)]
        self._begin(number)
        self._write(write_value(bound))
        self._write(b"\nendobj\n")

    def _copy_object(
        self, reader: _PartReader, number: int, new: int, refs: dict[int, int], tag: bytes
    ) -> None:
        obj = reader.object(number)
        self._begin(new)
        self._write(_written(obj.value, refs, tag))
        if obj.stream_start is not None:
            length = _integer(_dict(obj.value, "stream").get(Name(b"Length")))
            self._write(b"\nstream\n")
            for chunk in reader.stream_data(number, obj, length):
                self._write(chunk)
            self._write(b"\nendstream")
        self._write(b"\nendobj\n")

    def _merge_catalog(self, catalog: dict[Name, PdfValue], refs: dict[int, int]) -> None:
        for key, value in catalog.items():
            if key in _FIRST_WINS:
                self.settings.setdefault(key, _written(value, refs))
            elif key == Name(b"Names"):
                for tree, node in _dict(value, "/Names").items():
                    self._merge_name_tree(tree, _dict(node, "name tree"), refs)
            elif key == Name(b"AF"):
                self.associated_files.extend(_written(item, refs) for item in _list(value, "/AF"))
            elif key == Name(b"Version"):
                self.version = max(self.version, bytes(_name(value)), key=_version_key)
            elif key not in _REBUILT:
                raise PdfBindingError(f"cannot merge the catalog's /{key.decode()}")

    def _merge_name_tree(
        self, tree: Name, node: dict[Name, PdfValue], refs: dict[int, int]
    ) -> None:
        if Name(b"Kids") in node:
            raise PdfBindingError("name trees with kids are not supported")
        entries = self.name_trees.setdefault(tree, [])
        flat = _list(node.get(Name(b"Names"), []), "/Names")
        for index in range(0, len(flat) - 1, 2):
            key = flat[index]
            if not isinstance(key, String):
                raise PdfBindingError("a name tree key must be a string")
            entries.append(_NamedEntry(key.value(), bytes(key), _written(flat[index + 1], refs)))

    # finishing -------------------------------------------------------------------------
    def finish(self) -> int:
        """Write the page stamps, page tree, catalog, information and xref; returns pages."""
        if not self.parts:
            raise PdfBindingError("no part was bound")
        total = len(self.kids)
        for part in self.parts:
            for index in range(part.page_count):
                # after the page's own streams: begin on a token boundary, whatever they end with
                operators = b"\n" + part.stamp(part.first_page + index, total)
                self._begin(part.first_stamp_object + index)
                self._write(b"<</Length %d>>\nstream\n" % len(operators))
                self._write(operators)
                self._write(b"\nendstream\nendobj\n")
        self._begin(_PAGES)
        self._write(b"<</Type /Pages\n/Count %d\n/Kids [" % total)
        for start in range(0, total, 1000):
            self._write(b" ".join(b"%d 0 R" % kid for kid in self.kids[start : start + 1000]))
            self._write(b"\n")
        self._write(b"]>>\nendobj\n")
        self._begin(_CATALOG)
        self._write(b"<</Type /Catalog\n/Pages %d 0 R\n" % _PAGES)
        for key, value in self.settings.items():
            self._write(b"/" + key + b" " + value + b"\n")
        if self.version != self.header_version:
            self._write(b"/Version /" + self.version + b"\n")
        if self.associated_files:
            self._write(b"/AF [" + b" ".join(self.associated_files) + b"]\n")
        if self.name_trees:
            self._write(b"/Names <<")
            for tree, entries in self.name_trees.items():
                entries.sort(key=lambda entry: entry.key)
                for before, after in itertools.pairwise(entries):
                    if before.key == after.key:
                        raise PdfBindingError(f"the name {before.written_key!r} is bound twice")
                self._write(b"/" + tree + b" <</Names [")
                for entry in entries:
                    self._write(entry.written_key + b" " + entry.written_value + b"\n")
                self._write(b"]>>\n")
            self._write(b">>\n")
        self._write(b">>\nendobj\n")
        self._begin(_INFO)
        self._write((self.info or b"<<>>") + b"\nendobj\n")
        xref = self.position
        self._write(b"xref\n0 %d\n0000000000 65535 f \n" % len(self.offsets))
        for start in range(1, len(self.offsets), 1000):
            self._write(
                b"".join(
                    b"%010d 00000 n \n" % offset for offset in self.offsets[start : start + 1000]
                )
            )
        identifier = self.ids.hexdigest().upper().encode()
        self._write(
            b"trailer\n<</Size %d\n/Root %d 0 R\n/Info %d 0 R\n/ID [<%s> <%s>]>>\n"
            b"startxref\n%d\n%%%%EOF\n"
            % (len(self.offsets), _CATALOG, _INFO, identifier, identifier, xref)
        )
        return total

    def _begin(self, number: int) -> None:
        self.offsets[number] = self.position
        self._write(b"%d 0 obj\n" % number)

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.position += len(data)


class _PartReader:
    """Objects of one part, located through its classic cross-reference table."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        file.seek(0, 2)
        self.size = file.tell()
        file.seek(max(0, self.size - 1024))
        tail = file.read()
        marker = tail.rfind(b"startxref")
        if marker < 0:
            raise PdfBindingError("no startxref")
        self.xref = int(tail[marker + 9 :].split()[0])
        file.seek(self.xref)
        head = file.readline()
        if head.strip() != b"xref":
            raise PdfBindingError("a classic cross-reference table is expected")
        self.location: dict[int, int] = {}
        while True:
            line = file.readline()
            if line.startswith(b"trailer"):
                self.trailer_at = file.tell() - len(line)
                break
            first, count = (int(field) for field in line.split())
            rows = file.read(20 * count)
            for index in range(count):
                row = rows[20 * index : 20 * index + 20]
                if row[17:18] == b"n":
                    self.location[first + index] = int(row[:10])
        ends = [*sorted(self.location.values()), self.xref]
        self.span = {offset: ends[index + 1] - offset for index, offset in enumerate(ends[:-1])}

    def version(self) -> bytes:
        self.file.seek(0)
        head = self.file.read(16)
        if not head.startswith(b"%PDF-"):
            raise PdfBindingError("not a PDF")
        return head[5:].split()[0]

    def trailer(self) -> dict[Name, PdfValue]:
        self.file.seek(self.trailer_at)
        data = self.file.read(self.size - self.trailer_at)
        value, _ = parse_value(data, len(b"trailer"))
        return _dict(value, "trailer")

    def numbers(self) -> list[int]:
        """The objects in use, in the order they are in the file."""
        return sorted(self.location, key=self.location.__getitem__)

    def object(self, number: int) -> IndirectObject:
        offset = self.location[number]
        span = self.span[offset]
        self.file.seek(offset)
        data = self.file.read(min(span, _HEAD_BYTES))
        try:
            obj = parse_object(data)
        except PdfSyntaxError:
            if span <= _HEAD_BYTES:
                raise
            self.file.seek(offset)
            obj = parse_object(self.file.read(span))
        if obj.number != number:
            raise PdfBindingError(f"object {number} is not where the xref says")
        return obj

    def stream_data(self, number: int, obj: IndirectObject, length: int) -> Iterator[bytes]:
        """The stream's data in chunks of at most `_COPY_CHUNK` bytes."""
        assert obj.stream_start is not None
        self.file.seek(self.location[number] + obj.stream_start)
        left = length
        while left > 0:
            chunk = self.file.read(min(left, _COPY_CHUNK))
            if not chunk:
                raise PdfBindingError("stream shorter than its /Length")
            left -= len(chunk)
            yield chunk


def _written(value: PdfValue, refs: dict[int, int], subset_tag: bytes | None = None) -> bytes:
    try:
        return write_value(value, refs, subset_tag)
    except KeyError as missing:
        raise PdfBindingError(f"a reference to object {missing}, which is not bound") from None


def _subset_tag(index: int) -> bytes:
    """Six capital letters, different for every part (font subsets must not share names)."""
    letters = []
    for _ in range(6):
        index, digit = divmod(index, 26)
        letters.append(65 + digit)
    return bytes(reversed(letters))


def _version_key(version: bytes) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(b".") if part.isdigit())


def _ref(value: PdfValue | None, what: str) -> Ref:
    if not isinstance(value, Ref):
        raise PdfBindingError(f"{what} must be an indirect reference")
    return value


def _dict(value: PdfValue | None, what: str) -> dict[Name, PdfValue]:
    if not isinstance(value, dict):
        raise PdfBindingError(f"the {what} must be a dictionary")
    return value


def _list(value: PdfValue | None, what: str) -> list[PdfValue]:
    if not isinstance(value, list):
        raise PdfBindingError(f"{what} must be an array")
    return value


def _name(value: PdfValue | None) -> Name:
    if not isinstance(value, Name):
        raise PdfBindingError("a name is expected")
    return value


def _integer(value: PdfValue | None) -> int:
    if not isinstance(value, Token) or not value.isdigit():
        raise PdfBindingError("a direct integer is expected")
    return int(value)
