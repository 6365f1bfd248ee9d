"""/extractions: ask for an activity extraction (scope, period), follow one's own with their
status and download links, and read a ready one's figures as server-side SVG charts with the
same numbers in tables (readable without JavaScript). Who may extract what is decided by
``extraction.access.may_extract`` only, as for the API."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from openpyxl import load_workbook
from pydantic import ValidationError

from dossier_service import appkeys
from dossier_service.api.errors import ApiError, Denied
from dossier_service.api.extractions import ExtractionIn, ask, mine, own_report, read_checked, serve
from dossier_service.extraction import charts, reports, workbook
from dossier_service.models.activity import READY, ExtractionReport
from dossier_service.web.pagectx import french_validation, page_context, posted_form, text
from dossier_service.web.pages_login import PAGES

routes = web.RouteTableDef()
RESOURCE = "page:extraction"
REFUSED = (
    "Vous ne pouvez extraire que l'activité de votre structure (ou, admin, de toute la plateforme)."
)


@dataclass
class Figures:
    """What a ready report's summary sheet holds: indicators and monthly series."""

    summary: list[tuple[str, Any]] = field(default_factory=list)
    months: list[str] = field(default_factory=list)
    series: list[tuple[str, list[int]]] = field(default_factory=list)


def read_figures(data: bytes) -> Figures:
    """The summary sheet of the report's workbook (written by ``workbook.xlsx``)."""
    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    rows = list(book[workbook.SUMMARY].iter_rows(values_only=True))
    book.close()
    width = max((len(r) for r in rows), default=0)  # rows written one by one are not padded
    rows = [tuple(r) + (None,) * (width - len(r)) for r in rows]
    figures = Figures()
    i = next((n for n, r in enumerate(rows) if r[:2] == ("Indicateur", "Valeur")), len(rows))
    for row in rows[i + 1 :]:
        if row[0] is None:
            break
        figures.summary.append((str(row[0]), row[1]))
    m = next((n for n, r in enumerate(rows) if r and r[0] == "Mois"), None)
    if m is not None:
        themes = [str(t) for t in rows[m][1:] if t is not None]
        body = [r for r in rows[m + 1 :] if r and r[0] is not None]
        figures.months = [str(r[0]) for r in body]
        figures.series = [
            (theme, [int(r[1 + j] or 0) for r in body]) for j, theme in enumerate(themes)
        ]
    return figures


def _xlsx_of(request: web.Request, report: ExtractionReport) -> bytes:
    path: Path = reports.files_of(request.app[appkeys.CONFIG].documents_dir, report.id)[0]
    return read_checked(path, report.xlsx_sha256)


async def _list_page(
    request: web.Request,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    ctx = page_context(request)
    async with ctx.db.transaction() as session:
        items = await mine(session, ctx.principal.user_id)
        await ctx.audit(session, action="read", resource=RESOURCE, patient_id=None)
    today = ctx.today()
    return await request.app[PAGES].render(
        request,
        "extractions.html",
        {
            "items": items,
            "error": error,
            "form": form
            or {
                "scope": "plateforme" if ctx.principal.is_admin else "",
                "start": today.replace(month=1, day=1).isoformat(),
                "end": today.isoformat(),
            },
            "READY": READY,
            "nav": "extractions",
        },
        status=status,
    )


@routes.get("/extractions")
async def extractions_page(request: web.Request) -> web.StreamResponse:
    return await _list_page(request)


@routes.post("/extractions")
async def request_extraction(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    form = await posted_form(request, ctx)
    fields = {name: text(form, name)[:40] for name in ("scope", "start", "end")}
    try:
        data = ExtractionIn.model_validate(fields, strict=False)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = (
            str(first.get("msg", "")).removeprefix("Value error, ")
            if first["type"] == "value_error" and not first["loc"]
            else french_validation(exc)
        )
        return await _list_page(
            request, error=message[:1].upper() + message[1:], form=fields, status=400
        )
    try:
        async with ctx.db.transaction() as session:
            report = await ask(session, ctx.principal, data.scope, data.start, data.end)
            await ctx.audit(
                session, action="create", resource=f"{RESOURCE}/{report.id}", patient_id=None
            )
    except Denied:
        async with ctx.db.transaction() as session:
            await ctx.audit(
                session, action="create", resource=RESOURCE, patient_id=None, outcome="refusé"
            )
        return await _list_page(request, error=REFUSED, form=fields, status=403)
    except ApiError as refused:
        return await _list_page(request, error=refused.message, form=fields, status=refused.status)
    request.app[appkeys.REPORTS].wake()
    raise web.HTTPSeeOther(f"/extractions/{report.id}")


async def _own(request: web.Request, suffix: str = "") -> ExtractionReport:
    ctx = page_context(request)
    async with ctx.db.transaction() as session:
        report = await own_report(session, ctx.principal.user_id, request.match_info["rid"])
        if report is None:  # somebody else's report does not exist for the caller
            raise web.HTTPNotFound()
        await ctx.audit(
            session, action="read", resource=f"{RESOURCE}/{report.id}{suffix}", patient_id=None
        )
    return report


@routes.get("/extractions/{rid}")
async def extraction_page(request: web.Request) -> web.StreamResponse:
    report = await _own(request)
    figures, svgs = None, []
    if report.status == READY:
        figures = await asyncio.to_thread(read_figures, _xlsx_of(request, report))
        svgs = [
            charts.svg(f"{theme} par mois", figures.months, values, chart_id=f"graphique-{j}")
            for j, (theme, values) in enumerate(figures.series)
        ]
    return await request.app[PAGES].render(
        request,
        "extraction.html",
        {"report": report, "figures": figures, "charts": svgs, "READY": READY},
    )


@routes.get("/extractions/{rid}/xlsx")
async def extraction_xlsx(request: web.Request) -> web.StreamResponse:
    return await _download(request, "xlsx")


@routes.get("/extractions/{rid}/csv")
async def extraction_csv(request: web.Request) -> web.StreamResponse:
    return await _download(request, "csv")


async def _download(request: web.Request, form: Literal["xlsx", "csv"]) -> web.StreamResponse:
    """One's own ready extraction, as a file of ``form`` (``xlsx`` or ``csv``)."""
    report = await _own(request, f"/{form}")
    if report.status != READY:
        raise web.HTTPNotFound()
    return await serve(request, report, form)
