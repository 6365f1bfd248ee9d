"""Streaming import of the RPPS extract into the directory database.

The file is read line by line (never held in memory), lines are grouped by professional
(``Identification nationale PP``) and each professional is written once. On request
(``parallel=True``) reading and parsing (:mod:`.extract_reader`) run in a helper process so
that reading and writing use two cores; it costs ~40 % more CPU in all (batches cross a
pipe), so it only pays on an otherwise idle machine — on the shared 2-core machine of the
benchmark it was slower (245 s vs 212 s wall), hence off by default. It commits along the way (:mod:`.import_run`: the dossier's writes get
their turn) and an interrupted import is finished by the next one. Re-importing the same
file changes nothing; a newer extract updates, adds, and marks professionals absent from it
as inactive. A malformed line is rejected with its number and reason, never aborting.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .database import Connection, is_sqlite, transaction
from .extract_reader import Batch, Prepared, check_format, produce, read_batches
from .import_run import COMMIT_LINES, ImportReport, ImportRun, Progress, RejectedLine
from .normalize import joined
from .rpps_format import FormatError
from .store import bulk_indexes

_ACTIVITY_COLUMNS = (
    "profession_code, specialty_code, specialty, mode_code, mode, structure, "
    "address, postcode, commune_code, city, dept, phone, email, siret, finess"
)


class _Writer:
    def __init__(self, conn: Connection, run_id: int, now: str) -> None:
        self.conn = conn
        self.run_id = run_id
        self.now = now
        self.communes: dict[tuple[str, str], tuple[str, str]] = {}
        # professionals rewritten in this run -> their hash before (lines split in the file)
        self.rewritten: dict[int, bytes] = {}
        # professionals linked to a Matrix account keep their rows flagged (see store v2)
        self.linked = {
            row[0] for row in conn.execute("SELECT national_id FROM annuaire_account_link")
        }
        self.next_id = (
            int(
                conn.execute("SELECT coalesce(max(id), 0) FROM annuaire_professional").fetchone()[0]
            )
            + 1
        )

    def write(self, groups: list[Prepared], report: ImportReport) -> None:
        if not groups:
            return
        existing: dict[str, tuple[int, bytes, int, int]] = {}
        for start in range(0, len(groups), 500):
            chunk = [g[0] for g in groups[start : start + 500]]
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(
                "SELECT national_id, id, content_hash, seen_run, active FROM annuaire_professional "
                f"WHERE national_id IN ({marks})",
                chunk,
            ):
                existing[row[0]] = (row[1], row[2], row[3], row[4])
        people: list[tuple[object, ...]] = []
        activities: list[tuple[object, ...]] = []
        keys: list[tuple[object, ...]] = []
        touch: list[tuple[int, int]] = []
        for group in groups:
            national_id, digest, person, acts, group_keys = group
            for a in acts:
                if a[8] and a[9]:
                    self.communes.setdefault((a[8], a[7]), (a[10], a[9]))
            found = existing.get(national_id)
            if found is None:
                pid = self.next_id
                self.next_id += 1
                flag = 1 if national_id in self.linked else 0
                people.append((pid, national_id, *person, digest, self.run_id, self.now))
                activities.extend((pid, *a, flag) for a in acts)
                keys.extend((pid, seq, *k, flag) for seq, k in enumerate(group_keys))
                report.added += 1
                continue
            pid, old_digest, seen_run, active = found
            if seen_run == self.run_id:
                # the same professional again, further down the file: add these activities
                self._append(pid, group, report)
            elif old_digest == digest and active:
                touch.append((self.run_id, pid))
                report.unchanged += 1
            else:
                self.rewritten[pid] = old_digest
                self._rewrite(pid, group)
                report.updated += 1
        if touch:
            self.conn.executemany("UPDATE annuaire_professional SET seen_run=? WHERE id=?", touch)
        if people:
            self.conn.executemany(
                "INSERT INTO annuaire_professional (id, national_id, id_type, civility, last_name, "
                "first_name, profession_code, profession, sort_key, content_hash, seen_run, "
                "active, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,1,?)",
                people,
            )
        self._children(activities, keys)

    def _children(
        self, activities: list[tuple[object, ...]], keys: list[tuple[object, ...]]
    ) -> None:
        if activities:
            self.conn.executemany(
                f"INSERT INTO annuaire_activity (professional_id, {_ACTIVITY_COLUMNS}, linked) "
                f"VALUES ({','.join('?' * (_ACTIVITY_COLUMNS.count(',') + 3))})",
                activities,
            )
        if keys:
            self.conn.executemany(
                "INSERT INTO annuaire_search_key (professional_id, seq, token, dept, "
                "commune_code, postcode, profession_code, specialty_code, mode_code, linked) "
                "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                keys,
            )

    def _rewrite(self, pid: int, group: Prepared) -> None:
        national_id, digest, person, acts, group_keys = group
        flag = 1 if national_id in self.linked else 0
        self.conn.execute("DELETE FROM annuaire_search_key WHERE professional_id=?", (pid,))
        self.conn.execute("DELETE FROM annuaire_activity WHERE professional_id=?", (pid,))
        self.conn.execute(
            "UPDATE annuaire_professional SET id_type=?, civility=?, last_name=?, first_name=?, "
            "profession_code=?, profession=?, sort_key=?, content_hash=?, seen_run=?, "
            "active=1, updated_at=? WHERE id=?",
            (*person, digest, self.run_id, self.now, pid),
        )
        self._children(
            [(pid, *a, flag) for a in acts],
            [(pid, seq, *k, flag) for seq, k in enumerate(group_keys)],
        )

    def _append(self, pid: int, group: Prepared, report: ImportReport) -> None:
        """More lines of a professional already written in this run (not adjacent in the
        file): their activities are added and the hash combined, so that importing the same
        file again finds the same hash."""
        national_id, digest, _, acts, group_keys = group
        flag = 1 if national_id in self.linked else 0
        present = {
            tuple(row)
            for row in self.conn.execute(
                f"SELECT {_ACTIVITY_COLUMNS} FROM annuaire_activity WHERE professional_id=?", (pid,)
            )
        }
        fresh = [a for a in acts if a not in present]
        if not fresh:
            return
        seq = int(
            self.conn.execute(
                "SELECT coalesce(max(seq), -1) + 1 FROM annuaire_search_key WHERE professional_id=?",
                (pid,),
            ).fetchone()[0]
        )
        old = self.conn.execute(
            "SELECT content_hash FROM annuaire_professional WHERE id=?", (pid,)
        ).fetchone()[0]
        combined = hashlib.blake2b(old + digest, digest_size=16).digest()
        self.conn.execute(
            "UPDATE annuaire_professional SET content_hash=? WHERE id=?", (combined, pid)
        )
        if self.rewritten.get(pid) == combined:  # same lines as before, only split
            del self.rewritten[pid]
            report.updated -= 1
            report.unchanged += 1
        self._children(
            [(pid, *a, flag) for a in fresh],
            [(pid, seq + n, *k, flag) for n, k in enumerate(group_keys)],
        )


def _batches_here(path: Path) -> Iterator[Batch]:
    yield from read_batches(path, check_format(path))


def _batches_from_helper(path: Path) -> Iterator[Batch]:
    """Read and parse in a helper process; batches come back through a bounded queue."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue(maxsize=8)
    helper = ctx.Process(target=produce, args=(str(path), queue.put), daemon=True)
    helper.start()
    try:
        while True:
            item = queue.get()
            if item is None:
                break
            if isinstance(item, tuple) and item and item[0] == "error":
                raise RuntimeError(f"lecture de l'extrait interrompue ({item[1]})")
            yield item
    finally:
        if helper.is_alive():
            helper.terminate()
        helper.join(timeout=10)


