"""Rotation (N daily / M weekly), when a scheduled backup is due, and what `cercle status`
says about backups. Pure functions first, then on a synthetic deployment."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from backup import layout
from backup.crypto import load_private_key
from backup.restore import read_archive
from backup.rotation import archives_to_keep, prune
from backup.schedule import BackupScheduler, is_due, record_attempt, status
from backup.snapshot import make_backup
from cercle.commands_run import backup_line
from deployment.profile import load_profile
from tests.backup_restore.conftest import Deployment, add_document

T0 = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)  # a Monday, 02:30 in Paris


def test_keeps_newest_of_each_recent_day_and_week() -> None:
    # 40 days, two backups a day
    times = [T0 + timedelta(days=d, hours=h) for d in range(40) for h in (0, 12)]
    kept = archives_to_keep(times, keep_daily=7, keep_weekly=4)
    newest = max(times)
    assert newest in kept
    days = {t.date() for t in kept if t > newest - timedelta(days=7)}
    assert len(days) == 7
    # one per day only (the newest of the day)
    assert all(t.hour == 13 for t in kept)
    assert len(kept) <= 7 + 4
    assert min(kept) >= newest - timedelta(weeks=4)
    assert archives_to_keep([], 7, 4) == set()


def test_due_once_per_day_at_the_paris_time() -> None:
    at = time(2, 30)
    assert is_due(None, T0, at)
    assert not is_due(T0, T0 + timedelta(hours=23), at)
    assert is_due(T0, T0 + timedelta(hours=24), at)
    # 01:00 UTC in winter is 02:00 in Paris: not yet today's slot, yesterday's is done
    assert not is_due(T0, T0 + timedelta(days=1, minutes=-30), at)
    # a failure is tried again every hour, not the next day
    assert not is_due(T0, T0 + timedelta(minutes=59), at, failed=True)
    assert is_due(T0, T0 + timedelta(hours=1), at, failed=True)


def test_prune_removes_old_archives_and_unreferenced_contents(deployment: Deployment) -> None:
    first = make_backup(deployment.profile, deployment.backups, lambda _: None).archive
    add_document(deployment.var, b"%PDF-1.4 seulement dans la seconde")
    second = make_backup(deployment.profile, deployment.backups, lambda _: None).archive
    # make the first one a day older
    older = deployment.backups / layout.archive_name(
        layout.archive_time(first) - timedelta(days=1)  # type: ignore[operator]
    )
    for suffix in ("", ".blobs", ".sha256"):
        layout.sidecar(first, suffix).rename(layout.sidecar(older, suffix))
    blobs_before = set((deployment.backups / "blobs").glob("*/*"))
    removed = prune(deployment.backups, keep_daily=1, keep_weekly=1)
    assert removed == [older] and not older.exists()
    assert set((deployment.backups / "blobs").glob("*/*")) == blobs_before  # all still used
    read_archive(second, load_private_key(deployment.key_file), lambda _: None)


def test_status_reports_last_success_failure_and_next(deployment: Deployment) -> None:
    state = status(deployment.profile)
    assert state["last_success"] is None and state["scheduled"] is False
    assert "aucune" in backup_line(state) and "pas de sauvegarde planifiée" in backup_line(state)
    record_attempt(deployment.profile, archive="cercle-x.cbk")
    record_attempt(deployment.profile, error="pg_dump a échoué")
    line = backup_line(status(deployment.profile))
    assert "ÉCHEC" in line and "pg_dump a échoué" in line


def test_scheduler_starts_one_backup_when_due(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the supervisor's environment, inherited by the backup it starts
    monkeypatch.setenv("CERCLE__VAR_DIR", str(deployment.var))
    monkeypatch.setenv("CERCLE__BACKUP__DIRECTORY", str(deployment.backups))
    monkeypatch.setenv("CERCLE__BACKUP__SCHEDULE__ENABLED", "true")
    profile = load_profile()
    log = deployment.var / "backup.log"
    scheduler = BackupScheduler(profile, log)
    scheduler.tick(T0)
    proc = scheduler._proc
    assert proc is not None
    scheduler.tick(T0)  # one at a time
    assert scheduler._proc is proc
    assert proc.wait(timeout=120) == 0, log.read_text()
    scheduler.tick(T0 + timedelta(hours=1))  # done for today
    assert scheduler._proc is proc
    assert status(profile)["last_archive"] == (deployment.backups / layout.LATEST).read_text()
