"""Content-addressed document storage: files named by their SHA-256, outside the database.

The MIME type is sniffed from the bytes (the client's claim is ignored); only the kinds of
documents a care file holds are accepted. Names given by clients never touch the filesystem.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from urllib.parse import unquote

from dossier_service.refusal import Refusal

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FORBIDDEN_NAME_CHARS = set('/\\:*?"<>|\x00')


class DocumentRejected(Refusal, ValueError):
    """Upload refused."""


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    mime_type: str


def sniff_mime(data: bytes) -> str | None:
    """The MIME type of a document from its first bytes, or None when not an accepted kind."""
    head = data[:16]
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc"):
        return "image/heic"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith(b"{\\rtf"):
        return "application/rtf"
    if head.startswith(b"PK\x03\x04"):
        return _sniff_office(data)
    return _sniff_text(data)


def _sniff_office(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "mimetype" in names:
                kind = archive.read("mimetype").decode("ascii", "replace").strip()
                if kind in (
                    "application/vnd.oasis.opendocument.text",
                    "application/vnd.oasis.opendocument.spreadsheet",
                ):
                    return kind
            if "word/document.xml" in names:
                return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            if "xl/workbook.xml" in names:
                return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    return None


def _sniff_text(data: bytes) -> str | None:
    sample = data[:8192]
    if not sample or b"\x00" in sample:
        return None
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # not just a character cut at the sample's end
            return None
        text = sample[: exc.start].decode("utf-8")
    lowered = text.lstrip().lower()
    if lowered.startswith(("<!doctype", "<html", "<script", "<svg", "<?xml")):
        return None  # active content: never served back as a document
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\r\n\t")
    return "text/plain" if printable >= 0.95 * len(text) else None


def safe_filename(name: str) -> str:
    """The display name of an upload: no path, no control character, at most 255 bytes."""
    # clients may percent-encode the name (aiohttp does): judge the decoded form
    cleaned = unicodedata.normalize("NFC", unquote(name)).strip()
    if (
        not cleaned
        or cleaned in (".", "..")
        or ".." in cleaned
        or any(ch in _FORBIDDEN_NAME_CHARS for ch in cleaned)
        or any(unicodedata.category(ch).startswith("C") for ch in cleaned)
    ):
        raise DocumentRejected("M_INVALID_PARAM", "Nom de fichier invalide.")
    if len(cleaned.encode("utf-8")) > 255:
        raise DocumentRejected("M_INVALID_PARAM", "Nom de fichier trop long.")
    return cleaned


def write_private(target: Path, data: bytes) -> None:
    """``data`` at ``target`` (mode 0600), whole or not at all: written to a temporary file in
    the same directory, synced, then renamed over the target."""
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class DocumentStore:
    """Blobs under ``root/ab/abcdef…``; writing the same content twice stores it once."""

    def __init__(self, root: Path, max_size: int) -> None:
        self.root = root
        self.max_size = max_size

    def path_for(self, sha256: str) -> Path:
        if not _HEX64.match(sha256):
            raise DocumentRejected("M_INVALID_PARAM", "Empreinte de document invalide.")
        return self.root / sha256[:2] / sha256

    def check(self, data: bytes) -> StoredBlob:
        if len(data) > self.max_size:
            raise DocumentRejected("M_TOO_LARGE", "Document trop volumineux.", 413)
        if not data:
            raise DocumentRejected("M_INVALID_PARAM", "Document vide.")
        mime = sniff_mime(data)
        if mime is None:
            raise DocumentRejected("CERCLE_UNSUPPORTED_TYPE", "Type de document non accepté.", 415)
        return StoredBlob(hashlib.sha256(data).hexdigest(), len(data), mime)

    def _write(self, blob: StoredBlob, data: bytes) -> None:
        target = self.path_for(blob.sha256)
        if target.exists():
            return
        write_private(target, data)

    async def put(self, data: bytes) -> StoredBlob:
        """Check then store ``data`` (in a worker thread); returns what was stored."""
        blob = self.check(data)
        await asyncio.to_thread(self._write, blob, data)
        return blob

    async def remove(self, sha256: str) -> None:
        """Delete a content no document names any more (end of its retention period)."""
        await asyncio.to_thread(self.path_for(sha256).unlink, True)

    async def read(self, sha256: str) -> bytes:
        path = self.path_for(sha256)
        data = await asyncio.to_thread(path.read_bytes)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise OSError("document content does not match its address")
        return data
