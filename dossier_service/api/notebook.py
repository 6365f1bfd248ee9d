"""The liaison notebook and the thematic forms of a file."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.errors import ApiError
from dossier_service.api.operation import Audit, Call, Operations, Param, member_of_file
from dossier_service.api.serialize import dump, dump_all
from dossier_service.forms_schema import FormDefinition
from dossier_service.policy import Action
from dossier_service.schemas import FormAnswersIn, NotebookIn
from dossier_service.services import forms, notebook

operations = Operations()
SOURCE_HEADER = "X-Cercle-Source"  # "matrix" when the bot relays a conversation event
NOTEBOOK = "/api/v1/patients/{patient_id}/notebook"
FORMS = "/api/v1/patients/{patient_id}/forms"
READ = member_of_file(Action.READ)
WRITE = member_of_file(Action.WRITE)


@operations.get(
    NOTEBOOK,
    access=READ,
    audit=Audit("read", "notebook"),
    query=(
        Param("limit", "int", 50, low=1, high=200),
        Param("before", "datetime"),
        Param("kind"),
    ),
)
async def list_entries(call: Call, session: AsyncSession) -> tuple[int, Any]:
    limit = call.query["limit"]
    rows = await notebook.list_entries(
        session,
        patient_id=call.patient.id,
        limit=limit,
        before=call.query["before"],
        kind=call.query["kind"],
    )
    nxt = rows[-1].created_at.isoformat() if len(rows) == limit else None
    return 200, {"items": dump_all(rows), "next_before": nxt}


@operations.post(
    NOTEBOOK, access=WRITE, audit=Audit("create", "notebook"), body=NotebookIn, idempotent=True
)
async def add_entry(call: Call, session: AsyncSession) -> tuple[int, Any]:
    data = call.data(NotebookIn)
    relayed = call.request.headers.get(SOURCE_HEADER) == "matrix"
    service = call.me.kind == "service"
    entry = await call.on_file(
        notebook.add_entry,
        session,
        kind=data.kind,
        text=data.text,
        source=("matrix" if relayed else "api") if service else "web",
    )
    return 201, dump(entry)


@operations.get(FORMS, access=READ, audit=Audit("read", "forms"))
async def list_forms(call: Call, session: AsyncSession) -> tuple[int, Any]:
    latest = await forms.latest_by_form(session, patient_id=call.patient.id)
    items = [
        {
            "form_id": f.key,
            "title": f.title,
            "version": latest[f.key].version if f.key in latest else 0,
            "updated_at": latest[f.key].created_at.isoformat() if f.key in latest else None,
        }
        for f in call.request.app[appkeys.FORMS]
    ]
    return 200, {"items": items}


def _form(call: Call) -> FormDefinition:
    """The form the path names (after the file's access: an outsider learns nothing)."""
    form = call.request.app[appkeys.FORMS].get(call.path("form_id"))
    if form is None:
        raise ApiError("M_NOT_FOUND", "Formulaire inconnu.")
    call.audit_as(f"forms/{form.key}")
    return form


@operations.get(FORMS + "/{form_id}", access=READ, audit=Audit("read", "forms"))
async def get_form(call: Call, session: AsyncSession) -> tuple[int, Any]:
    form = _form(call)
    history = await forms.versions(session, patient_id=call.patient.id, form_id=form.key)
    return 200, {
        "form_id": form.key,
        "title": form.title,
        "current": dump(history[0]) if history else None,
        "versions": [
            {
                "version": h.version,
                "created_by": h.created_by,
                "created_at": h.created_at.isoformat(),
                "changed_fields": h.changed_fields,
            }
            for h in history
        ],
    }


@operations.put(
    FORMS + "/{form_id}", access=WRITE, audit=Audit("update", "forms"), body=FormAnswersIn
)
async def save_form(call: Call, session: AsyncSession) -> tuple[int, Any]:
    data = call.data(FormAnswersIn)
    row = await call.on_file(
        forms.save_answers,
        session,
        form=_form(call),
        answers=data.answers,
        base_version=data.base_version,
        today=call.today(),
    )
    return 200, dump(row)
