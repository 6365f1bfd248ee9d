"""/structures/{finess}: a structure's members and referents (issue 18), for its referents
and the admins. Add a member found in the directory, remove one (she loses the files the
structure gave her « avec accès »), name or remove referents, decide the account requests
naming the structure. Every change is a service call in one transaction with its audit row;
a refusal leaves its « refusé » row. Works without JavaScript; POSTs carry the CSRF token.

The directory (search, account requests) is an extension of the dossier: without it the page
shows and manages the members only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.api.context import Ctx
from dossier_service.directory import social_requests as social
from dossier_service.directory.account_requests import Approval, RequestError
from dossier_service.directory.web_common import STATE
from dossier_service.directory.web_social import decide
from dossier_service.schemas import StructureMemberIn
from dossier_service.services import circle, structures
from dossier_service.services.errors import Forbidden, NotFound, ServiceError
from dossier_service.web.pagectx import french_validation, page_context, posted_form, text
from dossier_service.web.pages_login import PAGES

routes = web.RouteTableDef()
FINESS = r"{finess:[0-9A-Za-z]{9}}"
REFUSED = "Page réservée aux référents de la structure et aux administrateurs."


def _resource(request: web.Request, suffix: str = "") -> str:
    return f"page:structures/{request.match_info['finess'].upper()}{suffix}"


async def _page(
    request: web.Request,
    *,
    info: str | None = None,
    error: str | None = None,
    approval: Approval | None = None,
    status: int = 200,
) -> web.Response:
    ctx = page_context(request)
    finess = request.match_info["finess"].upper()
    async with ctx.db.transaction() as session:
        try:
            found = await structures.structure_of(session, finess)
        except NotFound:
            raise web.HTTPNotFound() from None
        allowed = await structures.may_manage(session, ctx.principal, finess)
        members = await circle.active_structure_members(session, finess) if allowed else []
        await ctx.audit(
            session,
            action="read",
            resource=_resource(request),
            patient_id=None,
            outcome="ok" if allowed else "refusé",
        )
    if not allowed:
        raise web.HTTPForbidden(text=REFUSED)
    state = request.app.get(STATE)
    q = request.query.get("q", "").strip()[:120]
    pending, hits, without_rpps = [], [], []
    if state is not None:
        pending = social.pending_for(state.requests, finess)
        if q:
            hits = [h for h in (await state.search(q, per_page=20)).hits if h.mxid][:10]
            without_rpps = await state.without_rpps(q, limit=10)
    return await request.app[PAGES].render(
        request,
        "structure.html",
        {
            "structure": found,
            "members": members,
            "pending": pending,
            "q": q,
            "hits": hits,
            "without_rpps": without_rpps,
            "has_directory": state is not None,
            "notice": info,
            "error": error,
            "approval": approval,
            "activation_url": approval.activation_url(ctx.config.public_url) if approval else None,
            "created": {d.id: datetime.fromisoformat(d.created_at) for d in pending},
        },
        status=status,
    )


@routes.get(f"/structures/{FINESS}")
async def structure_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


Work = Callable[[AsyncSession, Ctx, Any], Awaitable[str]]


async def _write(request: web.Request, action: str, suffix: str, work: Work) -> web.Response:
    """One audited transaction; a refusal audited apart; French messages on the page."""
    ctx = page_context(request)
    form = await posted_form(request, ctx)
    try:
        async with ctx.db.transaction() as session:
            info = await work(session, ctx, form)
            await ctx.audit(
                session, action=action, resource=_resource(request, suffix), patient_id=None
            )
    except Forbidden:
        async with ctx.db.transaction() as session:
            await ctx.audit(
                session,
                action=action,
                resource=_resource(request, suffix),
                patient_id=None,
                outcome="refusé",
            )
        raise web.HTTPForbidden(text=REFUSED) from None
    except NotFound as exc:
        if "Structure" in exc.message:
            raise web.HTTPNotFound() from None
        return await _page(request, error=exc.message, status=404)
    except ServiceError as exc:
        return await _page(request, error=exc.message, status=exc.status)
    except ValidationError as exc:
        return await _page(request, error=french_validation(exc), status=400)
    return await _page(request, info=info)


@routes.post(f"/structures/{FINESS}/membres")
async def add_member(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, form: Any) -> str:
        data = StructureMemberIn.model_validate(
            {
                "matrix_user_id": text(form, "matrix_user_id"),
                "display_name": text(form, "display_name") or text(form, "matrix_user_id"),
                "role": text(form, "role") or "membre",
            },
            strict=False,
        )
        member = await structures.add_member(
            session,
            principal=ctx.principal,
            finess=request.match_info["finess"].upper(),
            data=data,
        )
        return f"{member.display_name} est membre de la structure."

    return await _write(request, "create", "/membres", work)


@routes.post(f"/structures/{FINESS}/membres/{{mid}}/retirer")
async def remove_member(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, form: Any) -> str:
        member = await structures.end_member(
            session,
            principal=ctx.principal,
            finess=request.match_info["finess"].upper(),
            member_id=request.match_info["mid"][:36],
        )
        return (
            f"{member.display_name} ne fait plus partie de la structure (et perd les dossiers "
            "auxquels elle lui donnait accès)."
        )

    return await _write(request, "update", f"/membres/{request.match_info['mid'][:36]}", work)


@routes.post(f"/structures/{FINESS}/membres/{{mid}}/role")
async def change_role(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, form: Any) -> str:
        role = text(form, "role")
        member = await structures.set_role(
            session,
            principal=ctx.principal,
            finess=request.match_info["finess"].upper(),
            member_id=request.match_info["mid"][:36],
            role=role,
        )
        what = "référent·e" if member.role == "referent" else "membre (sans rôle de référent)"
        return f"{member.display_name} est désormais {what}."

    return await _write(request, "update", f"/membres/{request.match_info['mid'][:36]}", work)


@routes.post(f"/structures/{FINESS}/acces")
async def give_places(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, form: Any) -> str:
        given = await structures.give_places(
            session, principal=ctx.principal, finess=request.match_info["finess"].upper()
        )
        if not given:
            return "Chaque membre a déjà accès aux dossiers où la structure est « avec accès »."
        return f"{given} accès à des dossiers donné(s) aux membres de la structure."

    return await _write(request, "update", "/acces", work)


@routes.post(f"/structures/{FINESS}/demandes/{{rid:\\d+}}/{{action:approuver|refuser}}")
async def decide_request(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    form = await posted_form(request, ctx)
    state = request.app.get(STATE)
    finess = request.match_info["finess"].upper()
    rid = int(request.match_info["rid"][:18])
    req = state.requests.get(rid) if state is not None else None
    if req is None or req.finess != finess:  # another structure's request: not here
        raise web.HTTPNotFound()
    try:
        info, approval = await decide(
            request,
            rid,
            request.match_info["action"],
            actor=ctx.principal.user_id,
            admin=ctx.principal.is_admin,
            reason=text(form, "motif"),
        )
    except RequestError as exc:
        if exc.status == 403:  # its « refusée » row is written by the decision itself
            raise web.HTTPForbidden(text=exc.message) from None
        return await _page(request, error=exc.message, status=exc.status)
    return await _page(request, info=info, approval=approval)
