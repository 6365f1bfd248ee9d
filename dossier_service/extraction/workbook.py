"""An :class:`~dossier_service.extraction.figures.Extraction` as documents: an XLSX workbook
(a « Synthèse » sheet with the title, the summary and one chart per monthly series, then one
sheet per theme) and a ZIP of CSV files (one per sheet; ``;``-separated UTF-8 with a byte
order mark, as French spreadsheets open them)."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from dossier_service.extraction.figures import Extraction, Table

SUMMARY = "Synthèse"
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
# a cell starting with one of these is a formula for a spreadsheet: neutralised (CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def xlsx(extraction: Extraction) -> bytes:
    book = Workbook()
    summary = book.active
    assert summary is not None
    summary.title = SUMMARY
    summary["A1"] = extraction.title
    summary["A1"].font = Font(bold=True)
    summary.append([])
    summary.append(["Indicateur", "Valeur"])
    for label, value in extraction.summary:
        summary.append([label, _cell(value)])
    summary.column_dimensions["A"].width = 58
    summary.column_dimensions["B"].width = 14

    data_row = summary.max_row + 2
    summary.cell(row=data_row, column=1, value="Mois")
    months = next(iter(extraction.monthly.values()))[0] if extraction.monthly else []
    for i, month in enumerate(months):
        summary.cell(row=data_row + 1 + i, column=1, value=month)
    chart_row = data_row
    for j, (theme, (_, values)) in enumerate(extraction.monthly.items()):
        column = 2 + j
        summary.cell(row=data_row, column=column, value=theme)
        for i, value in enumerate(values):
            summary.cell(row=data_row + 1 + i, column=column, value=value)
        chart = BarChart()
        chart.title = f"{theme} par mois"
        chart.y_axis.title = theme
        chart.x_axis.title = "Mois"
        chart.add_data(
            Reference(summary, min_col=column, min_row=data_row, max_row=data_row + len(values)),
            titles_from_data=True,
        )
        chart.set_categories(
            Reference(summary, min_col=1, min_row=data_row + 1, max_row=data_row + len(values))
        )
        chart.height, chart.width = 7, 16
        summary.add_chart(chart, f"{get_column_letter(8 + (j % 2) * 10)}{chart_row}")
        if j % 2 == 1:
            chart_row += 15

    used = {SUMMARY}
    for table in extraction.tables:
        sheet = book.create_sheet(_sheet_name(table.title, used))
        sheet.append(table.columns)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append([_cell(v) for v in row])
        for i, name in enumerate(table.columns, start=1):
            sheet.column_dimensions[get_column_letter(i)].width = max(12, len(name) + 4)
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_zip(extraction: Extraction) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        summary = Table(SUMMARY, ["Indicateur", "Valeur"], [[k, v] for k, v in extraction.summary])
        used: set[str] = set()
        for table in (summary, *extraction.tables):
            text = io.StringIO()
            writer = csv.writer(text, delimiter=";", lineterminator="\r\n")
            if table is summary:
                writer.writerow([extraction.title])
            writer.writerow(table.columns)
            for row in table.rows:
                writer.writerow(["" if v is None else _cell(v) for v in row])
            name = _file_name(table.title, used)
            archive.writestr(name, "\ufeff" + text.getvalue())
    return out.getvalue()


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _sheet_name(title: str, used: set[str]) -> str:
    base = _SHEET_FORBIDDEN.sub(" ", title)[:31] or "Feuille"
    name, n = base, 2
    while name in used:
        name = f"{base[:28]} {n}"
        n += 1
    used.add(name)
    return name


def _file_name(title: str, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", _ascii(title).lower()).strip("-") or "feuille"
    name, n = f"{base}.csv", 2
    while name in used:
        name = f"{base}-{n}.csv"
        n += 1
    used.add(name)
    return name


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
