"""SQLite databases stored by page (backup/pages.py): an incremental backup writes only the
pages that changed, every archive still restores alone, rotation never takes a page an
archive needs, and a lost or altered pack is told, never restored silently."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from backup import layout, pages
from backup.crypto import (
    ArchiveError,
    PrivateKey,
    generate_key_pair,
    load_private_key,
    load_public_key,
)
from backup.restore import read_archive, restore_archive
from backup.rotation import prune
from backup.snapshot import make_backup, snapshot_sqlite
from tests.backup_restore.conftest import Deployment, make_profile, sqlite_db


def quiet(_: str) -> None:
    return None


def rows(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT id, body FROM t ORDER BY id").fetchall()


def synapse_entry(manifest: dict) -> dict:
    store = next(s for s in manifest["stores"] if s["name"] == "synapse-db")
    return store["entries"][0]


def packs_of(manifest: dict) -> list[str]:
    return list(synapse_entry(manifest)["pages"]["packs"])


def test_a_changed_row_writes_a_few_pages_and_both_archives_restore(
    deployment: Deployment, tmp_path: Path
) -> None:
    synapse = deployment.var / "synapse" / "homeserver.db"
    sqlite_db(synapse, 40_000)  # ~190 pages of rows
    first = make_backup(deployment.profile, deployment.backups, quiet)
    before = rows(synapse)
    with sqlite3.connect(synapse) as db:
        db.execute("UPDATE t SET body = 'modifiée' WHERE id = 5000")
    second = make_backup(deployment.profile, deployment.backups, quiet)

    entry = synapse_entry(second.manifest)
    total_pages = entry["size"] // entry["pages"]["page_size"]
    assert total_pages > 150
    assert 0 < second.manifest["totals"]["new_blob_bytes"] <= 8 * entry["pages"]["page_size"]
    assert set(packs_of(first.manifest)) < set(packs_of(second.manifest))

    key = load_private_key_of(deployment)
    for archive, expected in [(first.archive, before), (second.archive, rows(synapse))]:
        target = make_profile(tmp_path / archive.name / "var", deployment.backups)
        restore_archive(target, archive, key, quiet)
        assert rows(target.var_dir / "synapse" / "homeserver.db") == expected
        with sqlite3.connect(target.var_dir / "synapse" / "homeserver.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_rotation_keeps_the_packs_a_kept_archive_needs(
    deployment: Deployment, tmp_path: Path
) -> None:
    synapse = deployment.var / "synapse" / "homeserver.db"
    sqlite_db(synapse, 5_000)
    first = make_backup(deployment.profile, deployment.backups, quiet)
    sqlite_db(synapse, 10)
    second = make_backup(deployment.profile, deployment.backups, quiet)
    # the first archive goes: the second still needs the first's pack (unchanged pages)
    for suffix in ("", ".sha256", ".blobs"):
        layout.sidecar(first.archive, suffix).unlink()
    prune(deployment.backups, keep_daily=1, keep_weekly=0)
    for name in packs_of(second.manifest):
        assert layout.blob_path(deployment.backups, name).is_file()
    target = make_profile(tmp_path / "clone" / "var", deployment.backups)
    restore_archive(target, second.archive, load_private_key_of(deployment), quiet)
    assert rows(target.var_dir / "synapse" / "homeserver.db") == rows(synapse)


def test_a_lost_pack_is_written_again_and_said_missing_for_the_archives_that_named_it(
    deployment: Deployment,
) -> None:
    first = make_backup(deployment.profile, deployment.backups, quiet)
    (pack,) = packs_of(first.manifest)
    layout.blob_path(deployment.backups, pack).unlink()
    key = load_private_key_of(deployment)
    with pytest.raises(ArchiveError, match="contenu manquant"):
        read_archive(first.archive, key, quiet)
    # the server's index no longer trusts the lost pack: the next archive is whole again
    second = make_backup(deployment.profile, deployment.backups, quiet)
    assert pack not in packs_of(second.manifest)
    read_archive(second.archive, key, quiet)


def test_an_altered_pack_is_refused(deployment: Deployment) -> None:
    result = make_backup(deployment.profile, deployment.backups, quiet)
    (pack,) = packs_of(result.manifest)
    path = layout.blob_path(deployment.backups, pack)
    data = bytearray(path.read_bytes())
    data[200] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="corrompue"):
        read_archive(result.archive, load_private_key_of(deployment), quiet)


def test_when_old_packs_are_mostly_replaced_pages_the_database_is_written_whole(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "sauvegardes"
    recipient = load_public_key(generate_key_pair()[1])
    database, copy = tmp_path / "base.db", tmp_path / "copie.db"
    sqlite_db(database, 2_000)
    with sqlite3.connect(database) as db:  # a table no change touches
        db.execute("CREATE TABLE u AS SELECT * FROM t")

    def store(max_packed: float = pages.MAX_PACKED) -> pages.PagedDatabase:
        snapshot_sqlite(database, copy)  # as a backup does: the backup API's copy
        index = pages.PageIndex.open(tmp_path / "pages.db", directory)
        stored = pages.store_database(copy, index, directory, recipient, "clé", max_packed)
        index.save()
        return stored

    first = store()
    assert first.new_pages == first.size // first.page_size > 5
    with sqlite3.connect(database) as db:  # every page of rows changes
        db.execute("UPDATE t SET body = body || ' bis'")
    second = store()
    assert 0 < second.new_pages < second.size // second.page_size  # u's pages are kept
    assert len(second.packs) == 2
    # the old pack is now mostly dead weight: under a low bound the database goes whole
    third = store(max_packed=1.0)
    assert third.new_pages == third.size // third.page_size and len(third.packs) == 1


def load_private_key_of(deployment: Deployment) -> PrivateKey:
    return load_private_key(deployment.key_file)


def test_rotation_waits_for_a_backup_writing_into_the_same_directory(
    deployment: Deployment,
) -> None:
    import threading

    make_backup(deployment.profile, deployment.backups, quiet)
    done = threading.Event()
    with layout.directory_lock(deployment.backups, wait=False) as held:  # a backup running
        assert held
        worker = threading.Thread(target=lambda: (prune(deployment.backups, 1, 0), done.set()))
        worker.start()
        assert not done.wait(0.5)  # its new blobs, named by no archive yet, stay
    worker.join(timeout=30)
    assert done.is_set()


def test_verify_without_room_to_rebuild_a_database_says_so(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    result = make_backup(deployment.profile, deployment.backups, quiet)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "absent"))  # TMPDIR unusable
    with pytest.raises(ArchiveError, match="non reconstituée : écriture impossible"):
        read_archive(result.archive, load_private_key_of(deployment), quiet)
