"""The activity figures on a scenario whose counts are known, and the documents made of them."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
from openpyxl import load_workbook

from dossier_service.extraction import charts, workbook
from dossier_service.extraction.figures import (
    CircleChange,
    ExportFact,
    Facts,
    FileFact,
    FlagFact,
    HospitalisationFact,
    Period,
    RoomMessages,
    TaskFact,
    extract,
)
from tests.dossier_service.extraction.conftest import PERIOD, T0, at


def scenario() -> Facts:
    return Facts(
        files=[
            FileFact("P-A", "Mme A.", at(-400)),  # followed all along
            FileFact("P-B", "M. B.", at(10)),  # opened in the period
            FileFact("P-C", "Mme C.", at(-50), (("clos", at(20)),)),  # closed in the period
            FileFact("P-D", "M. D.", at(-300), (("clos", at(-10)),)),  # closed before: not followed
            FileFact("P-E", "Mme E.", at(200)),  # opened after the period
        ],
        circle=[
            CircleChange("P-A", at(1), "ajout", "professionnel"),
            CircleChange("P-A", at(2), "ajout", "structure"),
            CircleChange("P-B", at(40), "retrait", "professionnel"),
            CircleChange("P-A", at(-5), "ajout", "professionnel"),  # before the period
        ],
        messages=[
            RoomMessages("P-A", date(2026, 3, 2), 12),
            RoomMessages("P-A", date(2026, 4, 2), 8),
            RoomMessages("P-B", date(2026, 5, 30), 5),
            RoomMessages("P-B", date(2026, 6, 1), 100),  # after the period
        ],
        flags=[
            FlagFact("P-A", "urgent", at(3), at(3, 4)),  # 4 min
            FlagFact("P-A", "urgent", at(30), at(30, 10)),  # 10 min
            FlagFact("P-B", "urgent", at(50), at(50, 60)),  # 60 min
            FlagFact("P-B", "urgent", at(60)),  # never acknowledged
            FlagFact("P-C", "demande", at(5), at(6)),
        ],
        tasks=[
            TaskFact("P-A", at(1), at(2), date(2026, 3, 5)),  # done in time
            TaskFact("P-A", at(1), None, date(2026, 3, 10)),  # overdue
            TaskFact("P-B", at(45), at(50), date(2026, 4, 1)),  # done late: overdue
            TaskFact(None, at(70)),  # no due date
        ],
        exports=[ExportFact("P-A", at(15)), ExportFact("P-C", at(-20))],
        hospitalisations=[HospitalisationFact("P-B", at(55), at(58))],
    )


def test_the_known_scenario_gives_its_known_counts() -> None:
    result = extract(
        scenario(),
        PERIOD,
        scope="la structure SSIAD Test",
        visible={"P-A": "Mme A."},
        made_at=datetime(2026, 6, 2, 10, tzinfo=UTC),
    )
    summary = dict(result.summary)
    assert summary["Patients suivis"] == 3  # A, B, C
    assert summary["Dossiers ouverts"] == 1
    assert summary["Dossiers clos"] == 1
    assert summary["Ajouts au cercle de soins"] == 2
    assert summary["Retraits du cercle de soins"] == 1
    assert summary["Messages échangés"] == 25
    assert summary["Signalements"] == 5 and summary["dont urgences"] == 4
    assert summary["Urgences sans prise en compte"] == 1
    assert summary["Délai médian urgence → première prise en compte (min)"] == 10.0
    assert summary["Délai 90e centile urgence → première prise en compte (min)"] == 60.0
    assert summary["Tâches créées"] == 4
    assert summary["Tâches terminées"] == 2
    assert summary["Tâches en retard"] == 2
    assert summary["Exports"] == 1
    assert summary["Hospitalisations"] == 1
    assert result.monthly["Messages"] == (["2026-03", "2026-04", "2026-05"], [12, 8, 5])
    assert result.title == (
        "Document d'extraction brute des données pour la structure SSIAD Test réalisée le "
        "2 juin 2026. Période du 1 mars 2026 au 31 mai 2026"
    )


def test_only_the_requesters_patients_are_named() -> None:
    result = extract(
        scenario(), PERIOD, scope="x", visible={"P-A": "Mme A."}, made_at=T0 + timedelta(days=100)
    )
    cells = {str(c) for table in result.tables for row in table.rows for c in row}
    assert "Mme A." in cells
    assert not {"M. B.", "Mme C.", "M. D.", "Mme E.", "P-B", "P-C"} & cells
    patients = result.tables[0]
    assert [row[0] for row in patients.rows] == ["Mme A.", "Dossier n°1", "Dossier n°2"]


def test_a_period_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="précède"):
        Period(date(2026, 5, 1), date(2026, 4, 1))


def test_the_workbook_opens_back_with_its_sheets_figures_and_charts() -> None:
    result = extract(
        scenario(), PERIOD, scope="la plateforme", visible={}, made_at=T0 + timedelta(days=100)
    )
    book = load_workbook(io.BytesIO(workbook.xlsx(result)))
    assert book.sheetnames == [
        "Synthèse",
        "Patients",
        "Dossiers",
        "Cercle de soins",
        "Messages",
        "Signalements",
        "Tâches",
        "Exports",
        "Hospitalisations",
    ]
    summary = book["Synthèse"]
    assert str(summary["A1"].value).startswith("Document d'extraction brute des données")
    values = {
        row[0]: row[1]
        for row in summary.iter_rows(min_row=4, max_col=2, values_only=True)
        if row[0]
    }
    assert values["Messages échangés"] == 25 and values["Tâches en retard"] == 2
    assert len(summary._charts) == 4  # one per monthly series
    flags = list(book["Signalements"].iter_rows(values_only=True))
    assert flags[0][0] == "Dossier" and len(flags) == 6


def test_cells_that_look_like_formulas_are_neutralised() -> None:
    result = extract(
        Facts(files=[FileFact("P-X", '=HYPERLINK("x")', at(1))]),
        PERIOD,
        scope="x",
        visible={"P-X": '=HYPERLINK("x")'},
        made_at=at(100),
    )
    book = load_workbook(io.BytesIO(workbook.xlsx(result)))
    assert book["Patients"]["A2"].value == '\'=HYPERLINK("x")'
    archive = zipfile.ZipFile(io.BytesIO(workbook.csv_zip(result)))
    rows = list(
        csv.reader(io.StringIO(archive.read("patients.csv").decode("utf-8-sig")), delimiter=";")
    )
    assert rows[1][0] == '\'=HYPERLINK("x")'


def test_labels_with_markup_spaces_or_control_characters_come_back_as_written() -> None:
    labels = {"P-1": "Dupont <Jean> & fils", "P-2": "  Martin ", "P-3": "Durand\x01\x0b"}
    files = [FileFact(pid, label, at(1)) for pid, label in labels.items()]
    result = extract(Facts(files=files), PERIOD, scope="x", visible=labels, made_at=at(100))
    book = load_workbook(io.BytesIO(workbook.xlsx(result)))
    rows = list(book["Patients"].iter_rows(min_row=2, values_only=True))
    assert sorted(r[0] for r in rows) == ["  Martin ", "Dupont <Jean> & fils", "Durand"]
    assert {r[2] for r in rows} == {0}  # numbers stay numbers


def test_the_csv_archive_has_one_file_per_sheet() -> None:
    result = extract(scenario(), PERIOD, scope="x", visible={}, made_at=at(100))
    archive = zipfile.ZipFile(io.BytesIO(workbook.csv_zip(result)))
    assert archive.namelist() == [
        "synthese.csv",
        "patients.csv",
        "dossiers.csv",
        "cercle-de-soins.csv",
        "messages.csv",
        "signalements.csv",
        "taches.csv",
        "exports.csv",
        "hospitalisations.csv",
    ]
    summary = archive.read("synthese.csv").decode("utf-8-sig")
    assert "Messages échangés;25" in summary


def test_a_chart_says_its_values_in_words() -> None:
    svg = charts.svg("Messages par mois", ["2026-03", "2026-04"], [12, 8], chart_id="m")
    assert 'role="img"' in svg and '<title id="m-t">Messages par mois</title>' in svg
    assert "mars 2026 : 12, avril 2026 : 8" in svg
    assert charts.svg("Vide", [], [], chart_id="v").count("<rect") == 0
