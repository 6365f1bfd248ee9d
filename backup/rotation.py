"""Which archives to keep (N daily, M weekly), and removing the others with the pool blobs
no kept archive refers to. The choice is a pure function of the archives' times."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from backup import layout
from deployment.conventions import PARIS


def archives_to_keep(times: list[datetime], keep_daily: int, keep_weekly: int) -> set[datetime]:
    """The newest archive of each of the ``keep_daily`` latest days that have one, and of
    each of the ``keep_weekly`` latest ISO weeks (days and weeks as lived in Paris). The
    newest archive is always kept."""
    if not times:
        return set()
    newest_first = sorted(times, reverse=True)
    kept = {newest_first[0]}
    days: dict[object, datetime] = {}
    weeks: dict[object, datetime] = {}
    for when in newest_first:
        local = when.astimezone(PARIS)
        days.setdefault(local.date(), when)
        weeks.setdefault(local.isocalendar()[:2], when)
    kept.update(list(days.values())[:keep_daily])
    kept.update(list(weeks.values())[:keep_weekly])
    return kept


def prune(directory: Path, keep_daily: int, keep_weekly: int) -> list[Path]:
    """Delete the archives not kept, then the pool blobs that no kept archive names —
    holding the directory's lock, so that a backup writing new blobs (not yet named by
    any archive) is never pruned under its feet."""
    with layout.directory_lock(directory, wait=True):
        return _prune(directory, keep_daily, keep_weekly)


def _prune(directory: Path, keep_daily: int, keep_weekly: int) -> list[Path]:
    found = {t: p for p in layout.archives(directory) if (t := layout.archive_time(p))}
    kept = archives_to_keep(list(found), keep_daily, keep_weekly)
    removed = []
    for when, path in found.items():
        if when not in kept:
            for suffix in ("", ".sha256", ".blobs"):
                layout.sidecar(path, suffix).unlink(missing_ok=True)
            removed.append(path)
    referenced: set[str] = set()
    for when in kept:
        refs = layout.sidecar(found[when], ".blobs")
        if not refs.exists():
            return removed  # an archive without its list: keep every blob
        referenced.update(refs.read_text(encoding="utf-8").split())
    pool = directory / "blobs"
    if pool.is_dir():
        for blob in pool.glob("*/*"):
            if not blob.name.startswith(".") and blob.name not in referenced:
                blob.unlink()
    return removed
