"""The directory as the mapping provider sees it: read an entry, record a link.

Runs in Synapse's thread pool (`ModuleApi.defer_to_thread`): one short-lived sqlite3
connection per call, so nothing is shared between threads. The link and its audit row are
written by the directory's own `accounts.link` (one implementation with ``cercle annuaire
lier``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from dossier_service.directory import store
from dossier_service.directory.accounts import link
from dossier_service.directory.search import Directory

from .claims import DirectoryEntry, is_rpps

# A link made by e-mail (`cercle annuaire lier`: an account's e-mail equal to one practice
# e-mail) is a guess: a shared cabinet address may be a secretary's account. PSC is never led
# into such an account (it gets its own, which then replaces the link), and the password
# policy does not take it for the professional's.
UNTRUSTED_LINK_SOURCES = frozenset({"email"})


def lookup(database: str, national_id: str) -> DirectoryEntry | None:
    """The directory's entry for ``national_id`` (None if absent or no directory yet)."""
    if not Path(database).exists():
        return None
    with contextlib.closing(store.connect(database)) as conn:
        hit = Directory(conn).professional(national_id)
        if hit is None or hit.national_id != national_id:
            return None
        (active,) = conn.execute(
            "SELECT active FROM professional WHERE national_id = ?", (national_id,)
        ).fetchone()
        source = conn.execute(
            "SELECT source FROM account_link WHERE national_id = ?", (national_id,)
        ).fetchone()
        trusted = source is not None and source[0] not in UNTRUSTED_LINK_SOURCES
        return DirectoryEntry(
            active=bool(active),
            display_name=hit.display_name,
            linked_mxid=hit.mxid if trusted else None,
        )


def linked_to_active_rpps(database: str, mxid: str) -> bool:
    """Whether ``mxid`` is the account of an active RPPS professional of the directory."""
    if not Path(database).exists():
        return False
    with contextlib.closing(store.connect(database)) as conn:
        row = conn.execute(
            "SELECT p.national_id, p.active, l.source FROM account_link l "
            "JOIN professional p ON p.national_id = l.national_id WHERE l.mxid = ?",
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
