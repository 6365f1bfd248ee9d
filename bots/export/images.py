"""Images of a transcript: decoded at a reduced scale, turned upright, downscaled and
re-encoded as JPEG before they go into the PDF (print quality, small file)."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from bots.export.transcript import Attachment

IMAGE_DPI = 150  # pixels kept per inch of printed size
IMAGE_MAX_PIXELS = 800  # 120 mm wide at 170 dpi: print quality, small PDF


def prepare_image(attachment: Attachment) -> tuple[io.BytesIO, int, int]:
    """Decode (JPEG: at a reduced scale), apply the EXIF orientation, downscale, re-encode."""
    assert attachment.path is not None
    with Image.open(attachment.path) as image:
        if image.format == "JPEG":
            ratio = IMAGE_MAX_PIXELS / max(image.size)
            if ratio < 1:  # let libjpeg decode at 1/2, 1/4 or 1/8 of the size directly
                image.draft(
                    "RGB", (max(1, int(image.width * ratio)), max(1, int(image.height * ratio)))
                )
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        image.thumbnail(
            (IMAGE_MAX_PIXELS, IMAGE_MAX_PIXELS), Image.Resampling.BILINEAR, reducing_gap=2.0
        )
        has_alpha = image.mode in ("RGBA", "LA") or (
            image.mode == "P" and "transparency" in image.info
        )
        prepared: Image.Image = image
        if has_alpha:
            rgba = image.convert("RGBA")
            prepared = Image.new("RGB", rgba.size, (255, 255, 255))
            prepared.paste(rgba, mask=rgba.getchannel("A"))
        elif image.mode != "RGB":
            prepared = image.convert("RGB")
        out = io.BytesIO()
        prepared.save(out, format="JPEG", quality=80)
        out.seek(0)
        return out, prepared.width, prepared.height
