"""Backup → verify → restore on a synthetic deployment (every kind of store, real SQLite,
real encryption), and every way an archive must be refused."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from backup import layout
from backup.crypto import ArchiveError, WrongKey, generate_key_pair, load_private_key
from backup.restore import check_compatible, read_archive, restore_archive
from backup.snapshot import BackupError, make_backup
from deployment.profile import Profile, load_profile
from tests.backup_restore.conftest import (
    Deployment,
    add_document,
    add_media,
    make_profile,
    sqlite_db,
)


def quiet(_: str) -> None:
    return None


def tree(root: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.endswith(("-wal", "-shm")):
            rel = path.relative_to(root).as_posix()
            if rel.startswith("backup/"):  # the backup's own working state
                continue
            if path.suffix == ".db":
                with sqlite3.connect(path) as db:
                    out[rel] = repr(db.execute("SELECT * FROM t ORDER BY id").fetchall()).encode()
            else:
                out[rel] = path.read_bytes()
    return out


def test_backup_restores_every_store_identically_with_private_modes(
    deployment: Deployment, tmp_path: Path
) -> None:
    result = make_backup(deployment.profile, deployment.backups, quiet)
    assert (deployment.backups / layout.LATEST).read_text() == result.archive.name
    names = {s["name"]: s for s in result.manifest["stores"]}
    assert names["mail"]["present"] is False  # declared, absent on this deployment
    assert names["synapse-media"]["entries"][0]["sha256"]
    # the archive and the pool hold no clear text
    blobs = [p for p in (deployment.backups / "blobs").rglob("*") if p.is_file()]
    assert blobs  # the pool holds the stores' files …
    assert b"PDF" not in result.archive.read_bytes()
    for blob in blobs:  # … none of them in clear
        assert b"compte rendu" not in blob.read_bytes() and b"%PDF" not in blob.read_bytes()

    key = load_private_key(deployment.key_file)
    checked = read_archive(result.archive, key, quiet)
    assert checked.files == result.manifest["totals"]["files"]

    fresh = make_profile(tmp_path / "clone" / "var", deployment.backups)
    restore_archive(fresh, result.archive, key, quiet)
    assert tree(fresh.var_dir) == tree(deployment.var)
    for path in fresh.var_dir.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_each_bot_shards_folder_is_backed_up_and_restored_where_that_shard_runs(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Issue 15, ``bot.shards: 2``: var/bot-2 (the second account's session, crypto store,
    ledger) goes into the archive beside var/bot; a deployment with one account refuses it,
    naming the setting."""

    def sharded(var: Path, shards: int) -> Profile:
        extra = {"directory": str(deployment.backups)}
        return load_profile(
            env={}, extra={"var_dir": str(var), "backup": extra, "bot": {"shards": shards}}
        )

    sqlite_db(deployment.var / "bot-2" / "store" / "@cercle-bot-2:cercle.localhost_X.db", 4)
    (deployment.var / "bot-2" / "session.json").write_text('{"device_id": "CERCLEBOT"}')
    result = make_backup(sharded(deployment.var, 2), deployment.backups, quiet)
    bots = [s for s in result.manifest["stores"] if s["name"].startswith("bot")]
    assert [(s["name"], s["present"]) for s in bots] == [("bot", True), ("bot-2", True)]

    key = load_private_key(deployment.key_file)
    with pytest.raises(ArchiveError, match=r"bot-2\) : réglez bot\.shards à 2 au moins"):
        restore_archive(sharded(tmp_path / "clone" / "var", 1), result.archive, key, quiet)
    # refused before anything was placed: the operator sets bot.shards and restores again
    fresh = sharded(tmp_path / "clone" / "var", 2)
    restore_archive(fresh, result.archive, key, quiet)
    assert tree(fresh.var_dir) == tree(deployment.var)


