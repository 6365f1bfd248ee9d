"""Pure: what a client needs to show an attached image inline (``m.image``): its real type
and its size in pixels, read from the file's header only (Pillow opens lazily: no pixel is
decoded, a 20 MB scan costs a few hundred bytes read).

An attachment whose header is not a PNG, JPEG, GIF or WebP image (a PDF named ``.png``, a
header Pillow refuses), or whose end is missing (each format has an end marker or a length
in its header: a cut file shows as a broken image), gets no ``ImageInfo``: it is posted as a
plain ``m.file``, never lost.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

from PIL import Image

INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
_EXIF_ORIENTATION = 0x0112
_TURNED = {5, 6, 7, 8}  # EXIF orientations shown a quarter-turn round: width and height swap


@dataclass(frozen=True)
class ImageInfo:
    mimetype: str  # the type the header says (a mail may mislabel it)
    width: int  # as shown (EXIF orientation applied)
    height: int


def image_info(data: bytes, declared: str) -> ImageInfo | None:
    """Pure: the image's header read, or None when it is no image a client shows inline."""
    if declared not in INLINE_TYPES:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(_FORMATS)) as image:
                mimetype = _FORMATS.get(str(image.format))
                width, height = image.size
                turned = image.format in ("JPEG", "WEBP") and (
                    image.getexif().get(_EXIF_ORIENTATION) in _TURNED
                )
    except (
        OSError,  # UnidentifiedImageError, a truncated header
        ValueError,  # and SyntaxError, EOFError: a broken header or EXIF block
        SyntaxError,
        EOFError,
        Image.DecompressionBombWarning,  # a header claiming gigapixels: not shown inline
        Image.DecompressionBombError,
    ):
        return None
    if mimetype is None or width <= 0 or height <= 0 or not _complete(mimetype, data):
        return None
    if turned:
        width, height = height, width
    return ImageInfo(mimetype, width, height)


def _complete(mimetype: str, data: bytes) -> bool:
    """Pure: the file reaches its format's end (a mail cut in transit loses the tail)."""
    tail = data.rstrip(b"\x00\r\n")  # padding some encoders and mailers add
    if mimetype == "image/png":
        return tail.endswith(b"IEND\xaeB`\x82")
    if mimetype == "image/jpeg":
        return tail.endswith(b"\xff\xd9")
    if mimetype == "image/gif":
        return tail.endswith(b";")
    # WebP: a RIFF file, its length after the first 8 bytes written in bytes 4-8
    return len(data) >= 12 and len(data) >= 8 + struct.unpack_from("<I", data, 4)[0]
