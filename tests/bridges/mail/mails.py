"""Real-world mail shapes for the bridge's tests (built with the standard library, as a
hospital's or a lab's software would send them)."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
INS = "279035121518989"  # a test INS-NIR (OID 1.2.250.1.213.1.4.10)


def cda(ins: str = INS) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3">'
        "<recordTarget><patientRole>"
        f'<id root="1.2.250.1.213.1.4.10" extension="{ins}" assigningAuthorityName="INS-NIR"/>'
        "</patientRole></recordTarget></ClinicalDocument>"
    ).encode()


def xdm_zip(ins: str = INS) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("INDEX.HTM", "<html>IHE_XDM</html>")
        z.writestr("README.TXT", "IHE XDM")
        z.writestr(
            "IHE_XDM/SUBSET01/METADATA.XML",
            f'<Slot name="sourcePatientId"><Value>{ins}^^^&amp;1.2.250.1.213.1.4.10&amp;ISO'
            "</Value></Slot>".replace("&amp;", "&"),
        )
        z.writestr("IHE_XDM/SUBSET01/DOC0001.XML", cda(ins))
        z.writestr("IHE_XDM/SUBSET01/DOC0002.PDF", PDF)
    return buf.getvalue()


def base(subject: str, sender: str = "Dr Hélène Lefèvre <h.lefevre@chu.mss.test>") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "destinataire@mss.test"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    msg["Message-ID"] = make_msgid(domain="chu.mss.test")
    return msg


def alternative(subject: str = "Compte rendu de sortie") -> bytes:
    msg = base(subject)
    msg.set_content("Bonjour,\nCompte rendu de sortie de Mme X.\nCordialement")
    msg.add_alternative(
        "<html><head><style>p{color:red}</style><script>alert(1)</script></head><body>"
        "<p>Bonjour,</p><p><b>Compte rendu</b> de sortie "
        '<img src="https://tracker.example/x.png"> <a href="javascript:alert(1)">lien</a></p>'
        "</body></html>",
        subtype="html",
    )
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="Compte rendu été.pdf")
    return msg.as_bytes()


def latin1() -> bytes:
    body = "Résultats de biologie : hémoglobine à 12,5 g/dl. Très cordialement.\n"
    return (
        "From: Laboratoire <labo@bio.mss.test>\r\nTo: x@mss.test\r\n"
        "Subject: =?ISO-8859-1?Q?R=E9sultats?=\r\n"
        "Message-ID: <latin1-1@bio.mss.test>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode("ascii") + body.encode("latin-1")


def windows1252() -> bytes:
    body = "L’infirmière a noté « 38,5 °C » — à revoir… €\n"
    return (
        b"From: cabinet@ide.mss.test\r\nTo: x@mss.test\r\nSubject: =?windows-1252?q?Fi=E8vre?=\r\n"
        b"Message-ID: <cp1252-1@ide.mss.test>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=windows-1252\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + body.encode("cp1252")
    )


def rfc2231_name() -> bytes:
    name = "Lettre de liaison – Mme Dupré.pdf"
    encoded = "UTF-8''" + "".join(
        c
        if (c.isascii() and c.isalnum()) or c in ".-_"
        else "".join(f"%{b:02X}" for b in c.encode())
        for c in name
    )
    return (
        (
            "From: secretariat@ehpad.mss.test\r\nTo: x@mss.test\r\nSubject: Lettre\r\n"
            "Message-ID: <rfc2231-1@ehpad.mss.test>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
            "Content-Type: text/plain; charset=utf-8\r\n\r\nCi-joint la lettre.\r\n--B\r\n"
            "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
            f"Content-Disposition: attachment; filename*={encoded}\r\n\r\n"
        ).encode()
        + __import__("base64").encodebytes(PDF).replace(b"\n", b"\r\n")
        + b"--B--\r\n"
    )


def malformed() -> bytes:
    return (
        b"From: robot@lab.mss.test\r\nTo: x@mss.test\r\nSubject: casse\r\n"
        b"Message-ID: <broken-1@lab.mss.test>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=x-charset-inconnu\r\n\r\nillisible\r\n"
    )


def mssante_xdm(subject: str = "Résultats avec dossier XDM") -> bytes:
    msg = base(subject, "Laboratoire Bio <bio@lab.mss.test>")
    msg.set_content("Veuillez trouver les résultats ci-joints.")
    msg.add_attachment(xdm_zip(), maintype="application", subtype="zip", filename="IHE_XDM.zip")
    msg.add_attachment(cda(), maintype="text", subtype="xml", filename="CR-BIO.xml")
    return msg.as_bytes()


def big(size: int = 20 * 1024 * 1024) -> tuple[bytes, bytes]:
    payload = PDF + bytes(size - len(PDF))
    msg = base("Imagerie (20 Mo)")
    msg.set_content("Le scanner en pièce jointe.")
    msg.add_attachment(payload, maintype="application", subtype="pdf", filename="scanner.pdf")
    return msg.as_bytes(), payload


def simple(subject: str, text: str = "Bonjour", message_id: str | None = None) -> bytes:
    msg = base(subject)
    if message_id:
        del msg["Message-ID"]
        msg["Message-ID"] = message_id
    msg.set_content(text)
    return msg.as_bytes()


def image(fmt: str, size: tuple[int, int] = (64, 48), exif_orientation: int | None = None) -> bytes:
    """A small real image (PNG, JPEG, GIF or WEBP) made with Pillow."""
    from PIL import Image

    out = io.BytesIO()
    picture = Image.new("RGB", size, (200, 30, 30))
    extra = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        extra["exif"] = exif.tobytes()
    picture.save(out, format=fmt, **extra)
    return out.getvalue()


IMAGES = (  # (file name, subtype, bytes): what a radiology centre or a nurse's phone sends
    ("radio-thorax.png", "png", image("PNG", (64, 48))),
    ("plaie-talon.jpg", "jpeg", image("JPEG", (40, 30), exif_orientation=6)),
    ("schema.gif", "gif", image("GIF", (20, 10))),
    ("photo.webp", "webp", image("WEBP", (33, 22))),
)


def with_images(subject: str = "Photos de la plaie") -> tuple[bytes, bytes]:
    """A mail with one image of each inline type and a PNG cut short in transit (its bytes
    returned too: posted as a plain file, not lost)."""
    msg = base(subject, "Cabinet infirmier <idel@sante.mss.test>")
    msg.set_content("Bonjour, les photos de ce matin.")
    for name, subtype, data in IMAGES:
        msg.add_attachment(data, maintype="image", subtype=subtype, filename=name)
    cut = image("PNG", (64, 48))[:-40]
    msg.add_attachment(cut, maintype="image", subtype="png", filename="coupee.png")
    return msg.as_bytes(), cut
