"""Streaming import of the RPPS extract into the directory database.

The file is read line by line (never held in memory), lines are grouped by professional
(``Identification nationale PP``), and each professional is written once per batch. The
whole import is one transaction: readers keep seeing the previous directory until it
commits, and a crash leaves the previous directory intact. Re-importing the same file
changes nothing; a newer extract updates, adds, and marks professionals absent from it as
inactive. A malformed line is rejected with its number and reason, never aborting.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .normalize import joined, pair_tokens, sort_key
from .rpps_format import Activity, FormatError, Layout, LineError, PersonLine
from .store import BULK_INDEXES

BATCH = 2000
MAX_REJECTS_KEPT = 1000

Progress = Callable[[int, int], None]  # (bytes read, total bytes)


@dataclass(frozen=True, slots=True)
class RejectedLine:
    number: int
    reason: str


@dataclass
class ImportReport:
    file_name: str
    lines: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    rejected: int = 0
    rejects: list[RejectedLine] = field(default_factory=list)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "fichier": self.file_name,
            "lignes": self.lines,
            "ajoutes": self.added,
            "mis_a_jour": self.updated,
            "inchanges": self.unchanged,
            "desactives": self.deactivated,
            "lignes_rejetees": self.rejected,
            "rejets": [{"ligne": r.number, "motif": r.reason} for r in self.rejects],
            "secondes": round(self.seconds, 1),
            "phases": {k: round(v, 1) for k, v in self.phases.items()},
        }


@dataclass
class _Group:
    first: PersonLine
    activities: list[Activity]
    raw: list[str]
    digest: bytes = b""


def check_format(path: Path) -> Layout:
    """Read the header only: raise :class:`FormatError` (French) if it is not an extract."""
    try:
        with open(path, "rb") as fh:
            head = fh.readline(1 << 16)
    except OSError as exc:
        raise FormatError(f"Lecture impossible du fichier « {path.name} ».") from exc
    if not head:
        raise FormatError("Le fichier est vide.")
    if b"\0" in head:
        raise FormatError("Format de fichier inconnu : fichier binaire, pas un extrait texte.")
    try:
        header = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(
            "Format de fichier inconnu : l'en-tête n'est pas en UTF-8 "
            "(extrait PS_LibreAcces_Personne_activite attendu)."
        ) from exc
    return Layout(header)


def _lines(path: Path, progress: Progress | None) -> Iterator[tuple[int, str | None, str]]:
    """(line number, decoded line or None, reason) for every data line."""
    total = path.stat().st_size
    done = 0
    next_report = 0
    with open(path, "rb", buffering=1 << 20) as fh:
        done += len(fh.readline())
        number = 1
        for raw in fh:
            number += 1
            done += len(raw)
            if progress is not None and done >= next_report:
                progress(done, total)
                next_report = done + (total >> 8) + 1
            if not raw.strip():
                continue
            try:
                yield number, raw.decode("utf-8"), ""
            except UnicodeDecodeError:
                yield number, None, "encodage invalide (UTF-8 attendu)"
    if progress is not None:
        progress(total, total)


def _place_rows(group: _Group) -> list[tuple[str, str, str, str, str, str]]:
    seen: dict[tuple[str, str, str, str, str, str], None] = {}
    code = group.first.profession_code
    for a in group.activities:
        seen.setdefault((a.dept, a.commune_code, a.postcode, code, a.specialty_code, a.mode_code))
    return list(seen)


class _Writer:
    def __init__(self, conn: sqlite3.Connection, run_id: int, now: str) -> None:
        self.conn = conn
        self.run_id = run_id
        self.now = now
        self.communes: dict[tuple[str, str], tuple[str, str]] = {}

    def flush(self, groups: dict[str, _Group], report: ImportReport) -> None:
        if not groups:
            return
        ids = list(groups)
        existing: dict[str, tuple[int, bytes, int, int]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(
                "SELECT national_id, id, content_hash, seen_run, active FROM professional "
                f"WHERE national_id IN ({marks})",
                chunk,
            ):
                existing[row[0]] = (row[1], row[2], row[3], row[4])
        inserts: list[_Group] = []
        rewrites: list[tuple[int, _Group]] = []
        touch: list[tuple[int, int]] = []
        for national_id, group in groups.items():
            for a in group.activities:
                if a.commune_code and a.city:
                    self.communes.setdefault((a.commune_code, a.postcode), (a.dept, a.city))
            digest = group.digest = _digest(group.raw)
            found = existing.get(national_id)
            if found is None:
                inserts.append(group)
                report.added += 1
                continue
            pid, old_digest, seen_run, active = found
            if seen_run == self.run_id:
                # the same professional again, further down the file: add these activities
                self._append(pid, group)
                continue
            if old_digest == digest and active:
                touch.append((self.run_id, pid))
                report.unchanged += 1
            else:
                rewrites.append((pid, group))
                report.updated += 1
        if touch:
            self.conn.executemany("UPDATE professional SET seen_run=? WHERE id=?", touch)
        for pid, group in rewrites:
            self.conn.execute("DELETE FROM search_key WHERE professional_id=?", (pid,))
            self.conn.execute("DELETE FROM activity WHERE professional_id=?", (pid,))
            p = group.first
            self.conn.execute(
                "UPDATE professional SET id_type=?, civility=?, last_name=?, first_name=?, "
                "profession_code=?, profession=?, sort_key=?, content_hash=?, seen_run=?, "
                "active=1, updated_at=? WHERE id=?",
                (
                    p.id_type,
                    p.civility,
                    p.last_name,
                    p.first_name,
                    p.profession_code,
                    p.profession,
                    sort_key(p.last_name, p.first_name),
                    group.digest,
                    self.run_id,
                    self.now,
                    pid,
                ),
            )
            self._children(pid, group, 0)
        if inserts:
            self._insert(inserts)

    def _insert(self, groups: list[_Group]) -> None:
        cur = self.conn.execute("SELECT coalesce(max(id), 0) FROM professional")
        next_id = int(cur.fetchone()[0]) + 1
        rows = []
        activities = []
        keys = []
        for group in groups:
            pid = next_id
            next_id += 1
            p = group.first
            rows.append(
                (
                    pid,
                    p.national_id,
                    p.id_type,
                    p.civility,
                    p.last_name,
                    p.first_name,
                    p.profession_code,
                    p.profession,
                    sort_key(p.last_name, p.first_name),
                    group.digest,
                    self.run_id,
                    self.now,
                )
            )
            activities.extend(_activity_rows(pid, group))
            keys.extend(_key_rows(pid, group, 0))
        self.conn.executemany(
            "INSERT INTO professional (id, national_id, id_type, civility, last_name, "
            "first_name, profession_code, profession, sort_key, content_hash, seen_run, active, "
            "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,1,?)",
            rows,
        )
        self._write_children(activities, keys)

    def _children(self, pid: int, group: _Group, first_seq: int) -> None:
        self._write_children(_activity_rows(pid, group), _key_rows(pid, group, first_seq))

    def _write_children(
        self, activities: list[tuple[object, ...]], keys: list[tuple[object, ...]]
    ) -> None:
        self.conn.executemany(
            "INSERT INTO activity (professional_id, profession_code, specialty_code, specialty, "
            "mode_code, mode, structure, address, postcode, commune_code, city, dept, phone, "
            "email) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            activities,
        )
        self.conn.executemany(
            "INSERT OR IGNORE INTO search_key (professional_id, seq, token, dept, commune_code, "
            "postcode, profession_code, specialty_code, mode_code) VALUES (?,?,?,?,?,?,?,?,?)",
            keys,
        )

    def _append(self, pid: int, group: _Group) -> None:
        present = {
            tuple(row)
            for row in self.conn.execute(
                "SELECT specialty_code, specialty, mode_code, mode, structure, address, postcode, "
                "commune_code, city, dept, phone, email FROM activity WHERE professional_id=?",
                (pid,),
            )
        }
        fresh = [a for a in group.activities if _activity_tuple(a) not in present]
        if not fresh:
            return
        group = _Group(group.first, fresh, group.raw)
        seq = self.conn.execute(
            "SELECT coalesce(max(seq), -1) + 1 FROM search_key WHERE professional_id=?", (pid,)
        ).fetchone()[0]
        old = self.conn.execute(
            "SELECT content_hash FROM professional WHERE id=?", (pid,)
        ).fetchone()[0]
        self.conn.execute(
            "UPDATE professional SET content_hash=? WHERE id=?",
            (hashlib.blake2b(old + _digest(group.raw), digest_size=16).digest(), pid),
        )
        self._children(pid, group, int(seq))


def _digest(raw: list[str]) -> bytes:
    if len(raw) == 1:
        return hashlib.blake2b(raw[0].encode(), digest_size=16).digest()
    h = hashlib.blake2b(digest_size=16)
    for line in sorted(raw):
        h.update(line.encode())
    return h.digest()


def _activity_tuple(a: Activity) -> tuple[str, ...]:
    return (
        a.specialty_code,
        a.specialty,
        a.mode_code,
        a.mode,
        a.structure,
        a.address,
        a.postcode,
        a.commune_code,
        a.city,
        a.dept,
        a.phone,
        a.email,
    )


def _activity_rows(pid: int, group: _Group) -> list[tuple[object, ...]]:
    code = group.first.profession_code
    seen: dict[Activity, None] = dict.fromkeys(group.activities)
    return [
        (
            pid,
            code,
            a.specialty_code,
            a.specialty,
            a.mode_code,
            a.mode,
            a.structure,
            a.address,
            a.postcode,
            a.commune_code,
            a.city,
            a.dept,
            a.phone,
            a.email,
        )
        for a in seen
    ]


def _key_rows(pid: int, group: _Group, first_seq: int) -> list[tuple[object, ...]]:
    p = group.first
    acts = group.activities
    if len(acts) == 1:  # the common case, kept short
        a = acts[0]
        names = pair_tokens(p.last_name, p.first_name)
        toks = (*names, a.email + " ") if a.email else names
        return [(pid, first_seq + i, t, a.dept, a.commune_code, a.postcode, p.profession_code,
                 a.specialty_code, a.mode_code) for i, t in enumerate(toks)]
    tokens = list(pair_tokens(p.last_name, p.first_name))
    tokens.extend(sorted({f"{a.email} " for a in acts if a.email}))
    rows: list[tuple[object, ...]] = []
    seq = first_seq
    for place in _place_rows(group):
        for token in tokens:
            rows.append((pid, seq, token, *place))
            seq += 1
    return rows


def import_extract(
    conn: sqlite3.Connection,
    path: Path,
    *,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> ImportReport:
    """Import one extract; raise :class:`FormatError` before writing anything if it is not one."""
    path = Path(path)
    layout = check_format(path)
    started = datetime.now(UTC) if now is None else now
    stamp = started.isoformat()
    report = ImportReport(file_name=path.name)
    clock = time.monotonic()
    conn.execute("BEGIN IMMEDIATE")
    try:
        first_import = conn.execute("SELECT 1 FROM professional LIMIT 1").fetchone() is None
        if first_import:
            for name in BULK_INDEXES:
                conn.execute(f"DROP INDEX IF EXISTS {name}")
        run_id = int(
            conn.execute(
                "INSERT INTO import_run (file_name, started_at) VALUES (?, ?)", (path.name, stamp)
            ).lastrowid
            or 0
        )
        writer = _Writer(conn, run_id, stamp)
        pending: dict[str, _Group] = {}
        for number, line, reason in _lines(path, progress):
            report.lines += 1
            try:
                if line is None:
                    raise LineError(reason)
                person = layout.parse(line)
            except LineError as exc:
                report.rejected += 1
                if len(report.rejects) < MAX_REJECTS_KEPT:
                    report.rejects.append(RejectedLine(number, str(exc)))
                continue
            group = pending.get(person.national_id)
            if group is None:
                if len(pending) >= BATCH:
                    writer.flush(pending, report)
                    pending = {}
                pending[person.national_id] = _Group(person, [person.activity], [line])
            else:
                group.activities.append(person.activity)
                group.raw.append(line)
        writer.flush(pending, report)
        report.phases["lecture_ecriture"] = time.monotonic() - clock
        stale = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM professional WHERE active=1 AND seen_run<>?", (run_id,)
            )
        ]
        for start in range(0, len(stale), 500):
            chunk = stale[start : start + 500]
            marks = ",".join("?" * len(chunk))
            conn.execute(
                f"UPDATE professional SET active=0, updated_at=? WHERE id IN ({marks})",
                (stamp, *chunk),
            )
            conn.execute(f"DELETE FROM search_key WHERE professional_id IN ({marks})", chunk)
        report.deactivated = len(stale)
        conn.executemany(
            "INSERT INTO commune (commune_code, postcode, dept, name, name_key) VALUES "
            "(?,?,?,?,?) ON CONFLICT(commune_code, postcode) DO UPDATE SET "
            "dept=excluded.dept, name=excluded.name, name_key=excluded.name_key",
            [
                (code, pc, dept, city, joined(city))
                for (code, pc), (dept, city) in writer.communes.items()
            ],
        )
        report.phases["desactivation"] = time.monotonic() - clock
        for statement in BULK_INDEXES.values():
            conn.execute(statement)
        report.phases["index"] = time.monotonic() - clock
        conn.execute(
            "UPDATE import_run SET finished_at=?, lines=?, added=?, updated=?, unchanged=?, "
            "deactivated=?, rejected=? WHERE id=?",
            (
                datetime.now(UTC).isoformat(),
                report.lines,
                report.added,
                report.updated,
                report.unchanged,
                report.deactivated,
                report.rejected,
                run_id,
            ),
        )
        if first_import:
            conn.execute("PRAGMA analysis_limit=1000")
            conn.execute("ANALYZE")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    report.seconds = time.monotonic() - clock
    report.phases["total"] = report.seconds
    return report


__all__ = ["FormatError", "ImportReport", "RejectedLine", "check_format", "import_extract"]
