"""A transcript drawn in several parts reads back as one document."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from bots.export import parts
from bots.export.pdf import render_transcript
from bots.export.transcript import Attachment, Entry
from tests.bots.export.test_pdf import header, message

PAGES_PER_PART = 2


def file_attachment(path: Path, name: str, data: bytes) -> Attachment:
    path.write_bytes(data)
    return Attachment(name, "text/plain", False, len(data), hashlib.sha256(data).hexdigest(), path)


def photo(path: Path, color: tuple[int, int, int]) -> Attachment:
    Image.new("RGB", (300, 200), color).save(path, format="JPEG")
    data = path.read_bytes()
    return Attachment(
        path.name, "image/jpeg", True, len(data), hashlib.sha256(data).hexdigest(), path
    )


def room(
    tmp_path: Path, files: dict[int, Attachment], photos: dict[int, Attachment]
) -> Iterator[Entry]:
    """A generator, as the history gives them: consumed once."""
    for i in range(160):
        if i in files:
            yield message(i, files[i].name, attachment=files[i])
        elif i in photos:
            yield message(i, photos[i].name, attachment=photos[i])
        elif i == 159:  # letters no other part has: the last part's font subset has them
            yield message(i, "Dernier message : ß, Ω, Ж, ∑.")
        else:
            yield message(i, f"Message {i} : le cœur va bien, 12 € de pansements. " * (1 + i % 3))


def test_parts_read_back_as_one_document(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    files = {
        5: file_attachment(tmp_path / "cr1.txt", "compte-rendu.txt", b"premier\n"),
        70: file_attachment(tmp_path / "cr2.txt", "compte-rendu.txt", "deuxième €".encode()),
        150: file_attachment(tmp_path / "cr3.txt", "bilan (1 0 R) (a).txt", b"troisi\xe8me"),
        151: file_attachment(tmp_path / "cr4.txt", "compte-rendu.txt", b"quatrieme"),
    }
    photos = {
        20: photo(tmp_path / "rouge.jpg", (200, 30, 30)),
        90: photo(tmp_path / "vert.jpg", (30, 160, 30)),
        140: photo(tmp_path / "bleu.jpg", (30, 30, 200)),
    }
    out = tmp_path / "export.pdf"
    summary = render_transcript(
        header(), room(tmp_path, files, photos), out, pages_per_part=PAGES_PER_PART
    )

    with caplog.at_level(logging.WARNING, logger="pypdf"):
        reader = PdfReader(out, strict=True)
        texts = [page.extract_text() for page in reader.pages]
        attachments = reader.attachments
    # pypdf's complaints only: another test's leftovers collected meanwhile are not this one's
    assert [r.getMessage() for r in caplog.records if r.name.startswith("pypdf")] == []
    total = len(reader.pages)
    assert summary.pages == total
    assert total > 3 * PAGES_PER_PART  # four parts at least
    for number, text in enumerate(texts, start=1):
        assert f"page {number} / {total}" in text
        assert ("Cercle — Mme D. — plaie" in text) == (number > 1)
        summary_line = f"160 messages, 7 pièces jointes — SHA-256 du contenu : {summary.digest}"
        assert (summary_line in text) == (number == total)
    document = "\n".join(texts)
    for i in (0, 50, 100, 158):
        assert f"Message {i} : le cœur va bien, 12 € de pansements." in document
    assert "Dernier message : ß, Ω, Ж, ∑." in texts[-1]
    # the messages quoted above are on pages of different parts
    parts_with_text = {
        (number - 1) // PAGES_PER_PART
        for number, text in enumerate(texts, start=1)
        if any(f"Message {i} :" in text for i in (0, 50, 100, 158))
    }
    assert len(parts_with_text) == 4
    image_parts = {
        index // PAGES_PER_PART for index, page in enumerate(reader.pages) for _ in page.images
    }
    assert len(image_parts) == 3
    assert (
        sorted(image.image.size for page in reader.pages for image in page.images)
        == [(300, 200)] * 3
    )
    assert attachments == {
        "compte-rendu.txt": [b"premier\n"],
        "compte-rendu (2).txt": ["deuxième €".encode()],
        "bilan (1 0 R) (a).txt": [b"troisi\xe8me"],
        "compte-rendu (3).txt": [b"quatrieme"],
    }
    assert "Pièce jointe : bilan (1 0 R) (a).txt" in document
    assert reader.metadata is not None
    assert reader.metadata.subject == f"SHA-256 du contenu : {summary.digest}"
    assert list(tmp_path.glob(".pdf-parts-*")) == []  # the parts are gone


def subset_fonts(reader: PdfReader) -> set[str]:
    """The names of the regular font subsets: one per part."""
    return {
        str(font.get_object()["/BaseFont"])
        for page in reader.pages
        for font in page["/Resources"]["/Font"].values()
        if str(font.get_object()["/BaseFont"]).endswith("+DejaVuSansBook")
    }


def test_a_part_full_of_images_and_files_is_written_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parts, "PART_BYTES", 1)  # any image or file fills a part
    photos = {
        3: photo(tmp_path / "a.jpg", (200, 30, 30)),
        40: photo(tmp_path / "b.jpg", (0, 90, 0)),
    }
    out = tmp_path / "export.pdf"
    summary = render_transcript(header(), room(tmp_path, {}, photos), out, pages_per_part=1000)
    reader = PdfReader(out, strict=True)
    assert summary.pages == len(reader.pages) >= 3
    assert len(subset_fonts(reader)) == 3  # image on the first page, on another, then the rest
    assert sum(len(page.images) for page in reader.pages) == 2


def test_one_page_per_part(tmp_path: Path) -> None:
    out = tmp_path / "export.pdf"
    entries = (message(i, "Une ligne " * 40) for i in range(50))
    summary = render_transcript(header(), entries, out, pages_per_part=1)
    reader = PdfReader(out, strict=True)
    assert summary.pages == len(reader.pages) > 3
    for number, page in enumerate(reader.pages, start=1):
        assert f"page {number} / {summary.pages}" in page.extract_text()
    assert len(subset_fonts(reader)) == summary.pages


def test_a_failed_render_leaves_no_file(tmp_path: Path) -> None:
    def entries() -> Iterator[Entry]:
        for i in range(100):
            yield message(i, "texte " * 30)
        raise RuntimeError("history broken")

    out = tmp_path / "export.pdf"
    with pytest.raises(RuntimeError):
        render_transcript(header(), entries(), out, pages_per_part=2)
    assert list(tmp_path.iterdir()) == []
