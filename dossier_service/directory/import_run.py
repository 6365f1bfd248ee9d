"""One run of an import into the directory, whatever the extract (RPPS professionals, FINESS
structures): its row in ``annuaire_import_run``, its report (counts, the first rejected lines
with their reasons), the commits along the way and, at its end, the deactivation of every row
the run did not see.

The directory shares the dossier's database (issue 14): on SQLite one writer at a time, and
the dossier's writes wait at most 10 s (busy timeout). An import commits every
``COMMIT_LINES`` lines (about a second of work) so that they get their turn; readers see a
directory being updated, absent rows are deactivated at the end, and an interrupted import is
finished by the next one (same file: the rows already written are unchanged).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .database import Connection, is_sqlite

MAX_REJECTS_KEPT = 1000
COMMIT_LINES = 20_000
# after each such commit, on SQLite: the time a waiting writer needs to see the lock free
# (SQLite's busy handler polls every 1 to 100 ms)
YIELD_SECONDS = 0.1

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

    def reject(self, count: int, lines: Iterable[tuple[int, str]]) -> None:
        """``count`` more lines rejected; of ``lines`` (number, reason), the first ones kept."""
        self.rejected += count
        for number, reason in lines:
            if len(self.rejects) >= MAX_REJECTS_KEPT:
                break
            self.rejects.append(RejectedLine(number, reason))

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


class ImportRun:
    """An import under way, inside the transaction its caller opened."""

    def __init__(
        self,
        conn: Connection,
        kind: str,
        file_name: str,
        stamp: str,
        *,
        commit_lines: int = COMMIT_LINES,
    ) -> None:
        self.conn = conn
        self.stamp = stamp
        self.report = ImportReport(file_name=file_name)
        self.commit_lines = commit_lines
        self._committed = 0
        self.id = int(
            conn.execute(
                "INSERT INTO annuaire_import_run (kind, file_name, started_at) VALUES (?, ?, ?) "
                "RETURNING id",
                (kind, file_name, stamp),
            ).fetchone()[0]
        )

    def turn_due(self) -> bool:
        """Whether ``commit_lines`` lines went by since the last commit."""
        return self.report.lines - self._committed >= self.commit_lines

    def give_turn(self) -> None:
        """Commit what is written and open the next transaction, after the time a waiting
        writer needs to take the lock (the dossier's writes get their turn)."""
        self.conn.execute("COMMIT")
        if is_sqlite(self.conn):
            time.sleep(YIELD_SECONDS)
        self.conn.execute("BEGIN IMMEDIATE" if is_sqlite(self.conn) else "BEGIN")
        self._committed = self.report.lines

    def deactivate_absent(self, table: str, key: str, search_keys: str, keyed_by: str) -> None:
        """Rows of ``table`` (identified by ``key``) active but not seen by this run: made
        inactive, their rows in ``search_keys`` (whose ``keyed_by`` is that ``key``) removed:
        they are found no more."""
        stale = [
            row[0]
            for row in self.conn.execute(
                f"SELECT {key} FROM {table} WHERE active=1 AND seen_run<>?", (self.id,)
            )
        ]
        for start in range(0, len(stale), 500):
            chunk = stale[start : start + 500]
            marks = ",".join("?" * len(chunk))
            self.conn.execute(
                f"UPDATE {table} SET active=0, updated_at=? WHERE {key} IN ({marks})",
                (self.stamp, *chunk),
            )
            self.conn.execute(f"DELETE FROM {search_keys} WHERE {keyed_by} IN ({marks})", chunk)
        self.report.deactivated = len(stale)

    def finish(self) -> None:
        """The run's row completed with its counts."""
        r = self.report
        self.conn.execute(
            "UPDATE annuaire_import_run SET finished_at=?, lines=?, added=?, updated=?, "
            "unchanged=?, deactivated=?, rejected=? WHERE id=?",
            (
                datetime.now(UTC).isoformat(),
                r.lines,
                r.added,
                r.updated,
                r.unchanged,
                r.deactivated,
                r.rejected,
                self.id,
            ),
        )
