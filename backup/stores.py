"""Every store a Cercle deployment holds, declared in ONE place.

A new component with state (the mail bridge, …) adds one line to :func:`declared_stores`;
backup, verify and restore then handle it without further change.

Kinds:
- ``sqlite``: one SQLite database, snapshotted online with SQLite's backup API;
- ``postgres``: a PostgreSQL database, snapshotted with ``pg_dump`` (restored with
  ``pg_restore``);
- ``files``: a directory of small files copied into the archive (SQLite files found there
  are snapshotted with the backup API, their -wal/-shm/-journal companions skipped);
- ``blobs``: a directory of immutable files (media, documents) stored once per content
  hash in the backup directory's pool, so a new backup only copies what is new.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from bots.config import BotConfig
from deployment.profile import Profile
from dossier_service.config import default_database_url, normalise_database_url
from dossier_service.directory.store import legacy_database_path
from homeserver.render import homeserver_dir

Kind = Literal["sqlite", "postgres", "files", "blobs"]


@dataclass(frozen=True)
class Store:
    name: str
    kind: Kind
    path: Path | None = None  # sqlite, files, blobs
    dsn: str | None = None  # postgres: a libpq URL
    optional: bool = False  # absent on a deployment that does not run the component

    def present(self) -> bool:
        if self.kind == "postgres":
            return True
        return self.path is not None and self.path.exists()


def _synapse_database(profile: Profile) -> Store:
    db = profile.section("homeserver")["database"]
    if db["engine"] == "postgres":
        auth = quote(str(db["user"]), safe="")
        if db.get("password"):
            auth += ":" + quote(str(db["password"]), safe="")
        dsn = f"postgresql://{auth}@{db['host']}:{db['port']}/{db['name']}"
        return Store("synapse-db", "postgres", dsn=dsn)
    return Store("synapse-db", "sqlite", path=homeserver_dir(profile) / "homeserver.db")


def _dossier_database(profile: Profile) -> Store:
    section = profile.section("dossier")
    url = normalise_database_url(
        str(section.get("database_url") or default_database_url(profile.var_dir))
    )
    if url.startswith("postgresql+asyncpg://"):
        return Store("dossier-db", "postgres", dsn="postgresql://" + url.split("://", 1)[1])
    return Store("dossier-db", "sqlite", path=Path(url.split(":///", 1)[1]), optional=True)


def _bot_folders(profile: Profile) -> list[Store]:
    """Each shard's folder of the bot (``bot.shards``: ``bot``, then ``bot-2`` …): its session,
    crypto store and ledger, named after the folder (``var/bot``, ``var/bot-2`` …)."""
    configs = (
        BotConfig.from_profile(profile, shard=k) for k in range(1, len(profile.bot_user_ids) + 1)
    )
    return [Store(c.data_dir.name, "files", path=c.data_dir, optional=True) for c in configs]


def declared_stores(profile: Profile) -> list[Store]:
    var = profile.var_dir
    dossier = profile.section("dossier")
    # Order matters (each store is snapshotted in turn, while Cercle runs): the bot's sync
    # token and feed cursor are taken BEFORE the databases they point into, so after a
    # restore they are never ahead of them (the bot reads a few events again, it never
    # skips any); media and documents are written before the rows naming them, so they are
    # taken AFTER their database.
    return [
        Store("secrets", "files", path=var / "secrets"),
        *_bot_folders(profile),
        _synapse_database(profile),
        Store("synapse-media", "blobs", path=var / "synapse" / "media_store"),
        _dossier_database(profile),
        Store(
            "dossier-documents",
            "blobs",
            path=Path(dossier.get("documents_dir") or var / "dossier" / "documents"),
            optional=True,
        ),
        # The directory is in the dossier's database since issue 14; a deployment upgraded but
        # not started since still has its own annuaire.db (copied in at the next start)
        Store(
            "annuaire-db",
            "sqlite",
            path=legacy_database_path(profile.data.get("annuaire") or {}, var),
            optional=True,
        ),
        # The mail bridge's state (bridges/mail: session, crypto store, ledger, bridge.sqlite3
        # with the mailboxes' UIDs); its vault key is in var/secrets, backed up with them.
        Store("mail", "files", path=var / "mail", optional=True),
    ]
