"""What every API handler needs: the caller, the request body, the patient's file, the
audit row; shared by the page handlers too."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy import and_, bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from deployment.conventions import PARIS
from dossier_service import appkeys, auth, bounded
from dossier_service.api.errors import ApiError, Denied
from dossier_service.config import DossierConfig
from dossier_service.db import Database
from dossier_service.models.circle import CircleMember
from dossier_service.models.patient import Patient
from dossier_service.models.types import utcnow
from dossier_service.policy import Action, Decision, Membership, Principal, decide
from dossier_service.services import journal

M = TypeVar("M", bound=BaseModel)


@dataclass
class Ctx:
    request: web.Request
    principal: Principal
    session_info: auth.Session | None
    config: DossierConfig
    db: Database
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    @property
    def remote(self) -> str:
        return self.request.remote or ""

    def now(self) -> datetime:
        clock = self.request.app.get(appkeys.CLOCK)
        return clock() if clock is not None else utcnow()

    def today(self) -> date:
        """Today in Europe/Paris (what "in the past" means for people)."""
        return self.now().astimezone(PARIS).date()

    async def audit(
        self,
        session: AsyncSession,
        *,
        action: str,
        resource: str,
        patient_id: str | None,
        outcome: str = "ok",
    ) -> None:
        await journal.audit(
            session,
            principal=self.principal,
            action=action,
            resource=resource,
            patient_id=patient_id,
            remote=self.remote,
            request_id=self.request_id,
            outcome=outcome,
        )


CTX_KEY = web.RequestKey("dossier_ctx", Ctx)


def context(request: web.Request, *, check_csrf: bool = True) -> Ctx:
    """Authenticate the request (AuthError otherwise); API callers get the CSRF check."""
    config = request.app[appkeys.CONFIG]
    principal, session = auth.authenticate(request, config)
    if check_csrf:
        auth.check_api_csrf(request, config, session)
    ctx = Ctx(
        request=request,
        principal=principal,
        session_info=session,
        config=config,
        db=request.app[appkeys.DATABASE],
    )
    request[CTX_KEY] = ctx
    return ctx


async def read_raw(request: web.Request) -> bytes:
    """The JSON body's bytes, refused when too large or not declared as JSON."""
    config = request.app[appkeys.CONFIG]
    if request.content_length is not None and request.content_length > config.json_max_size:
        raise ApiError("M_TOO_LARGE")
    if request.content_type not in ("application/json", "application/octet-stream", ""):
        raise ApiError("M_NOT_JSON", "Le corps de la requête doit être du JSON (application/json).")
    raw = await request.content.read(config.json_max_size + 1)
    if len(raw) > config.json_max_size:
        raise ApiError("M_TOO_LARGE")
    return raw


async def read_json(request: web.Request, model: type[M]) -> M:
    """Parse and validate the JSON body; every problem is a 4xx, nothing is echoed back."""
    return parse_model(model, await read_raw(request))


def parse_model(model: type[M], raw: bytes) -> M:
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise ApiError("M_NOT_JSON") from None
        where = ".".join(str(p) for p in first["loc"]) or "corps"
        kind = _french(first["type"])
        if first["type"] == "value_error" and isinstance(first.get("ctx"), dict):
            kind = str(first["ctx"].get("error") or kind)  # our validators' French text
        raise ApiError("M_BAD_JSON", f"Champ invalide : {where} ({kind}).") from None


def _french(kind: str) -> str:
    return {
        "missing": "obligatoire",
        "extra_forbidden": "champ inconnu",
        "string_type": "texte attendu",
        "int_type": "nombre entier attendu",
        "bool_type": "booléen attendu",
        "list_type": "liste attendue",
        "dict_type": "objet attendu",
        "date_from_datetime_parsing": "date AAAA-MM-JJ attendue",
        "date_parsing": "date AAAA-MM-JJ attendue",
        "datetime_parsing": "date et heure ISO 8601 attendues",
        "literal_error": "valeur non permise",
        "string_pattern_mismatch": "format invalide",
        "string_too_long": "trop long",
        "string_too_short": "trop court",
        "too_long": "trop d'éléments",
        "value_error": "valeur invalide",
        "model_type": "objet attendu",
        "model_attributes_type": "objet attendu",
    }.get(kind, "valeur invalide")


