"""The extraction's facts read back from a real database (SQLite and PostgreSQL): the same
known scenario as the pure figures, written as rows, gives the same counts."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from dossier_service.db import Database, build_reader
from dossier_service.extraction.figures import extract
from dossier_service.extraction.source import patients_of_structure, read_facts
from tests.dossier_service.extraction.conftest import PERIOD, SSIAD, at


async def test_the_database_gives_the_known_counts(db: Database) -> None:
    facts, labels = await read_facts(db.sessions, PERIOD, None)
    result = extract(facts, PERIOD, scope="la plateforme", visible={}, made_at=at(100))
    summary = dict(result.summary)
    assert summary["Patients suivis"] == 3
    assert (summary["Dossiers ouverts"], summary["Dossiers clos"]) == (1, 1)
    assert (summary["Ajouts au cercle de soins"], summary["Retraits du cercle de soins"]) == (2, 1)
    assert summary["Messages échangés"] == 25
    assert (summary["Signalements"], summary["dont urgences"]) == (5, 4)
    assert summary["Urgences sans prise en compte"] == 1
    assert summary["Délai médian urgence → première prise en compte (min)"] == 10.0
    assert summary["Délai 90e centile urgence → première prise en compte (min)"] == 60.0
    assert (summary["Tâches créées"], summary["Tâches terminées"]) == (4, 2)
    assert summary["Tâches en retard"] == 2
    assert (summary["Exports"], summary["Hospitalisations"]) == (1, 1)
    assert labels["P-A"] == "label P-A"


async def test_a_structure_sees_the_patients_it_followed_during_the_period(db: Database) -> None:
    async with db.sessions() as s:
        patients = await patients_of_structure(s, SSIAD, PERIOD)
        assert patients == ["P-A"]  # P-C's structure membership ended before the period
    facts, _ = await read_facts(db.sessions, PERIOD, patients)
    result = extract(facts, PERIOD, scope="la structure", visible={}, made_at=at(100))
    summary = dict(result.summary)
    assert summary["Patients suivis"] == 1
    assert summary["Messages échangés"] == 20
    assert summary["Signalements"] == 2


async def test_the_render_process_reader_reads_the_same_and_never_writes(
    db: Database, database_url: str
) -> None:
    """The reader of the extraction's own process (``build_reader``): the same facts, a
    write refused by the database itself, and on PostgreSQL a backend that stays one process
    (no parallel workers, no JIT) since the server cannot lower its priority."""
    reader = build_reader(database_url)
    try:
        facts, _ = await read_facts(reader.sessions, PERIOD, None)
        summary = dict(extract(facts, PERIOD, scope="x", visible={}, made_at=at(100)).summary)
        assert summary["Messages échangés"] == 25
        async with reader.sessions() as s:
            if reader.engine.dialect.name == "postgresql":
                shown = [
                    (await s.execute(text(f"SHOW {name}"))).scalar_one()
                    for name in ("max_parallel_workers_per_gather", "jit")
                ]
                assert shown == ["0", "off"]
            with pytest.raises((DBAPIError, OperationalError)):
                await s.execute(text("DELETE FROM patients"))
    finally:
        await reader.dispose()
    async with db.sessions() as s:  # nothing was deleted
        assert (await s.execute(text("SELECT count(*) FROM patients"))).scalar_one() == 5
