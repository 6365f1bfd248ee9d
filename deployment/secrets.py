"""Secrets generated once per deployment, stored under ``var/secrets`` with mode 0600.

Each secret is one file; the directory is 0700. A secret is never regenerated once it
exists (a second ``cercle up`` reuses everything), and never logged.
"""

from __future__ import annotations

import contextlib
import os
import secrets as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

# name -> number of random bytes (url-safe base64 text is stored)
_TOKENS: dict[str, int] = {
    "registration_shared_secret": 32,
    "macaroon_secret_key": 32,
    "form_secret": 32,
    "bot_password": 24,
    "bot_pickle_key": 32,
    "bot_cross_signing_key": 32,  # encrypts the bot's cross-signing private keys at rest
    "dossier_service_token": 32,  # the bot's service token towards the dossier
    "dossier_session_key": 32,  # signs the dossier's session cookies
    "admin_password": 24,  # the operator CLI's service admin account
}


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def read_or_create(directory: Path, name: str, factory: Callable[[], str]) -> str:
    """Return the secret ``name``, creating it with ``factory()`` the first time."""
    path = directory / name
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process created it first
            _write_private(path, factory())
    os.chmod(path, 0o600)
    return path.read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class BotAccountSecrets:
    password: str = field(repr=False)
    pickle_key: str = field(repr=False)
    cross_signing_key: str = field(repr=False)


@dataclass(frozen=True)
class Secrets:
    directory: Path
    registration_shared_secret: str = field(repr=False)
    macaroon_secret_key: str = field(repr=False)
    form_secret: str = field(repr=False)
    bot_password: str = field(repr=False)
    bot_pickle_key: str = field(repr=False)
    bot_cross_signing_key: str = field(repr=False)
    dossier_service_token: str = field(repr=False)
    dossier_session_key: str = field(repr=False)
    admin_password: str = field(repr=False)

    @property
    def signing_key_path(self) -> Path:
        return self.directory / "synapse.signing.key"

    def path_of(self, name: str) -> Path:
        return self.directory / name

    def bot_account(self, shard: int) -> BotAccountSecrets:
        """The secrets of the bot's account for ``shard`` (bots/shards.py): the front's are
        the deployment's ``bot_*``; shard k's are made the first time it is asked for."""
        if shard == 1:
            return BotAccountSecrets(
                self.bot_password, self.bot_pickle_key, self.bot_cross_signing_key
            )
        values = [
            read_or_create(
                self.directory,
                f"bot{shard}_{name}",
                partial(_random.token_urlsafe, _TOKENS[f"bot_{name}"]),
            )
            for name in ("password", "pickle_key", "cross_signing_key")
        ]
        return BotAccountSecrets(*values)

    @classmethod
    def load_or_create(cls, var_dir: Path) -> Secrets:
        directory = var_dir / "secrets"
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        values = {
            name: read_or_create(directory, name, partial(_random.token_urlsafe, size))
            for name, size in _TOKENS.items()
        }
        read_or_create(directory, "synapse.signing.key", _synapse_signing_key)
        return cls(directory=directory, **values)


def _synapse_signing_key() -> str:
    from signedjson.key import encode_signing_key_base64, generate_signing_key

    key = generate_signing_key("a_" + _random.token_hex(2))
    return f"{key.alg} {key.version} {encode_signing_key_base64(key)}\n"