def query_int(
    request: web.Request, name: str, default: int, *, low: int = 0, high: int = 10**9
) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError("M_INVALID_PARAM", f"Paramètre {name} : nombre entier attendu.") from None
    if not low <= value <= high:
        raise ApiError("M_INVALID_PARAM", f"Paramètre {name} hors limites ({low}–{high}).")
    return value


def query_date(request: web.Request, name: str) -> date | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return bounded.parse_day(raw)
    except bounded.OutOfRange as exc:
        raise ApiError("M_INVALID_PARAM", f"Paramètre {name} : {exc}.") from None
    except ValueError:
        raise ApiError("M_INVALID_PARAM", f"Paramètre {name} : date AAAA-MM-JJ attendue.") from None


def query_datetime(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return bounded.parse_moment(raw, default_zone=PARIS)
    except bounded.OutOfRange as exc:
        raise ApiError("M_INVALID_PARAM", f"Paramètre {name} : {exc}.") from None
    except ValueError:
        raise ApiError("M_INVALID_PARAM", f"Paramètre {name} : date ISO 8601 attendue.") from None


def page(limit: int, offset: int, count: int) -> int | None:
    """The next offset when a page is full, else None."""
    return offset + limit if count == limit else None


# Built once (an immutable statement, its cache key memoised): the file and the caller's
# current place in its care circle, the one with access first.
_FILE_AND_MEMBERSHIP = (
    select(Patient, CircleMember)
    .outerjoin(
        CircleMember,
        and_(
            col(CircleMember.patient_id) == col(Patient.id),
            col(CircleMember.matrix_user_id) == bindparam("uid"),
            col(CircleMember.ended_at).is_(None),
        ),
    )
    .where(Patient.id == bindparam("pid"))
    .order_by(col(CircleMember.has_access).desc())
    .limit(1)
)


def acting_person(ctx: Ctx) -> Principal:
    """Whose rights apply: the bot acting on someone's behalf (``X-Cercle-On-Behalf-Of``)
    has exactly that person's access to the file, never more; on its own it is privileged."""
    principal = ctx.principal
    if principal.kind == "service" and principal.on_behalf_of:
        person = principal.on_behalf_of
        return Principal(user_id=person, is_admin=person in ctx.config.admins)
    return principal


@dataclass(frozen=True)
class FileAccess:
    patient: Patient
    membership: Membership | None


async def open_file(
    session: AsyncSession, ctx: Ctx, patient_id: str, action: Action, resource: str
) -> FileAccess:
    """The patient's file if the caller may ``action`` it; Denied (404/403) otherwise."""
    patient: Patient | None = None
    member: CircleMember | None = None
    acting = acting_person(ctx)
    if len(patient_id) <= 40:
        if acting.kind == "user":
            # the file and the caller's place in its circle, in one query
            found = await session.exec(
                _FILE_AND_MEMBERSHIP, params={"pid": patient_id, "uid": acting.user_id}
            )
            row = found.first()
            if row is not None:
                patient, member = row
        else:
            patient = await session.get(Patient, patient_id)
    if patient is None:
        raise Denied(status=404, patient_id=None, resource=resource, action=action.value)
    membership = Membership(role=member.role, has_access=member.has_access) if member else None
    decision = decide(acting, membership, action)
    if decision is Decision.NOT_FOUND:
        raise Denied(status=404, patient_id=patient.id, resource=resource, action=action.value)
    if decision is Decision.FORBIDDEN:
        raise Denied(status=403, patient_id=patient.id, resource=resource, action=action.value)
    return FileAccess(patient=patient, membership=membership)


async def audit_refusal(request: web.Request, denied: Denied) -> None:
    ctx = request.get(CTX_KEY)
    if not isinstance(ctx, Ctx):
        return
    async with ctx.db.transaction() as session:
        await ctx.audit(
            session,
            action=denied.action,
            resource=denied.resource,
            patient_id=denied.patient_id,
            outcome="refusé",
        )
