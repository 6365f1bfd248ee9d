"""The directory as the mapping provider sees it: read an entry, record a link.

Runs in Synapse's thread pool (`ModuleApi.defer_to_thread`): one short-lived connection
per call to the dossier's database, which holds the directory (stdlib sqlite3, or Synapse's
own psycopg2 on PostgreSQL, through `dossier_service.directory.database`), so nothing is
shared between threads. The link and its audit row are written by the directory's own
`accounts.link` (one implementation with ``cercle annuaire lier``). Not through the
dossier's HTTP API: a login must not depend on the dossier process being up, and the
dossier would need a new privileged route and a credential held by Synapse.
"""

from __future__ import annotations

import contextlib
import os

from dossier_service.directory import database as store
from dossier_service.directory.accounts import link
from dossier_service.directory.search import Directory

from .claims import DirectoryEntry, is_rpps

# A link made by e-mail (`cercle annuaire lier`: an account's e-mail equal to one practice
# e-mail) is a guess: a shared cabinet address may be a secretary's account. PSC is never led
# into such an account (it gets its own, which then replaces the link), and the password
# policy does not take it for the professional's.
UNTRUSTED_LINK_SOURCES = frozenset({"email"})


def _available(database: str) -> bool:
    """A SQLite file not created yet (no dossier started) holds no directory."""
    path = store.sqlite_path(database)
    return path is None or os.path.exists(path)


def lookup(database: str, national_id: str) -> DirectoryEntry | None:
    """The directory's entry for ``national_id`` (None if absent or no directory yet).
    ``database``: the dossier's database URL (or a SQLite path)."""
    if not _available(database):
        return None
    with contextlib.closing(store.connect(database)) as conn:
        if not store.has_schema(conn):
            return None
        hit = Directory(conn).professional(national_id)
        if hit is None or hit.national_id != national_id:
            return None
        (active,) = conn.execute(
            "SELECT active FROM annuaire_professional WHERE national_id = ?", (national_id,)
        ).fetchone()
        source = conn.execute(
            "SELECT source FROM annuaire_account_link WHERE national_id = ?", (national_id,)
        ).fetchone()
        trusted = source is not None and source[0] not in UNTRUSTED_LINK_SOURCES
        return DirectoryEntry(
            active=bool(active),
            display_name=hit.display_name,
            linked_mxid=hit.mxid if trusted else None,
        )


def linked_to_active_rpps(database: str, mxid: str) -> bool:
    """Whether ``mxid`` is the account of an active RPPS professional of the directory."""
    if not _available(database):
        return False
    with contextlib.closing(store.connect(database)) as conn:
        if not store.has_schema(conn):
            return False
        row = conn.execute(
            "SELECT p.national_id, p.active, l.source FROM annuaire_account_link l "
            "JOIN annuaire_professional p ON p.national_id = l.national_id WHERE l.mxid = ?",
            (mxid,),
        ).fetchone()
    return (
        row is not None
        and bool(row[1])
        and is_rpps(str(row[0]))
        and row[2] not in UNTRUSTED_LINK_SOURCES
    )


def record_link(database: str, mxid: str, national_id: str, *, source: str) -> None:
    with contextlib.closing(store.connect(database)) as conn:
        link(conn, mxid, national_id, source=source, actor=mxid)
