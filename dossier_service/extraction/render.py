"""``python -m dossier_service.extraction.render XLSX ZIP``: the work of an extraction, in a
process of its own in the idle scheduling class (:func:`yield_to_others`), so that the
dossier's event loop never waits on it and the people using the dossier meanwhile come first.

Reads the pickled :class:`Job` that the dossier wrote on its standard input (trusted: written
by the parent, never by a user; it holds the database's URL, so it is never an argument),
reads the facts from the database itself (read-only, in short transactions), computes the
figures, writes both documents to the given paths and prints the title on its standard
output.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import sys
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dossier_service.extraction.figures import Facts, Period


def yield_to_others() -> None:
    """Run on CPU time nobody else wants: Linux's idle scheduling class (``SCHED_IDLE``).

    ``nice 10`` was not enough: a niced process still gets about a tenth of a busy core
    against the service and is woken ahead of it often enough that the readers' p99 grew
    by half during a full extraction. An idle-class process runs only when a core would
    otherwise be idle, so the people using the dossier meanwhile never wait for it; the
    extraction takes longer on a busy machine, never the others. Elsewhere than Linux (a
    developer's laptop), the lowest nice value."""
    if hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:  # pragma: no cover - not Linux
        os.nice(19)


@dataclass(frozen=True)
class Job:
    database_url: str
    period: Period
    structure_id: str | None  # None: the whole platform
    scope_label: str
    visible: Collection[str]  # the files whose care circle holds the requester
    made_at: datetime


async def facts_of(job: Job) -> tuple[Facts, dict[str, str]]:
    from dossier_service.db import build_reader
    from dossier_service.extraction.pace import Pace
    from dossier_service.extraction.source import patients_of_structure, read_facts

    db = build_reader(job.database_url)
    try:
        patients: list[str] | None = None
        if job.structure_id is not None:
            async with db.sessions() as session:
                patients = await patients_of_structure(session, job.structure_id, job.period)
        return await read_facts(db.sessions, job.period, patients, pace=Pace())
    finally:
        await db.dispose()


def main(argv: list[str]) -> int:
    yield_to_others()  # before the imports: they are a second of CPU at the service's priority
    from dossier_service.documents_store import write_private
    from dossier_service.extraction import workbook
    from dossier_service.extraction.figures import extract

    xlsx_path, zip_path = Path(argv[0]), Path(argv[1])
    job: Job = pickle.load(sys.stdin.buffer)
    facts, labels = asyncio.run(facts_of(job))
    visible = {pid: labels[pid] for pid in job.visible if pid in labels}
    result = extract(facts, job.period, scope=job.scope_label, visible=visible, made_at=job.made_at)
    del facts
    write_private(xlsx_path, workbook.xlsx(result))
    write_private(zip_path, workbook.csv_zip(result))
    sys.stdout.write(result.title)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
