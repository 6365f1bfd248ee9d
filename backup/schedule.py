"""Scheduled backups: the settings, when the next one is due, and the state kept for
`cercle status` (``var/backup/state.json``: last success, last failure, last archive)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from backup.crypto import write_private
from deployment.conventions import PARIS
from deployment.processes import stop_child
from deployment.profile import Profile, ProfileError


@dataclass(frozen=True)
class BackupSettings:
    directory: Path
    enabled: bool
    at: time  # Europe/Paris, every day
    keep_daily: int
    keep_weekly: int


def settings_from_profile(profile: Profile) -> BackupSettings:
    section = profile.data.get("backup") or {}
    schedule = section.get("schedule") or {}
    directory = Path(str(section.get("directory") or "backups"))
    try:
        hour, minute = (int(x) for x in str(schedule.get("time", "02:30")).split(":"))
        at = time(hour, minute)
    except ValueError as exc:
        raise ProfileError("backup.schedule.time : une heure HH:MM est attendue") from exc
    keep = {k: section.get(k, d) for k, d in (("keep_daily", 7), ("keep_weekly", 4))}
    for key, value in keep.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ProfileError(f"backup.{key} : un entier ≥ 1 est attendu")
    return BackupSettings(
        directory=directory if directory.is_absolute() else profile.root / directory,
        enabled=bool(schedule.get("enabled", False)),
        at=at,
        keep_daily=keep["keep_daily"],
        keep_weekly=keep["keep_weekly"],
    )


def last_slot(now: datetime, at: time) -> datetime:
    """The latest scheduled instant at or before ``now`` (``at`` is Paris time)."""
    local = now.astimezone(PARIS)
    slot = datetime.combine(local.date(), at, tzinfo=PARIS)
    if slot > local:
        slot = datetime.combine(local.date() - timedelta(days=1), at, tzinfo=PARIS)
    return slot.astimezone(UTC)


RETRY_AFTER = timedelta(hours=1)


def is_due(last_attempt: datetime | None, now: datetime, at: time, *, failed: bool = False) -> bool:
    """Once per daily slot; after a failure, again every hour until one succeeds."""
    if last_attempt is None or last_attempt < last_slot(now, at):
        return True
    return failed and now - last_attempt >= RETRY_AFTER


def _failed(state: dict[str, Any]) -> bool:
    return bool(state.get("last_failure")) and str(state.get("last_failure")) > str(
        state.get("last_success") or ""
    )


def state_path(profile: Profile) -> Path:
    return profile.var_dir / "backup" / "state.json"


def read_state(profile: Profile) -> dict[str, Any]:
    try:
        data = json.loads(state_path(profile).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_attempt(
    profile: Profile, *, archive: str | None = None, error: str | None = None
) -> None:
    state = read_state(profile)
    now = datetime.now(UTC).isoformat()
    state["last_attempt"] = now
    if error is None:
        state.update(last_success=now, last_archive=archive, last_error=None)
    else:
        state.update(last_failure=now, last_error=error)
    path = state_path(profile)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, json.dumps(state).encode())


def status(profile: Profile, now: datetime | None = None) -> dict[str, Any]:
    settings = settings_from_profile(profile)
    state = read_state(profile)
    now = now or datetime.now(UTC)
    next_due = None
    if settings.enabled:
        next_due = (last_slot(now, settings.at) + timedelta(days=1)).isoformat()
        last = state.get("last_attempt")
        if last is None or is_due(datetime.fromisoformat(last), now, settings.at):
            next_due = now.isoformat()
        elif _failed(state):
            next_due = (datetime.fromisoformat(last) + RETRY_AFTER).isoformat()
    return {
        "scheduled": settings.enabled,
        "directory": str(settings.directory),
        "keep_daily": settings.keep_daily,
        "keep_weekly": settings.keep_weekly,
        "last_success": state.get("last_success"),
        "last_archive": state.get("last_archive"),
        "last_failure": state.get("last_failure"),
        "last_error": state.get("last_error"),
        "next_due": next_due,
    }


class BackupScheduler:
    """Run by the supervisor's loop: starts ``cercle backup --scheduled`` when due, one at
    a time, in its own process (a long backup never blocks the supervision)."""

    def __init__(self, profile: Profile, log_path: Path) -> None:
        self.profile = profile
        self.settings = settings_from_profile(profile)
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._last_spawn: datetime | None = None

    def tick(self, now: datetime | None = None) -> None:
        if not self.settings.enabled or (self._proc and self._proc.poll() is None):
            return
        now = now or datetime.now(UTC)
        state = read_state(self.profile)
        last = state.get("last_attempt")
        attempts = [datetime.fromisoformat(last)] if last else []
        if self._last_spawn:
            attempts.append(self._last_spawn)
        latest = max(attempts) if attempts else None
        if not is_due(latest, now, self.settings.at, failed=_failed(state)):
            return
        self._last_spawn = now
        with open(self.log_path, "ab") as out:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "cercle", "backup", "--scheduled"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def stop(self) -> None:
        """A backup cut short leaves the previous archive valid and LATEST unchanged."""
        if self._proc is not None:
            stop_child(self._proc, timeout=10)
