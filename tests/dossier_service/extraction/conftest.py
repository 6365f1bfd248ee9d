"""A database holding the known scenario (SQLite and PostgreSQL), shared by the extraction
tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest

from dossier_service.db import Database, build_database
from dossier_service.extraction.figures import Period
from dossier_service.models.activity import ActivityEvent
from dossier_service.models.circle import CircleMember
from dossier_service.models.followup import Hospitalisation
from dossier_service.models.notebook import NotebookEntry
from dossier_service.models.patient import FileStatusChange, Patient
from dossier_service.models.tasks import Task

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PERIOD = Period(date(2026, 3, 1), date(2026, 5, 31))
SSIAD = "310000001"


def at(days: float, minutes: float = 0) -> datetime:
    return T0 + timedelta(days=days, minutes=minutes)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = build_database(database_url)
    async with database.sessions() as s:
        for pid, created in (
            ("P-A", at(-400)),
            ("P-B", at(10)),
            ("P-C", at(-50)),
            ("P-D", at(-300)),
            ("P-E", at(200)),
        ):
            s.add(Patient(id=pid, label=f"label {pid}", created_by="@c:t", created_at=created))
        await s.flush()
        s.add(
            FileStatusChange(patient_id="P-C", status="clos", changed_by="@c:t", changed_at=at(20))
        )
        s.add(
            FileStatusChange(patient_id="P-D", status="clos", changed_by="@c:t", changed_at=at(-10))
        )
        for pid, kind, added, ended in (
            ("P-A", "professionnel", at(1), None),
            ("P-A", "structure", at(2), None),
            ("P-B", "professionnel", at(-3), at(40)),
            ("P-A", "professionnel", at(-5), None),
            ("P-C", "structure", at(-60), at(-30)),  # left before the period
        ):
            s.add(
                CircleMember(
                    patient_id=pid,
                    kind=kind,
                    display_name="x",
                    role="intervenant",
                    added_by="@c:t",
                    added_at=added,
                    ended_at=ended,
                    directory_id=SSIAD if kind == "structure" else None,
                )
            )
        events = [
            ("P-A", "messages", "!a|2026-03-02", None, "", at(1), "2026-03-02", 12),
            ("P-A", "messages", "!a|2026-04-02", None, "", at(32), "2026-04-02", 8),
            ("P-B", "messages", "!b|2026-05-30", None, "", at(90), "2026-05-30", 5),
            ("P-B", "messages", "!b|2026-06-01", None, "", at(92), "2026-06-01", 100),
            ("P-A", "signalement", "$u1", None, "urgent", at(3), "", 1),
            ("P-A", "prise_en_compte", "$a1", "$u1", "", at(3, 4), "", 1),
            ("P-A", "prise_en_compte", "$a1b", "$u1", "", at(3, 9), "", 1),  # a second ack
            ("P-A", "signalement", "$u2", None, "urgent", at(30), "", 1),
            ("P-A", "prise_en_compte", "$a2", "$u2", "", at(30, 10), "", 1),
            ("P-B", "signalement", "$u3", None, "urgent", at(50), "", 1),
            ("P-B", "prise_en_compte", "$a3", "$u3", "", at(50, 60), "", 1),
            ("P-B", "signalement", "$u4", None, "urgent", at(60), "", 1),
            ("P-C", "signalement", "$d1", None, "demande", at(5), "", 1),
            ("P-A", "export", "$e1", None, "", at(15), "", 1),
            ("P-C", "export", "$e2", None, "", at(-20), "", 1),
        ]
        for pid, kind, ref, of_ref, flag_kind, when, day, count in events:
            s.add(
                ActivityEvent(
                    patient_id=pid,
                    kind=kind,
                    ref=ref,
                    of_ref=of_ref,
                    flag_kind=flag_kind,
                    at=when,
                    day=day or when.date().isoformat(),
                    count=count,
                )
            )
        for pid, created, closed, due in (
            ("P-A", at(1), at(2), date(2026, 3, 5)),
            ("P-A", at(1), None, date(2026, 3, 10)),
            ("P-B", at(45), at(50), date(2026, 4, 1)),
            (None, at(70), None, None),
            ("P-A", at(-100), at(-90), None),  # closed before the period: not read
        ):
            s.add(
                Task(
                    patient_id=pid,
                    type="t",
                    label="x",
                    created_by="@c:t",
                    created_at=created,
                    closed_at=closed,
                    due_date=due,
                )
            )
        s.add(
            Hospitalisation(
                patient_id="P-B",
                structure="CHU",
                admission_at=at(55),
                discharge_at=at(58),
                created_by="@c:t",
            )
        )
        for i in range(50):  # the notebook is never read
            s.add(
                NotebookEntry(
                    patient_id="P-A", kind="note", text=f"n{i}", author="@c:t", created_at=at(i)
                )
            )
        await s.commit()
    yield database
    await database.dispose()
