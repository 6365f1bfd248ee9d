"""Image attachments: the header read (type, size, orientation) without decoding, and every
file that is no complete image of an inline type left a plain file."""

from __future__ import annotations

import struct
import zlib

import pytest

from bridges.mail.images import ImageInfo, image_info
from bridges.mail.message import parse_mail
from tests.bridges.mail import mails


@pytest.mark.parametrize(
    ("fmt", "declared", "size"),
    [
        ("PNG", "image/png", (64, 48)),
        ("JPEG", "image/jpeg", (40, 30)),
        ("GIF", "image/gif", (20, 10)),
        ("WEBP", "image/webp", (33, 22)),
    ],
)
def test_each_inline_type_read_from_its_header(
    fmt: str, declared: str, size: tuple[int, int]
) -> None:
    assert image_info(mails.image(fmt, size), declared) == ImageInfo(declared, *size)


def test_a_quarter_turned_photo_has_its_shown_width_and_height() -> None:
    # a phone's portrait photo: stored landscape, EXIF orientation 6 (turned 90°)
    assert image_info(mails.image("JPEG", (40, 30), 6), "image/jpeg") == ImageInfo(
        "image/jpeg", 30, 40
    )
    assert image_info(mails.image("JPEG", (40, 30), 3), "image/jpeg") == ImageInfo(
        "image/jpeg", 40, 30
    )


def test_a_mislabelled_image_gets_the_type_its_header_says() -> None:
    assert image_info(mails.image("PNG"), "image/jpeg") == ImageInfo("image/png", 64, 48)


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (mails.image("PNG")[:-40], "image/png"),  # cut in transit: no IEND
        (mails.image("PNG")[:30], "image/png"),  # not even a whole header
        (mails.image("JPEG")[:-10], "image/jpeg"),  # no end-of-image marker
        (mails.image("GIF")[:-1], "image/gif"),  # no trailer
        (mails.image("WEBP")[:-20], "image/webp"),  # shorter than its RIFF length
        (mails.PDF, "image/png"),  # a PDF named .png
        (b"", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "image/png"),  # a signature and nothing
        (mails.image("PNG"), "application/octet-stream"),  # not declared an image: a file
        (mails.image("PNG"), "image/tiff"),  # an image clients do not show inline
    ],
)
def test_anything_else_stays_a_plain_file(data: bytes, declared: str) -> None:
    assert image_info(data, declared) is None


def test_a_header_claiming_gigapixels_is_not_shown_inline() -> None:
    # a real 1×1 PNG whose IHDR is rewritten to 100,000 × 100,000 (CRC recomputed): the
    # header alone says so, nothing is decoded to find out
    png = bytearray(mails.image("PNG", (1, 1)))
    ihdr = struct.pack(">II", 100_000, 100_000) + bytes(png[24:29])
    png[16:29] = ihdr
    png[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    assert image_info(bytes(png), "image/png") is None


def test_parsed_mail_carries_each_images_info() -> None:
    raw, _cut = mails.with_images()
    mail = parse_mail(raw)
    infos = {a.filename: a.image for a in mail.attachments}
    assert infos == {
        "radio-thorax.png": ImageInfo("image/png", 64, 48),
        "plaie-talon.jpg": ImageInfo("image/jpeg", 30, 40),
        "schema.gif": ImageInfo("image/gif", 20, 10),
        "photo.webp": ImageInfo("image/webp", 33, 22),
        "coupee.png": None,
    }
    assert all(a.image is None for a in parse_mail(mails.alternative()).attachments)
