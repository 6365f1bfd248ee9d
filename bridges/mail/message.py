"""Pure: an incoming mail's raw bytes turned into what the Courriers room shows.

Real-world shapes handled by the standard library's ``email`` package (policy ``default``):
multipart/alternative (the plain part preferred, the HTML part kept sanitised), RFC 2231
and RFC 2047 non-ASCII file names, ISO-8859-1 / Windows-1252 bodies (decoded with their
declared charset). A part whose content cannot be decoded (unknown charset …) makes the
whole mail "unparseable": the caller posts the raw ``.eml`` instead, nothing is dropped.

MSSanté specifics: the IHE_XDM zip is listed (names and sizes, read without extracting),
and an INS (the patient's national health identifier) is looked for in CDA documents, in the
XDM ``METADATA.XML`` and in the patient header some operators add.
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import email.utils
import html as _html
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage, MIMEPart

import nh3

from bridges.mail.images import ImageInfo, image_info

MAX_ZIP_ENTRIES = 500  # an XDM zip lists at most this many names
MAX_XML_SCAN = 5 * 1024 * 1024  # bytes of one CDA / METADATA file searched for an INS

# OIDs of the INS: NIR (8), NIA (9), test NIR (10), demo NIR (11)
_INS_OIDS = r"1\.2\.250\.1\.213\.1\.4\.(?:8|9|10|11)"
_CDA_ID = re.compile(
    rf"<(?:\w+:)?id\b[^>]*?\broot=\"{_INS_OIDS}\"[^>]*?\bextension=\"(\d{{13,15}})\""
    rf"|<(?:\w+:)?id\b[^>]*?\bextension=\"(\d{{13,15}})\"[^>]*?\broot=\"{_INS_OIDS}\""
)
_XDM_ID = re.compile(rf"(\d{{13,15}})\^\^\^&{_INS_OIDS}&ISO")
_HEADER_INS = re.compile(r"^\s*(\d{13,15})\b")
INS_HEADERS = ("X-MSSANTE-PATIENT-INS", "X-Patient-INS")

# Matrix HTML: the tags and attributes the spec lists for m.room.message formatted bodies
_TAGS = {
    "font", "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul", "ol",
    "sup", "sub", "li", "b", "i", "u", "strong", "em", "s", "code", "hr", "br", "div",
    "table", "thead", "tbody", "tr", "th", "td", "caption", "pre", "span",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href"}, "ol": {"start"}, "font": {"color"}, "span": {"data-mx-color"}}
_URL_SCHEMES = {"https", "http", "mailto"}


class UnparseableMail(Exception):
    """The mail cannot be shown as a message (the reason is for logs: no content in it)."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    mimetype: str
    data: bytes = field(repr=False)
    listing: tuple[str, ...] = ()  # an XDM / zip: "name (size)" of each entry
    image: ImageInfo | None = None  # an image a client shows inline (``m.image``)

    @property
    def is_xdm(self) -> bool:
        return bool(self.listing) and any(
            n.upper().startswith(("IHE_XDM/", "METADATA.XML", "INDEX.HTM")) for n in self.listing
        )


@dataclass(frozen=True)
class ParsedMail:
    message_id: str | None
    sender: str  # "Name <address>" as written
    sender_address: str
    reply_to: str | None  # the Reply-To address, when given
    to: tuple[str, ...]
    subject: str
    date: datetime | None  # UTC
    text: str
    html: str | None  # sanitised Matrix HTML, or None
    references: tuple[str, ...]
    attachments: tuple[Attachment, ...]
    ins: tuple[str, ...]  # INS numbers found (deduplicated, in order)


def sanitise_html(raw: str) -> str:
    """Pure: mail HTML reduced to what Matrix clients render (no scripts, styles, images)."""
    return nh3.clean(
        raw,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    ).strip()


def html_to_text(raw: str) -> str:
    """Pure: a readable plain text of an HTML-only mail."""
    text = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", "", raw)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|</h\d>|</li>", "\n", text)
    text = nh3.clean(text, tags=set())
    text = _html.unescape(text)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.strip() for line in text.splitlines()))


def message_id_of(raw: bytes) -> str | None:
    """Pure: the Message-ID, from the headers only (cheap on a 20 MB mail)."""
    try:
        headers = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
        return _clean_id(headers.get("Message-ID"))
    except Exception:  # broken headers: no identity to deduplicate on
        return None


