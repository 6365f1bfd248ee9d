import hashlib
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image
from pypdf import PdfReader

from bots.export.pdf import render_transcript
from bots.export.transcript import (
    Attachment,
    ContentDigest,
    Entry,
    EntryKind,
    Participant,
    Quote,
    TranscriptHeader,
)

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def header(**kwargs) -> TranscriptHeader:
    fields = dict(
        room_label="Mme D. — plaie",
        period_label="tout l'historique",
        exported_by="Chloé Martin",
        exported_at=T0 + timedelta(hours=5),
        patient="Mme Dupont Œillet",
        participants=(
            Participant("@a:x", "Élodie Müller", "infirmière"),
            Participant("@b:x", "Дмитрий", None),
        ),
    )
    fields.update(kwargs)
    return TranscriptHeader(**fields)


def message(i: int, body: str, **kwargs) -> Entry:
    fields = dict(
        event_id=f"$e{i}",
        sender="@a:x",
        sender_name="Élodie Müller",
        timestamp=T0 + timedelta(minutes=i),
        kind=EntryKind.MESSAGE,
        body=body,
    )
    fields.update(kwargs)
    return Entry(**fields)


def all_text(reader: PdfReader) -> str:
    return "\n".join(page.extract_text() for page in reader.pages)


def rotated_photo(path: Path) -> Attachment:
    """A 400x200 JPEG whose EXIF says « rotate 90° »: shown 200 wide, 400 high."""
    image = Image.new("RGB", (400, 200), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(path, format="JPEG", exif=exif)
    data = path.read_bytes()
    return Attachment(
        "plaie.jpg", "image/jpeg", True, len(data), hashlib.sha256(data).hexdigest(), path
    )


def test_transcript_reads_back(tmp_path: Path) -> None:
    report = tmp_path / "compte-rendu.txt"
    report.write_bytes("Compte rendu : pansement refait, €15\n".encode() * 40)
    report_hash = hashlib.sha256(report.read_bytes()).hexdigest()
    photo = rotated_photo(tmp_path / "photo.jpg")
    entries = [
        message(
            0,
            "Bonjour, la plaie cicatrise bien. Cœur régulier, 12 € de pansements.",
            formatted_body="Bonjour, la plaie <b>cicatrise</b> bien. Cœur régulier, 12 € "
            "de pansements.",
        ),
        message(1, "Привет, Ελληνικά 😀 🧑‍⚕️", sender="@b:x", sender_name="Дмитрий"),
        message(2, "plaie.jpg", attachment=photo),
        message(
            3,
            "compte-rendu.txt",
            attachment=Attachment(
                "compte-rendu.txt", "text/plain", False, report.stat().st_size, report_hash, report
            ),
        ),
        message(4, "dose corrigée", edited=True, seen_by=("Дмитрий",)),
        message(
            5,
            "> <@a:x> dose corrigée\n\nbien noté",
            sender="@b:x",
            sender_name="Дмитрий",
            quote=Quote("Élodie Müller", "dose corrigée"),
        ),
        message(6, "", kind=EntryKind.REDACTED),
        message(7, "", kind=EntryKind.UNDECRYPTABLE),
        message(8, "Urgence signalée", kind=EntryKind.EVENT, sender_name="Cercle"),
        message(9, "Rappel : visite demain", kind=EntryKind.NOTICE, sender_name="Cercle"),
    ]
    out = tmp_path / "export.pdf"
    summary = render_transcript(header(), entries, out)

    reader = PdfReader(out)
    text = all_text(reader)
    for expected in (
        "Transcription de la conversation",
        "Mme D. — plaie",
        "Mme Dupont Œillet",
        "Élodie Müller (infirmière)",
        "Дмитрий",
        "Chloé Martin, le 25/11/2026 à 14:00",
        "Cœur régulier, 12 € de pansements",
        "Привет, Ελληνικά 😀 🧑⚕",  # the emoji typeface draws them (joiner dropped)
        "(modifié)",
        "Vu par Дмитрий",
        "En réponse à Élodie Müller : dose corrigée",
        "bien noté",
        "message supprimé",
        "message non déchiffrable",
        "09:08 — Cercle : Urgence signalée",
        "Rappel : visite demain",
        f"SHA-256 : {report_hash}",
        "Image : plaie.jpg",
    ):
        assert expected in text, expected
    assert "> <@a:x>" not in text
    pages = len(reader.pages)
    for number, page in enumerate(reader.pages, start=1):
        assert f"page {number} / {pages}" in page.extract_text()
    last = reader.pages[-1].extract_text()
    assert f"9 messages, 2 pièces jointes — SHA-256 du contenu : {summary.digest}" in last
    # the digest is the documented one, recomputed from the entries
    digest = ContentDigest()
    shown = [
        "Bonjour, la plaie cicatrise bien. Cœur régulier, 12 € de pansements.",
        "Привет, Ελληνικά 😀 🧑‍⚕️",
        "",
        "",
        "dose corrigée",
        "bien noté",
        "message supprimé",
        "message non déchiffrable",
        "Urgence signalée",
        "Rappel : visite demain",
    ]
    for entry, shown_text in zip(entries, shown, strict=True):
        digest.add(entry, shown_text)
    assert digest.hexdigest() == summary.digest
    # the image is embedded upright (EXIF orientation applied)
    images = [image for page in reader.pages for image in page.images]
    assert len(images) == 1
    assert images[0].image.size == (200, 400)
    # the file is embedded byte for byte
    assert reader.attachments["compte-rendu.txt"][0] == report.read_bytes()
    assert hashlib.sha256(reader.attachments["compte-rendu.txt"][0]).hexdigest() == report_hash


def test_without_attachments_nothing_is_embedded(tmp_path: Path) -> None:
    report = tmp_path / "cr.txt"
    report.write_text("secret")
    digest = hashlib.sha256(b"secret").hexdigest()
    entries = [
        message(0, "cr.txt", attachment=Attachment("cr.txt", "text/plain", False, 6, digest, None))
    ]
    out = tmp_path / "export.pdf"
    render_transcript(header(with_attachments=False), entries, out)
    reader = PdfReader(out)
    assert reader.attachments == {}
    text = all_text(reader)
    assert "non jointe (export sans pièces jointes)" in text
    assert f"SHA-256 : {digest}" in text


def test_empty_period(tmp_path: Path) -> None:
    out = tmp_path / "export.pdf"
    summary = render_transcript(header(), [], out)
    assert summary.messages == 0
    assert "Aucun message dans la période demandée." in all_text(PdfReader(out))


def test_robustness_big_inputs(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.frombytes("RGB", (2200, 1600), os.urandom(2200 * 1600 * 3)).save(big, compress_level=0)
    assert big.stat().st_size > 10_000_000
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    entries = [
        message(
            0,
            "big.png",
            attachment=Attachment("big.png", "image/png", True, big.stat().st_size, "00", big),
        ),
        message(1, "y" * 5000),
        message(2, "début" + "\n" * 200 + "fin"),
        message(3, "مرحبا بالعالم — שלום עולם — hello"),
        message(4, ("Transmission détaillée " * 2300)[:50_000]),
        message(
            5,
            "broken.jpg",
            attachment=Attachment("broken.jpg", "image/jpeg", True, 20, "11", broken),
        ),
        message(6, "x" * 3 + "<b>" * 500, formatted_body="<b>" * 500 + "gras" + "</i>" * 30),
    ]
    out = tmp_path / "export.pdf"
    summary = render_transcript(header(), entries, out)
    assert summary.messages == 7
    assert out.stat().st_size < 5_000_000  # the 10 MB image was downscaled
    reader = PdfReader(out)
    text = all_text(reader)
    assert text.count("y") >= 5000
    assert "image illisible" in text
    assert "gras" in text
    image = next(image for page in reader.pages for image in page.images)
    assert max(image.image.size) <= 800
    assert re.search(r"page \d+ / \d+", text)


def test_emoji_printed_with_the_emoji_typeface_and_arabic_joined(tmp_path: Path) -> None:
    """A nurse's « 👍 🏥 » and a family's Arabic message: printed, not « [emoji] » and not
    isolated letters; an emoji no typeface draws (Unicode 14) falls back alone."""
    out = tmp_path / "export.pdf"
    render_transcript(
        header(),
        [message(1, "Visite faite 👍🏽 🏥 🫠 merci"), message(2, "شكرا جزيلا", sender_name="Amal")],
        out,
    )
    reader = PdfReader(out)
    text = all_text(reader)
    assert "👍" in text and "🏥" in text and text.count("[emoji]") == 1
    fonts = {
        str(font.get_object()["/BaseFont"])
        for page in reader.pages
        for font in page["/Resources"]["/Font"].values()
    }
    assert any("Symbola" in name for name in fonts), fonts
    assert "\ufeb7" in text or "\ufeb8" in text  # ش in a joined (initial/medial) form
    assert "\u0634" not in text  # not the isolated letter


def test_an_emoji_in_the_rooms_name_is_printed(tmp_path: Path) -> None:
    out = tmp_path / "export.pdf"
    render_transcript(header(room_label="Suivi 🏥 Mme D."), [message(1, "ok")], out)
    assert "Suivi 🏥 Mme D." in all_text(PdfReader(out)).split("\n")[1]
