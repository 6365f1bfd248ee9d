"""Encrypted containers: a libsodium sealed box carries a fresh stream key, then
``crypto_secretstream_xchacha20poly1305`` encrypts the data in authenticated chunks.

Backups are written with the operator's *public* key only (kept in ``var/secrets``); the
private key stays apart from the data (a file the operator keeps elsewhere) and is needed
to verify or restore. Every chunk is authenticated and the last one carries the FINAL tag,
so a flipped byte, a truncated file and a wrong key are each told apart.

Layout: MAGIC (8) | version (1) | sealed stream key (80) | stream header (24) |
chunks of (u32 length | ciphertext).
"""

from __future__ import annotations

import base64
import struct
from pathlib import Path
from typing import BinaryIO

import nacl.bindings as sodium
import nacl.exceptions
from nacl.public import PrivateKey, PublicKey, SealedBox

from deployment.conventions import write_private as write_private  # one place, re-exported

MAGIC = b"CERCLEBK"
CONTAINER_VERSION = 1
CHUNK = 1 << 20
_SEALED_KEY = sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES + 48
_HEADER = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
_ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
PRIVATE_KEY_PREFIX = "cercle-backup-secret-1:"
PUBLIC_KEY_PREFIX = "cercle-backup-public-1:"


class ArchiveError(Exception):
    """An archive that cannot be read; the message is French, for the operator."""


class WrongKey(ArchiveError):
    pass


def generate_key_pair() -> tuple[str, str]:
    """(private key text, public key text)."""
    key = PrivateKey.generate()
    return (
        PRIVATE_KEY_PREFIX + base64.b64encode(bytes(key)).decode(),
        PUBLIC_KEY_PREFIX + base64.b64encode(bytes(key.public_key)).decode(),
    )


def _decode(text: str, prefix: str, what: str) -> bytes:
    text = text.strip()
    if not text.startswith(prefix):
        raise ArchiveError(f"{what} illisible (ce n'est pas une clé de sauvegarde Cercle)")
    try:
        raw = base64.b64decode(text[len(prefix) :], validate=True)
    except ValueError as exc:
        raise ArchiveError(f"{what} illisible") from exc
    if len(raw) != 32:
        raise ArchiveError(f"{what} illisible")
    return raw


def load_public_key(text: str) -> PublicKey:
    return PublicKey(_decode(text, PUBLIC_KEY_PREFIX, "clé publique de sauvegarde"))


def load_private_key(path: Path) -> PrivateKey:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WrongKey(f"clé de sauvegarde introuvable ou illisible : {path}") from exc
    return PrivateKey(_decode(text, PRIVATE_KEY_PREFIX, "clé de sauvegarde"))


class EncryptingWriter:
    """A write-only file object: what is written comes out encrypted into ``out``."""

    def __init__(self, out: BinaryIO, recipient: PublicKey) -> None:
        self._out = out
        key = sodium.crypto_secretstream_xchacha20poly1305_keygen()
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        header = sodium.crypto_secretstream_xchacha20poly1305_init_push(self._state, key)
        out.write(MAGIC + bytes([CONTAINER_VERSION]) + SealedBox(recipient).encrypt(key) + header)
        self._buffer = bytearray()
        self.plain_bytes = 0

    def write(self, data: bytes) -> int:
        self._buffer += data
        self.plain_bytes += len(data)
        while len(self._buffer) >= CHUNK:
            self._push(bytes(self._buffer[:CHUNK]), _MESSAGE)
            del self._buffer[:CHUNK]
        return len(data)

    def _push(self, plain: bytes, tag: int) -> None:
        cipher = sodium.crypto_secretstream_xchacha20poly1305_push(self._state, plain, None, tag)
        self._out.write(struct.pack(">I", len(cipher)) + cipher)

    def close(self) -> None:
        self._push(bytes(self._buffer), _FINAL)
        self._buffer.clear()

    def flush(self) -> None:  # tarfile calls it; chunks are pushed when full
        return None


class DecryptingReader:
    """A read-only file object over an encrypted container; refuses anything altered."""

    def __init__(self, src: BinaryIO, key: PrivateKey) -> None:
        self._src = src
        head = src.read(len(MAGIC) + 1)
        if len(head) < len(MAGIC) + 1 or head[: len(MAGIC)] != MAGIC:
            raise ArchiveError("ce fichier n'est pas une archive de sauvegarde Cercle")
        if head[-1] != CONTAINER_VERSION:
            raise ArchiveError(
                f"format d'archive incompatible (version {head[-1]}, attendue {CONTAINER_VERSION})"
            )
        sealed = src.read(_SEALED_KEY)
        try:
            stream_key = SealedBox(key).decrypt(sealed)
        except nacl.exceptions.CryptoError as exc:
            raise WrongKey(
                "clé de sauvegarde incorrecte : cette archive a été chiffrée pour une autre clé"
            ) from exc
        header = src.read(_HEADER)
        if len(header) != _HEADER:
            raise ArchiveError("archive tronquée")
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, stream_key)
        self._buffer = bytearray()
        self._final = False

    def _pull(self) -> None:
        raw = self._src.read(4)
        if len(raw) != 4:
            raise ArchiveError("archive tronquée (fin manquante)")
        (length,) = struct.unpack(">I", raw)
        if length < _ABYTES or length > CHUNK + _ABYTES:
            raise ArchiveError("archive corrompue")
        cipher = self._src.read(length)
        if len(cipher) != length:
            raise ArchiveError("archive tronquée (fin manquante)")
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(self._state, cipher)
        except nacl.exceptions.CryptoError as exc:
            raise ArchiveError("archive corrompue (contrôle d'intégrité en échec)") from exc
        self._buffer += plain
        if tag == _FINAL:
            self._final = True
            if self._src.read(1):
                raise ArchiveError("archive corrompue (données après la fin)")

    def read(self, size: int = -1) -> bytes:
        while not self._final and (size < 0 or len(self._buffer) < size):
            self._pull()
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    def drain(self) -> None:
        """Read to the end: the FINAL tag must be there (truncation shows here)."""
        while not self._final:
            self._pull()
            self._buffer.clear()
