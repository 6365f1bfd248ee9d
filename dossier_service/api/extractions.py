"""/api/v1/extractions: activity extractions asked for, listed, downloaded (issue 18); and
/api/v1/activity, where the bot reports counts of a patient room (never content).

A report belongs to its requester alone: anyone else is answered 404, as if it did not exist.
Who may extract what is decided by ``extraction.access.may_extract`` only."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, model_validator
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from deployment.conventions import PARIS
from dossier_service import appkeys
from dossier_service.api.errors import ApiError, Denied
from dossier_service.api.operation import Audit, Call, Operations, allowed_when, person
from dossier_service.api.serialize import file_download
from dossier_service.bounded import BoundedDate, OutOfRange, check_moment, parse_day
from dossier_service.extraction import reports
from dossier_service.extraction.access import may_extract
from dossier_service.extraction.figures import Period
from dossier_service.models.activity import READY, ActivityEvent, ExtractionReport
from dossier_service.models.directory import Structure
from dossier_service.models.patient import Patient
from dossier_service.models.types import new_id, table_of
from dossier_service.schemas import Input

operations = Operations()
RESOURCE = "extractions"
FINESS = re.compile(r"^[0-9A-B]{9}$")  # 2A/2B: Corsica's départements
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NOT_READY = "L'extraction n'est pas encore prête."
PERSON_ONLY = "Une extraction est demandée par une personne connectée."
BY_PERSON = person(PERSON_ONLY)
REPORT = "/api/v1/extractions/{report_id}"


class ExtractionIn(Input):
    scope: str = Field(max_length=20, description='"plateforme" ou le numéro FINESS (9 car.)')
    start: BoundedDate
    end: BoundedDate

    @model_validator(mode="after")
    def _valid(self) -> ExtractionIn:
        if self.scope != reports.PLATFORM and not FINESS.match(self.scope):
            raise ValueError("périmètre : « plateforme » ou un numéro FINESS à 9 caractères")
        if self.end < self.start:
            raise ValueError("la fin de la période précède son début")
        return self


def dump_report(report: ExtractionReport) -> dict[str, Any]:
    ready = report.status == READY
    base = f"/api/v1/extractions/{report.id}"
    return {
        "id": report.id,
        "status": report.status,
        "scope": reports.PLATFORM if report.scope_kind == reports.PLATFORM else report.structure_id,
        "scope_label": report.scope_label,
        "start": report.period_start.isoformat(),
        "end": report.period_end.isoformat(),
        "title": report.title,
        "reason": report.reason,
        "requested_at": report.requested_at.isoformat(),
        "done_at": report.done_at.isoformat() if report.done_at else None,
        "xlsx": f"{base}/xlsx" if ready else None,
        "csv": f"{base}/csv" if ready else None,
    }


async def scope_of(session: AsyncSession, scope: str) -> reports.Scope | None:
    """The report's scope for ``scope`` (None: no such structure)."""
    if scope == reports.PLATFORM:
        return reports.Scope(reports.PLATFORM, "toute la plateforme")
    structure = await session.get(Structure, scope)
    if structure is None:
        return None
    return reports.Scope(reports.STRUCTURE, f"la structure {structure.name}"[:300], scope)


async def ask(
    session: AsyncSession, call_me: Any, scope: str, start: date, end: date
) -> ExtractionReport:
    """Records a demand (the API's and the page's): Denied 403 when the caller may not
    extract ``scope``, 404 for an unknown structure, ApiError for a refused period."""
    if not await may_extract(session, call_me, scope):
        raise Denied(status=403, patient_id=None, resource=RESOURCE, action="create")
    found = await scope_of(session, scope)
    if found is None:
        raise ApiError("M_NOT_FOUND", "Structure inconnue (numéro FINESS).")
    try:
        return await reports.request(
            session, requester=call_me.user_id, scope=found, period=Period(start, end)
        )
    except reports.ReportRefused as refused:
        raise ApiError("M_INVALID_PARAM", str(refused)) from None


@operations.post(
    "/api/v1/extractions", access=BY_PERSON, audit=Audit("create", RESOURCE), body=ExtractionIn
)
async def request_extraction(call: Call, session: AsyncSession) -> tuple[int, Any]:
    """Ask for an activity extraction (produced in the background: 202)."""
    data = call.data(ExtractionIn)
    report = await ask(session, call.me, data.scope, data.start, data.end)
    call.audit_as(f"{RESOURCE}/{report.id}")
    worker = call.request.app[appkeys.REPORTS]

    async def wake() -> None:
        worker.wake()

    call.after_commit.append(wake)
    return 202, dump_report(report)


async def mine(session: AsyncSession, user_id: str) -> list[ExtractionReport]:
    r = table_of(ExtractionReport).c
    rows = await session.execute(
        select(ExtractionReport)
        .where(r.requested_by == user_id)
        .order_by(r.requested_at.desc())
        .limit(200)
    )
    return [row[0] for row in rows]


@operations.get("/api/v1/extractions", access=BY_PERSON, audit=Audit("read", RESOURCE))
async def my_extractions(call: Call, session: AsyncSession) -> tuple[int, Any]:
    """My extractions, newest first, with their status."""
    return 200, {"items": [dump_report(r) for r in await mine(session, call.me.user_id)]}


async def own_report(
    session: AsyncSession, user_id: str, report_id: str
) -> ExtractionReport | None:
    report = await session.get(ExtractionReport, report_id) if len(report_id) <= 36 else None
    if report is None or report.requested_by != user_id:
        return None
    return report


