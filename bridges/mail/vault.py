"""Mailbox passwords sealed at rest: AES-256-GCM, the key a deployment secret under
``var/secrets`` (mode 0600, never in the bridge's database, never logged), the owner's Matrix
id bound as associated data so a sealed password cannot be moved to another account."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from deployment.secrets import read_or_create

VAULT_SECRET = "mail_bridge_vault_key"
_VERSION = b"\x01"


class VaultError(Exception):
    """A sealed password that cannot be opened (another key, tampered with)."""


class CredentialVault:
    def __init__(self, key_text: str) -> None:
        self._aes = AESGCM(hashlib.sha256(key_text.encode()).digest())

    @classmethod
    def from_secrets_dir(cls, directory: Path) -> CredentialVault:
        return cls(
            read_or_create(
                directory, VAULT_SECRET, lambda: base64.urlsafe_b64encode(os.urandom(32)).decode()
            )
        )

    def seal(self, password: str, *, owner: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aes.encrypt(nonce, password.encode(), owner.encode())

    def open(self, blob: bytes, *, owner: str) -> str:
        if blob[:1] != _VERSION or len(blob) < 29:
            raise VaultError("format inconnu")
        try:
            return self._aes.decrypt(blob[1:13], blob[13:], owner.encode()).decode()
        except InvalidTag as exc:
            raise VaultError("mot de passe scellé illisible") from exc
