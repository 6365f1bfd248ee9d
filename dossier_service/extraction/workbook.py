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
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from dossier_service.extraction.figures import Extraction, Table

SUMMARY = "Synthèse"
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
# a cell starting with one of these is a formula for a spreadsheet: neutralised (CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def xlsx(extraction: Extraction) -> bytes:
    """Written row by row (openpyxl's write-only mode): the memory and the time it takes grow
    with the rows, not with a grid of cell objects."""
    book = Workbook(write_only=True)
    summary = book.create_sheet(SUMMARY)
    summary.column_dimensions["A"].width = 58
    summary.column_dimensions["B"].width = 14
    summary.append([_bold(summary, extraction.title)])
    summary.append([])
    summary.append(["Indicateur", "Valeur"])
    for label, value in extraction.summary:
        summary.append([label, _cell(value)])
    summary.append([])
    data_row = 3 + len(extraction.summary) + 2
    months = next(iter(extraction.monthly.values()))[0] if extraction.monthly else []
    series = list(extraction.monthly.items())
    summary.append(["Mois", *(theme for theme, _ in series)])
    for i, month in enumerate(months):
        summary.append([month, *(values[i] for _, (_, values) in series)])
    chart_row = data_row
    for j, (theme, (_, values)) in enumerate(series):
        column = 2 + j
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
    sheets = []
    for table in extraction.tables:
        sheet = book.create_sheet(_sheet_name(table.title, used))
        for i, name in enumerate(table.columns, start=1):
            sheet.column_dimensions[get_column_letter(i)].width = max(12, len(name) + 4)
        sheet.freeze_panes = "A2"
        sheet.append([_bold(sheet, name) for name in table.columns])
        sheets.append((sheet, table))
    out = io.BytesIO()
    book.save(out)
    return _with_rows(out.getvalue(), {sheet.path.lstrip("/"): table for sheet, table in sheets})


def _with_rows(document: bytes, tables: dict[str, Table]) -> bytes:
    """``document`` with each table's rows written after its header row, in its sheet's
    ``<sheetData>``: the same cells openpyxl writes (numbers, inline strings), formatted as
    text directly — openpyxl's pure-Python XML writer takes ~50 µs a cell, too slow for the
    hundreds of thousands of cells of a platform's year."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(document)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for item in source.infolist():
            data = source.read(item)
            table = tables.get(item.filename)
            if table is not None:
                head, tail = data.decode().rsplit("</sheetData>", 1)
                data = "".join(
                    (head, *_rows_xml(table.rows, first=2), "</sheetData>", tail)
                ).encode()
            target.writestr(item, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _rows_xml(rows: list[list[str | int | float | None]], first: int) -> Iterator[str]:
    letters = [get_column_letter(i) for i in range(1, 1 + max((len(r) for r in rows), default=0))]
    for number, row in enumerate(rows, start=first):
        cells = []
        for letter, value in zip(letters, row, strict=False):
            ref = f"{letter}{number}"
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                text = _xml_text(str(_cell(value)))
                cells.append(f'<c r="{ref}" t="inlineStr"><is><t{text}</t></is></c>')
            else:
                cells.append(f'<c r="{ref}" t="n"><v>{value!r}</v></c>')
        yield f'<row r="{number}">{"".join(cells)}</row>'


def _xml_text(value: str) -> str:
    """``>escaped`` (or `` xml:space="preserve">escaped``): characters XML cannot hold are
    dropped, as a spreadsheet could not show them anyway."""
    value = escape(ILLEGAL_CHARACTERS_RE.sub("", value))
    if value != value.strip():
        return f' xml:space="preserve">{value}'
    return f">{value}"


def _bold(sheet: Any, value: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)
    cell.font = Font(bold=True)
    return cell


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
