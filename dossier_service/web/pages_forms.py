"""Thematic forms of a file: rendered from their YAML declaration, saved as new versions,
with the history of who changed what and when."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dossier_service import appkeys
from dossier_service.api.context import Ctx, open_file
from dossier_service.form_answers import (
    FormAnswerError,
    answers_from_web_form,
    diff_answers,
    validate_answers,
)
from dossier_service.forms_schema import FormDefinition
from dossier_service.policy import Action, Decision, decide
from dossier_service.services import forms as forms_service
from dossier_service.services.errors import ServiceError
from dossier_service.web.pagectx import page_context, posted_form
from dossier_service.web.pages_login import PAGES
from dossier_service.web.pages_patients import notice_of

routes = web.RouteTableDef()


def _form(request: web.Request) -> FormDefinition:
    form = request.app[appkeys.FORMS].get(request.match_info["form"])
    if form is None:
        raise web.HTTPNotFound()
    return form


async def _render(
    request: web.Request,
    ctx: Ctx,
    form: FormDefinition,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    pid = request.match_info["pid"]
    async with ctx.db.transaction() as session:
        access = await open_file(session, ctx, pid, Action.READ, f"page:form:{form.key}")
        history = await forms_service.versions(session, patient_id=pid, form_id=form.key)
        await ctx.audit(session, action="read", resource=f"page:form:{form.key}", patient_id=pid)
    versions = []
    for i, row in enumerate(history):  # newest first
        previous = history[i + 1].answers if i + 1 < len(history) else None
        versions.append(
            {
                "version": row.version,
                "created_at": row.created_at,
                "created_by": row.created_by,
                "changes": diff_answers(form, previous, row.answers),
            }
        )
    current = history[0] if history else None
    return await request.app[PAGES].render(
        request,
        "formulaire.html",
        {
            "nav": "patients",
            "patient": access.patient,
            "form": form,
            "current": current,
            "values": values if values is not None else dict(current.answers if current else {}),
            "errors": errors or {},
            "history": versions,
            "error": error,
            "notice": None if (error or errors) else notice_of(request),
            "can_write": decide(ctx.principal, access.membership, Action.WRITE) is Decision.ALLOW,
        },
        status=status,
    )


@routes.get("/patients/{pid}/formulaires/{form}")
async def form_page(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    return await _render(request, ctx, _form(request))


@routes.post("/patients/{pid}/formulaires/{form}")
async def form_save(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    form = _form(request)
    post = await posted_form(request, ctx)
    pid = request.match_info["pid"]
    raw = answers_from_web_form(form, post)
    try:
        base_version = int(str(post.get("_version", "0")))
    except ValueError:
        base_version = 0
    try:
        validate_answers(form, raw, today=ctx.today())  # per-field messages for the page
    except FormAnswerError as exc:
        async with ctx.db.transaction() as session:  # the outsider still gets the 404 first
            await open_file(session, ctx, pid, Action.WRITE, f"page:form:{form.key}")
        return await _render(request, ctx, form, values=raw, errors=exc.errors, status=400)
    try:
        async with ctx.db.transaction() as session:
            access = await open_file(session, ctx, pid, Action.WRITE, f"page:form:{form.key}")
            await forms_service.save_answers(
                session,
                principal=ctx.principal,
                patient=access.patient,
                form=form,
                answers=raw,
                base_version=base_version,
                today=ctx.today(),
            )
            await ctx.audit(
                session, action="update", resource=f"page:form:{form.key}", patient_id=pid
            )
    except ServiceError as exc:
        return await _render(request, ctx, form, values=raw, error=exc.message, status=exc.status)
    raise web.HTTPSeeOther(f"/patients/{pid}/formulaires/{form.key}?ok=formulaire")
