"""PdfBinder on parts written by plain fpdf2 documents (no transcript involved)."""

from __future__ import annotations

import io
import logging
import random
import re
from pathlib import Path

import pytest
from fpdf import FPDF
from PIL import Image
from pypdf import PdfReader
from pypdf.generic import IndirectObject

from bots.export import binding
from bots.export.binding import PdfBinder, PdfBindingError
from bots.export.typefaces import FONTS_DIR


class Part:
    """An fpdf2 document: DejaVu for the text (a subset per part), Helvetica for the stamp."""

    def __init__(self, title: str) -> None:
        self.pdf = FPDF(format="A4")
        self.pdf.add_font("dejavu", "", str(FONTS_DIR / "DejaVuSans.ttf"))
        self.pdf.set_lang("fr-FR")
        self.pdf.set_title(title)

    def page(self, text: str) -> None:
        self.pdf.add_page()
        self.pdf.set_font("helvetica", "", 8)
        self.pdf.text(10, 290, " ")  # the stamp's font is among the page's resources
        self.pdf.set_font("dejavu", "", 11)
        self.pdf.text(20, 30, text)

    def stamp(self, number: int, total: int) -> bytes:
        font = self.pdf.fonts["helvetica"].i
        return f"BT /F{font} 8 Tf 500 20 Td (page {number} / {total}) Tj ET".encode()

    def write(self, path: Path) -> Path:
        self.pdf.output(str(path))
        return path


def bind(out: Path, parts: list[tuple[Part, Path]]) -> int:
    with out.open("wb") as file:
        binder = PdfBinder(file)
        for part, path in parts:
            binder.bind(part.write(path), part.stamp)
        return binder.finish()


def xref_points_at_objects(data: bytes) -> None:
    start = int(data[data.rindex(b"startxref") + 9 :].split()[0])
    lines = data[start:].split(b"\n")
    assert lines[0] == b"xref"
    first, count = map(int, lines[1].split())
    assert first == 0
    for number in range(1, count):
        offset = int(lines[2 + number][:10])
        assert data[offset:].startswith(b"%d 0 obj\n" % number), number


@pytest.mark.parametrize("small_reads", [False, True])
def test_parts_bound_into_one_document(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    small_reads: bool,
) -> None:
    if small_reads:  # objects re-read whole when their first bytes do not hold them
        monkeypatch.setattr(binding, "_HEAD_BYTES", 64)
        monkeypatch.setattr(binding, "_COPY_CHUNK", 1000)
    big = random.Random(3).randbytes(2_500_000)  # copied in chunks, stored uncompressed
    first = Part("premier")
    first.page("Première page — cœur")
    first.page("Deuxième page — 12 €")
    first.pdf.embed_file(bytes=b"alpha", basename="note (1 0 R) (2).txt", compress=True)
    second = Part("deuxième")
    second.page("Troisième page")
    photo = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(photo, format="JPEG")
    second.pdf.image(photo, x=20, y=40, w=40)
    third = Part("dernier")
    for text in ("Quatrième page", "Cinquième page", "Sixième page"):
        third.page(text)
    third.pdf.embed_file(bytes=b"gamma\x00\xff", basename="a.bin", compress=False)
    third.pdf.embed_file(bytes=b"delta", basename="z (x).txt", compress=True)
    third.pdf.embed_file(bytes=big, basename="scan.bin", compress=False)

    out = tmp_path / "bound.pdf"
    with caplog.at_level(logging.WARNING):
        total = bind(
            out,
            [
                (first, tmp_path / "1.pdf"),
                (second, tmp_path / "2.pdf"),
                (third, tmp_path / "3.pdf"),
            ],
        )
        reader = PdfReader(out, strict=True)
        texts = [page.extract_text() for page in reader.pages]
        attachments = reader.attachments
    # the binder's and pypdf's complaints: another test's leftovers collected meanwhile are not ours
    ours = [r.getMessage() for r in caplog.records if r.name.split(".")[0] in ("pypdf", "bots")]
    assert ours == []
    assert total == len(reader.pages) == 6
    expected = ["Première page — cœur", "Deuxième page — 12 €", "Troisième page"]
    expected += ["Quatrième page", "Cinquième page", "Sixième page"]
    for number, (text, wanted) in enumerate(zip(texts, expected, strict=True), start=1):
        assert wanted in text
        assert f"page {number} / 6" in text
    assert len(reader.pages[2].images) == 1
    assert reader.pages[2].images[0].image.size == (40, 30)
    assert attachments == {
        "a.bin": [b"gamma\x00\xff"],
        "note (1 0 R) (2).txt": [b"alpha"],
        "z (x).txt": [b"delta"],
        "scan.bin": [big],
    }
    root = reader.trailer["/Root"]
    names = root["/Names"]["/EmbeddedFiles"]["/Names"][::2]
    assert names == sorted(names)
    assert len(root["/AF"]) == 4
    assert root["/Lang"] == "fr-FR"
    open_action = root["/OpenAction"][0]
    assert isinstance(open_action, IndirectObject)
    assert open_action.get_object() == reader.pages[0].get_object()
    assert reader.metadata is not None and reader.metadata.title == "dernier"  # the last part's
    data = out.read_bytes()
    xref_points_at_objects(data)
    # each part's DejaVu subset keeps its own name: no two subsets called the same
    subsets = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            subsets.add((font.get_object()["/BaseFont"], font.idnum))
    dejavu = [name for name, _ in subsets if "DejaVu" in name]
    assert len(dejavu) == len(set(dejavu)) == 3
    assert all(re.fullmatch(r"/[A-Z]{6}\+DejaVuSansBook", name) for name in dejavu)


def test_the_same_name_in_two_parts_is_refused(tmp_path: Path) -> None:
    parts = []
    for index in range(2):
        part = Part(str(index))
        part.page("page")
        part.pdf.embed_file(bytes=b"x", basename="cr.txt")
        parts.append((part, tmp_path / f"{index}.pdf"))
    with pytest.raises(PdfBindingError, match=r"cr\.txt"):
        bind(tmp_path / "out.pdf", parts)


def test_a_catalog_entry_it_cannot_merge_is_refused(tmp_path: Path) -> None:
    part = Part("sommaire")
    part.page("page")
    part.pdf.start_section("Chapitre")  # an outline: would need merging across parts
    with pytest.raises(PdfBindingError, match="Outlines"):
        bind(tmp_path / "out.pdf", [(part, tmp_path / "1.pdf")])
    assert (tmp_path / "out.pdf").stat().st_size == 0  # refused before anything is written


def test_nothing_to_bind(tmp_path: Path) -> None:
    with (tmp_path / "out.pdf").open("wb") as file, pytest.raises(PdfBindingError):
        PdfBinder(file).finish()
