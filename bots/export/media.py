"""Attachments of an export: authenticated download, streamed to temp files, decrypted.

Downloads go through `/_matrix/client/v1/media/download/<server>/<id>` with the
bot's Bearer token, in chunks to a file (never the whole file in memory).  An
encrypted attachment (`content.file`: AES-256-CTR, JWK key, unpadded base64 IV and
SHA-256 of the ciphertext) is checked then decrypted chunk by chunk — the same
algorithm as `nio.crypto.attachments.decrypt_attachment`, which needs the whole
ciphertext in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import unpaddedbase64
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

log = logging.getLogger(__name__)

CHUNK = 256 * 1024


class MediaError(Exception):
    """The attachment could not be fetched or checked; `reason` is French, for the PDF."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FetchedMedia:
    path: Path
    size: int
    sha256: str  # hex, of the plaintext


@dataclass(frozen=True)
class MediaSource:
    """Where an attachment lives: a plain mxc URL, or an encrypted `file` object."""

    mxc: str
    key: str | None = field(default=None, repr=False)  # JWK "k" (unpadded url-safe base64)
    iv: str | None = None
    ciphertext_sha256: str | None = None  # unpadded base64

    @classmethod
    def from_content(cls, content: Mapping[str, Any]) -> MediaSource | None:
        file = content.get("file")
        if isinstance(file, Mapping):
            url, key, iv = file.get("url"), file.get("key"), file.get("iv")
            hashes = file.get("hashes")
            if (
                isinstance(url, str)
                and isinstance(key, Mapping)
                and isinstance(iv, str)
                and isinstance(hashes, Mapping)
                and isinstance(key.get("k"), str)
                and isinstance(hashes.get("sha256"), str)
            ):
                return cls(url, key["k"], iv, hashes["sha256"])
            return None
        url = content.get("url")
        if isinstance(url, str):
            return cls(url)
        return None


class MediaFetcher:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        homeserver_url: str,
        access_token: str,
        directory: Path,
        *,
        max_bytes: int = 100 * 1024 * 1024,
    ) -> None:
        self.session = session
        self.base = homeserver_url.rstrip("/")
        self.token = access_token
        self.directory = directory
        self.max_bytes = max_bytes
        self._count = 0

    async def fetch(self, source: MediaSource) -> FetchedMedia:
        if not source.mxc.startswith("mxc://"):
            raise MediaError("adresse de fichier invalide")
        server, _, media_id = source.mxc[len("mxc://") :].partition("/")
        if not server or not media_id or "/" in media_id:
            raise MediaError("adresse de fichier invalide")
        self._count += 1
        raw = self.directory / f"media-{self._count}.bin"
        url = f"{self.base}/_matrix/client/v1/media/download/{quote(server)}/{quote(media_id)}"
        headers = {"Authorization": f"Bearer {self.token}"}
        cipher_hash = hashlib.sha256()
        plain_hash = hashlib.sha256()
        size = 0
        decryptor = None
        if source.key is not None:
            try:
                key = unpaddedbase64.decode_base64(source.key.replace("-", "+").replace("_", "/"))
                iv = unpaddedbase64.decode_base64(source.iv or "")
                decryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).decryptor()
            except Exception:
                raise MediaError("clé de déchiffrement du fichier invalide") from None
        try:
            async with self.session.get(url, headers=headers) as response:
                if response.status != 200:
                    log.warning("media download failed: status %s", response.status)
                    raise MediaError("fichier indisponible sur le serveur")
                with open(raw, "wb") as out:
                    os.chmod(raw, 0o600)
                    async for chunk in response.content.iter_chunked(CHUNK):
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise MediaError("fichier trop volumineux pour l'export")
                        if decryptor is not None:
                            cipher_hash.update(chunk)
                            chunk = decryptor.update(chunk)
                        plain_hash.update(chunk)
                        out.write(chunk)
                    if decryptor is not None:
                        tail = decryptor.finalize()
                        plain_hash.update(tail)
                        out.write(tail)
        except MediaError:
            raw.unlink(missing_ok=True)
            raise
        except (aiohttp.ClientError, TimeoutError):
            raw.unlink(missing_ok=True)
            raise MediaError("fichier indisponible (erreur réseau)") from None
        if decryptor is not None:
            expected = unpaddedbase64.decode_base64(source.ciphertext_sha256 or "")
            if not hmac.compare_digest(cipher_hash.digest(), expected):
                raw.unlink(missing_ok=True)
                raise MediaError("fichier altéré (empreinte incorrecte)")
        return FetchedMedia(raw, size, plain_hash.hexdigest())
