"""The operator's view through `cercle`: a backup killed midway (SIGKILL) leaves the previous
archive valid and named in LATEST; refusals are French lines, never tracebacks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backup import layout
from backup.crypto import load_private_key
from backup.restore import read_archive
from backup.snapshot import make_backup
from tests.backup_restore.conftest import Deployment, add_media
from tests.cercle.test_run import cercle


def env_for(deployment: Deployment) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERCLE")}
    env["CERCLE__VAR_DIR"] = str(deployment.var)
    env["CERCLE__BACKUP__DIRECTORY"] = str(deployment.backups)
    return env


def pool_files(directory: Path) -> set[Path]:
    return set((directory / "blobs").glob("*/*")) if (directory / "blobs").exists() else set()


def test_sigkill_midway_keeps_the_previous_archive_valid_and_latest(
    deployment: Deployment,
) -> None:
    env = env_for(deployment)
    first = cercle(env, "backup")
    assert first.returncode == 0, first.stderr
    latest = (deployment.backups / layout.LATEST).read_text()
    before = pool_files(deployment.backups)
    for i in range(60):
        add_media(deployment.var, f"big{i:03d}MEDIA", os.urandom(1 << 20))

    proc = subprocess.Popen(
        [sys.executable, "-m", "cercle", "backup"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        partial = list(deployment.backups.glob(".cercle-*.partial"))
        if partial and len(pool_files(deployment.backups) - before) >= 2:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "la sauvegarde a fini avant d'être interrompue"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    assert (deployment.backups / layout.LATEST).read_text() == latest
    assert [p.name for p in layout.archives(deployment.backups)] == [latest]
    key = load_private_key(deployment.key_file)
    read_archive(deployment.backups / latest, key, lambda _: None)  # still valid
    verify = cercle(
        env, "backup", "--verify", str(deployment.backups), "--key", str(deployment.key_file)
    )
    assert verify.returncode == 0 and latest in verify.stdout

    # the next backup cleans what was left and completes
    again = make_backup(deployment.profile, deployment.backups, lambda _: None)
    assert not list(deployment.backups.glob(".cercle-*.partial"))
    assert not list(deployment.backups.glob("blobs/*/.*.tmp"))
    assert (deployment.backups / layout.LATEST).read_text() == again.archive.name
    assert read_archive(again.archive, key, lambda _: None).files >= 60


def test_cli_refusals_are_french_lines(deployment: Deployment, tmp_path: Path) -> None:
    env = env_for(deployment)
    assert cercle(env, "backup").returncode == 0
    archive = layout.archives(deployment.backups)[-1]
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    for args, expected in [
        (("backup", "--verify", str(archive), "--key", str(deployment.key_file)), "corrompue"),
        (("backup", "--verify", str(archive)), "--key"),
        (("restore", str(archive), "--key", str(deployment.key_file)), "contient déjà"),
        (("backup", "--init-key", str(deployment.var / "k")), "gardée à part"),
        (("backup", "--to", str(archive)), "n'est pas un répertoire"),
    ]:
        out = cercle(env, *args)
        assert out.returncode == 1, args
        assert out.stderr.startswith("erreur : ") and expected in out.stderr, out.stderr
        assert "Traceback" not in out.stderr


def test_an_archive_from_a_newer_synapse_is_refused(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("backup.snapshot.versions", lambda: {"cercle": "9.0", "synapse": "99.1.0"})
    archive = make_backup(deployment.profile, deployment.backups, lambda _: None).archive
    monkeypatch.undo()
    with pytest.raises(Exception, match="plus récent que celui installé"):
        read_archive(archive, load_private_key(deployment.key_file), lambda _: None)