def test_incremental_backup_writes_only_new_contents(deployment: Deployment) -> None:
    first = make_backup(deployment.profile, deployment.backups, quiet)
    # a medium, a document, and one pack of pages for each of the three SQLite databases
    assert first.manifest["totals"]["new_blobs"] == 2 + 3
    add_document(deployment.var, b"%PDF-1.4 nouvelle ordonnance")
    second = make_backup(deployment.profile, deployment.backups, quiet)
    assert second.manifest["totals"]["new_blobs"] == 1  # the databases did not change
    assert second.archive != first.archive
    # both archives restore: the pool serves them both
    key = load_private_key(deployment.key_file)
    assert (
        read_archive(first.archive, key, quiet).files
        < read_archive(second.archive, key, quiet).files
    )


def test_wrong_key_corruption_truncation_and_missing_blob_are_refused(
    deployment: Deployment, tmp_path: Path
) -> None:
    archive = make_backup(deployment.profile, deployment.backups, quiet).archive
    key = load_private_key(deployment.key_file)
    other = tmp_path / "autre.key"
    other.write_text(generate_key_pair()[0])
    with pytest.raises(WrongKey, match="clé de sauvegarde incorrecte"):
        read_archive(archive, load_private_key(other), quiet)
    with pytest.raises(WrongKey, match="introuvable"):
        load_private_key(tmp_path / "absente.key")

    data = archive.read_bytes()
    flipped = tmp_path / "flipped.cbk"
    flipped.write_bytes(data[:-100] + bytes([data[-100] ^ 1]) + data[-99:])
    with pytest.raises(ArchiveError, match="corrompue"):
        read_archive(flipped, key, quiet)
    truncated = tmp_path / "truncated.cbk"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="tronquée"):
        read_archive(truncated, key, quiet)
    garbage = tmp_path / "garbage.cbk"
    garbage.write_bytes(b"PK\x03\x04 not a backup")
    with pytest.raises(ArchiveError, match="n'est pas une archive"):
        read_archive(garbage, key, quiet)

    for blob in (deployment.backups / "blobs").rglob("*"):
        if blob.is_file():
            blob.unlink()
            break
    with pytest.raises(ArchiveError, match="contenu manquant"):
        read_archive(archive, key, quiet)


def test_incompatible_versions_are_refused() -> None:
    installed = {"cercle": "0.1.0", "synapse": "1.163.2"}
    for manifest, expected in [
        ({"format": 3, "versions": {"synapse": "1.163.2"}}, "format 3"),
        ({"format": 1, "versions": {"synapse": "1.170.0"}}, "plus récent"),
    ]:
        with pytest.raises(ArchiveError, match=expected):
            check_compatible(manifest, installed)
    check_compatible({"format": 1, "versions": {"synapse": "1.150.0rc1"}}, installed)


def test_restore_refuses_a_deployment_that_has_data(deployment: Deployment) -> None:
    archive = make_backup(deployment.profile, deployment.backups, quiet).archive
    with pytest.raises(ArchiveError, match="contient déjà des données"):
        restore_archive(deployment.profile, archive, load_private_key(deployment.key_file), quiet)


def test_restore_refuses_another_server_name(deployment: Deployment, tmp_path: Path) -> None:
    archive = make_backup(deployment.profile, deployment.backups, quiet).archive
    other = load_profile(
        env={}, extra={"var_dir": str(tmp_path / "autre"), "server_name": "autre.localhost"}
    )
    with pytest.raises(ArchiveError, match="même server_name requis"):
        restore_archive(other, archive, load_private_key(deployment.key_file), quiet)
    assert not (tmp_path / "autre").exists() or not any((tmp_path / "autre").iterdir())


def test_backup_without_a_public_key_says_how_to_make_one(deployment: Deployment) -> None:
    (deployment.var / "secrets" / layout.PUBLIC_KEY_FILE).unlink()
    with pytest.raises(BackupError, match="--init-key"):
        make_backup(deployment.profile, deployment.backups, quiet)


def test_media_removed_after_the_snapshot_started_is_not_fatal(deployment: Deployment) -> None:
    add_media(deployment.var, "zzMEDIA2", b"x" * 10)
    result = make_backup(deployment.profile, deployment.backups, quiet)
    assert result.manifest["totals"]["new_blobs"] == 3 + 3  # + a pack per SQLite database