async def _own(call: Call, session: AsyncSession, suffix: str = "") -> ExtractionReport:
    report = await own_report(session, call.me.user_id, call.path("report_id"))
    if report is None:  # somebody else's report does not exist for the caller
        raise Denied(status=404, patient_id=None, resource=RESOURCE, action="read")
    call.audit_as(f"{RESOURCE}/{report.id}{suffix}")
    return report


@operations.get(REPORT, access=BY_PERSON, audit=Audit("read", RESOURCE))
async def get_extraction(call: Call, session: AsyncSession) -> tuple[int, Any]:
    """One of my extractions."""
    return 200, dump_report(await _own(call, session))


def download_name(report: ExtractionReport, extension: str) -> str:
    """« Extraction d'activité – <scope> – du JJ-MM-AAAA au JJ-MM-AAAA.<ext> »"""
    label = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', " ", report.scope_label).strip()[:120]
    days = f"du {report.period_start:%d-%m-%Y} au {report.period_end:%d-%m-%Y}"
    return f"Extraction d'activité – {label} – {days}.{extension}"


def read_checked(path: Path, sha256: str) -> bytes:
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise RuntimeError("extraction file altered")
    return data


async def serve(
    request: web.Request, report: ExtractionReport, kind: Literal["xlsx", "csv"]
) -> web.Response:
    """The report's file (API and page); ApiError 409 while it is not ready."""
    if report.status != READY:
        raise ApiError("CERCLE_CONFLICT", NOT_READY)
    xlsx_path, zip_path = reports.files_of(request.app[appkeys.CONFIG].documents_dir, report.id)
    if kind == "xlsx":
        data = read_checked(xlsx_path, report.xlsx_sha256)
        content_type, name = XLSX_TYPE, download_name(report, "xlsx")
    else:
        data = read_checked(zip_path, report.csv_sha256)
        content_type, name = "application/zip", download_name(report, "zip")
    fallback = f"extraction-{report.period_start}-{report.period_end}.{name.rsplit('.', 1)[1]}"
    return file_download(data, content_type=content_type, filename=name, ascii_filename=fallback)


@operations.get(REPORT + "/xlsx", access=BY_PERSON, audit=Audit("read", RESOURCE))
async def download_xlsx(call: Call, session: AsyncSession) -> web.StreamResponse:
    """The extraction as a workbook (one sheet per theme, a summary with charts)."""
    return await serve(call.request, await _own(call, session, "/xlsx"), "xlsx")


@operations.get(REPORT + "/csv", access=BY_PERSON, audit=Audit("read", RESOURCE))
async def download_csv(call: Call, session: AsyncSession) -> web.StreamResponse:
    """The extraction as CSV files in a zip archive."""
    return await serve(call.request, await _own(call, session, "/csv"), "csv")


# --------------------------------------------------------------------------- the bot's counts
class ActivityIn(Input):
    """What the bot queues as ``activity.record`` (bots/dossier_link/activity.py)."""

    kind: Literal["messages", "signalement", "prise_en_compte", "export"]
    room_id: str = Field(min_length=1, max_length=255)
    ref: str = Field(min_length=1, max_length=300)
    of_ref: str | None = Field(default=None, max_length=300)
    flag_kind: str = Field(default="", max_length=20)
    day: str | None = Field(default=None, max_length=10)
    count: int = Field(default=1, ge=1, le=10**9)
    at_ms: int = Field(ge=0, le=7_258_118_400_000)  # up to 2200-01-01

    @model_validator(mode="after")
    def _valid(self) -> ActivityIn:
        if self.kind == "messages" and self.day is None:
            raise ValueError("« day » est requis pour un nombre de messages")
        if self.kind == "prise_en_compte" and not self.of_ref:
            raise ValueError("« of_ref » est requis pour une prise en compte")
        return self


@operations.post(
    "/api/v1/activity",
    access=allowed_when("service", lambda p: p.kind == "service"),
    audit=Audit("record", "activity"),
    body=ActivityIn,
)
async def record_activity(call: Call, session: AsyncSession) -> tuple[int, Any]:
    """The bot reports a count or a moment of a patient room (idempotent by kind and ref)."""
    data = call.data(ActivityIn)
    try:
        at = check_moment(datetime.fromtimestamp(data.at_ms / 1000, UTC))
        day = (
            parse_day(data.day).isoformat() if data.day else at.astimezone(PARIS).date().isoformat()
        )
    except (OutOfRange, ValueError):
        raise ApiError("M_INVALID_PARAM", "Date ou jour invalide.") from None
    p = table_of(Patient).c
    patient_id = (await session.execute(select(p.id).where(p.room_id == data.room_id))).scalar()
    if patient_id is None:
        raise ApiError("M_NOT_FOUND", "Aucun dossier pour ce salon.")
    call.audit_as(f"activity/{data.kind}", patient_id=patient_id)
    values = {
        "id": new_id(),
        "patient_id": patient_id,
        "kind": data.kind,
        "ref": data.ref,
        "of_ref": data.of_ref,
        "flag_kind": data.flag_kind,
        "at": at,
        "day": day,
        "count": data.count if data.kind == "messages" else 1,
    }
    table = table_of(ActivityEvent)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(**values)
    if data.kind == "messages":  # the day's running total: the largest one stands
        statement = statement.on_conflict_do_update(
            index_elements=["kind", "ref"],
            set_={"count": statement.excluded.count, "at": statement.excluded.at},
            where=table.c.count < statement.excluded.count,
        )
    else:  # a flag, an acknowledgement, an export: once
        statement = statement.on_conflict_do_nothing(index_elements=["kind", "ref"])
    await session.execute(statement)
    return 200, {}