def parse_mail(raw: bytes) -> ParsedMail:
    """Pure: the mail as shown, or ``UnparseableMail``."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return _parse(msg)
    except UnparseableMail:
        raise
    except Exception as exc:  # the email package raises many types on broken input
        raise UnparseableMail(type(exc).__name__) from exc


def _parse(msg: EmailMessage) -> ParsedMail:
    if not msg.keys():
        raise UnparseableMail("no headers")
    if msg.is_multipart() and not isinstance(msg.get_payload(), list):
        raise UnparseableMail("multipart without parts")
    plain_part = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    text = _text_of(plain_part) if plain_part is not None else ""
    html_body = None
    if html_part is not None:
        raw_html = _text_of(html_part)
        html_body = sanitise_html(raw_html) or None
        if not text:
            text = html_to_text(raw_html)
    body_parts = {id(p) for p in (plain_part, html_part) if p is not None}
    attachments = tuple(_attachments(msg, body_parts))
    name, address = email.utils.parseaddr(str(msg.get("From", "")))
    sender = f"{name} <{address}>" if name else address
    return ParsedMail(
        message_id=_clean_id(msg.get("Message-ID")),
        sender=sender or "(expéditeur inconnu)",
        sender_address=address,
        reply_to=email.utils.parseaddr(str(msg.get("Reply-To", "")))[1] or None,
        to=tuple(a for _, a in email.utils.getaddresses([str(v) for v in msg.get_all("To", [])])),
        subject=str(msg.get("Subject", "")).strip() or "(sans objet)",
        date=_date_of(msg),
        text=text.strip(),
        html=html_body,
        references=tuple(
            r for r in (_clean_id(x) for x in str(msg.get("References", "")).split()) if r
        ),
        attachments=attachments,
        ins=tuple(dict.fromkeys(_ins_in(msg, attachments))),
    )


def _text_of(part: MIMEPart) -> str:
    content = part.get_content()  # LookupError on an unknown charset: unparseable
    if not isinstance(content, str):
        raise UnparseableMail("text part is not text")
    return content


def _clean_id(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text if text.startswith("<") and text.endswith(">") and len(text) < 1000 else None


def _date_of(msg: EmailMessage) -> datetime | None:
    raw = msg.get("Date")
    if raw is None:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(str(raw))
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _attachments(msg: EmailMessage, body_parts: set[int]) -> Iterator[Attachment]:
    count = 0
    for part in msg.walk():
        if part.is_multipart() or id(part) in body_parts:
            continue
        assert isinstance(part, EmailMessage)
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        mimetype = part.get_content_type()
        if not filename and disposition != "attachment" and part.get_content_maintype() == "text":
            continue  # another alternative body, not a file
        count += 1
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            data = part.as_bytes() if mimetype == "message/rfc822" else b""
        name = _safe_name(filename) or f"piece-jointe-{count}{_extension(mimetype)}"
        yield Attachment(
            name,
            mimetype,
            data,
            _zip_listing(data) if _is_zip(name, data) else (),
            image_info(data, mimetype),
        )


def _safe_name(name: str | None) -> str:
    if not name:
        return ""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in name if c.isprintable()).strip()[:200]


def _extension(mimetype: str) -> str:
    return {
        "application/pdf": ".pdf",
        "image/jpeg": ".jpg",
        "image/png": ".png",
        "image/gif": ".gif",
        "image/webp": ".webp",
        "application/zip": ".zip",
        "text/xml": ".xml",
        "application/xml": ".xml",
        "message/rfc822": ".eml",
    }.get(mimetype, ".bin")


def _is_zip(name: str, data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04" or name.lower().endswith(".zip")


def _zip_listing(data: bytes) -> tuple[str, ...]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()[:MAX_ZIP_ENTRIES]
            return tuple(f"{i.filename} ({_size(i.file_size)})" for i in infos if not i.is_dir())
    except (zipfile.BadZipFile, OSError, ValueError):
        return ()


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} Mo".replace(".", ",")
    if n >= 1024:
        return f"{n // 1024} ko"
    return f"{n} o"


def _ins_in(msg: EmailMessage, attachments: tuple[Attachment, ...]) -> Iterator[str]:
    for header in INS_HEADERS:
        for value in msg.get_all(header, []):
            found = _HEADER_INS.match(str(value))
            if found:
                yield found.group(1)
    for attachment in attachments:
        if attachment.mimetype in ("text/xml", "application/xml", "application/hl7-cda+xml") or (
            attachment.filename.lower().endswith(".xml")
        ):
            yield from _ins_in_xml(attachment.data[:MAX_XML_SCAN])
        if attachment.listing:
            yield from _ins_in_zip(attachment.data)


def _ins_in_xml(data: bytes) -> Iterator[str]:
    text = data.decode("utf-8", errors="replace")
    for match in _CDA_ID.finditer(text):
        yield match.group(1) or match.group(2)
    for match in _XDM_ID.finditer(text):
        yield match.group(1)


def _ins_in_zip(data: bytes) -> Iterator[str]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist()[:MAX_ZIP_ENTRIES]:
                name = info.filename.upper()
                if name.endswith(".XML") and info.file_size <= MAX_XML_SCAN:
                    yield from _ins_in_xml(archive.read(info))
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError):
        return