def import_extract(
    conn: Connection,
    path: Path,
    *,
    progress: Progress | None = None,
    now: datetime | None = None,
    parallel: bool = False,
) -> ImportReport:
    """Import one extract; raise :class:`FormatError` before writing anything if it is not one.

    ``parallel``: read and parse in a helper process."""
    path = Path(path)
    check_format(path)
    total = path.stat().st_size
    stamp = (datetime.now(UTC) if now is None else now).isoformat()
    clock = time.monotonic()
    indexes = bulk_indexes(conn)
    with transaction(conn):
        first_import = (
            conn.execute("SELECT 1 FROM annuaire_professional LIMIT 1").fetchone() is None
        )
        for name, statement in indexes.items():
            # dropped for a first import (rebuilt once at its end, faster); otherwise present
            # (an interrupted first import left them out: they come back before this one)
            conn.execute(f"DROP INDEX IF EXISTS {name}" if first_import else statement)
        run = ImportRun(conn, "rpps", path.name, stamp, commit_lines=COMMIT_LINES)
        report = run.report
        writer = _Writer(conn, run.id, stamp)
        batches = _batches_from_helper(path) if parallel else _batches_here(path)
        for lines, done, rejected, rejects, groups in batches:
            if run.turn_due():
                run.give_turn()
            report.lines += lines
            report.reject(rejected, rejects)
            writer.write(groups, report)
            if progress is not None:
                progress(done, total)
        if progress is not None:
            progress(total, total)
        report.phases["lecture_ecriture"] = time.monotonic() - clock
        run.deactivate_absent(
            "annuaire_professional", "id", "annuaire_search_key", "professional_id"
        )
        conn.executemany(
            "INSERT INTO annuaire_commune (commune_code, postcode, dept, name, name_key) VALUES "
            "(?,?,?,?,?) ON CONFLICT(commune_code, postcode) DO UPDATE SET "
            "dept=excluded.dept, name=excluded.name, name_key=excluded.name_key",
            [
                (code, pc, dept, city, joined(city))
                for (code, pc), (dept, city) in writer.communes.items()
            ],
        )
        report.phases["desactivation"] = time.monotonic() - clock
        for statement in indexes.values():
            conn.execute(statement)
        report.phases["index"] = time.monotonic() - clock
        run.finish()
        if first_import:
            if is_sqlite(conn):
                conn.execute("PRAGMA analysis_limit=1000")
            conn.execute("ANALYZE")
    report.seconds = time.monotonic() - clock
    report.phases["total"] = report.seconds
    return report


__all__ = [
    "FormatError",
    "ImportReport",
    "Progress",
    "RejectedLine",
    "check_format",
    "import_extract",
]
