"""Which version of each patient's file this process has committed: the key of the file cache.

Every change to a file writes a liaison entry in its transaction (the notebook's rule);
the two writers of entries mark the session (`mark_changed`), and once that transaction
has committed the file's revision goes up by one. Reading a revision is a dict lookup: the
database's own (count, newest) of the entries cost a scan of every entry of the file on
every read, growing with the file.

Only valid when this process is the only writer of the database and its transactions
never overlap: the SQLite deployment (one service process, one pooled connection, so a
reader's revision and sections come from one transaction no writer can interleave with).
With PostgreSQL the revision is read from the database (`read_models.revision`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import event

CHANGED_FILES = "cercle.changed_files"


def mark_changed(session: Any, patient_id: str | None) -> None:
    """In a writer of liaison entries: this transaction changes that file. ``None``: a change
    outside any file that views across files show (a task without a patient)."""
    session.info.setdefault(CHANGED_FILES, set()).add(patient_id)


class FileRevisions:
    def __init__(self) -> None:
        self._revisions: dict[str, int] = {}
        self.total = 0  # every committed change, in any file or none: views across files

    def of(self, patient_id: str) -> int:
        return self._revisions.get(patient_id, 0)

    def bump(self, patient_ids: Iterable[str | None]) -> None:
        for patient_id in patient_ids:
            self.total += 1
            if patient_id is not None:
                self._revisions[patient_id] = self._revisions.get(patient_id, 0) + 1

    def watch(self, session_class: type) -> None:
        """Follow the commits of sessions of ``session_class`` (a class of its own per
        database: the listeners stay with it)."""
        event.listen(session_class, "after_commit", self._after_commit)
        event.listen(session_class, "after_rollback", self._after_rollback)

    def _after_commit(self, session: Any) -> None:
        self.bump(session.info.pop(CHANGED_FILES, ()))

    def _after_rollback(self, session: Any) -> None:
        session.info.pop(CHANGED_FILES, None)  # nothing of it was written
