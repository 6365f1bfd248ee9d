"""Writes of the file's administrative side: INS identity, death declaration, file status,
and the care circle (coordinators). Each is one audited transaction (``section_write``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from dossier_service.models.circle import CircleMember
from dossier_service.policy import Action
from dossier_service.schemas import (
    CircleMemberIn,
    CircleMemberUpdate,
    DeathCancelIn,
    IdentityUpdate,
)
from dossier_service.services import circle
from dossier_service.services import patients as patients_service
from dossier_service.web.pagectx import (
    PageInputError,
    optional,
    parse_day,
    text,
)
from dossier_service.web.pages_patients import FileWrite, section_write

routes = web.RouteTableDef()


# the identity form's fields read as they are typed (the document type: None when blank)
TEXT_FIELDS = (*patients_service.TEXT_TRAITS, "identity_document_type")


def identity_changes(patient: Any, form: Any) -> dict[str, Any]:
    """Only what the person changed: unchanged traits are not re-sent (the INS rules freeze
    some of them once the identity is verified); the INS number only when typed."""
    wanted: dict[str, Any] = {key: text(form, key) for key in TEXT_FIELDS}
    wanted["birth_name"] = wanted["birth_name"].upper()
    wanted["birth_first_names"] = text(form, "birth_first_names").split()
    wanted["phones"] = [p.strip() for p in text(form, "phones").split(",") if p.strip()]
    wanted["sex"] = optional(form, "sex")
    wanted["birth_insee_code"] = (optional(form, "birth_insee_code") or "").upper() or None
    wanted["birth_date"] = parse_day(text(form, "birth_date"))
    wanted["identity_document_date"] = parse_day(text(form, "identity_document_date"))
    wanted["identity_document_type"] = wanted["identity_document_type"] or None
    wanted["identity_status"] = text(form, "identity_status") or patient.identity_status
    changes = {k: v for k, v in wanted.items() if getattr(patient, k) != v}
    if text(form, "ins_number"):
        changes["ins_number"] = text(form, "ins_number").replace(" ", "")
    return changes


@section_write(routes, "/patients/{pid}/identite", "identite", verb="update")
async def update_identity(w: FileWrite) -> None:
    changes = identity_changes(w.patient, w.form)
    if not changes:
        raise PageInputError("Aucune modification de l'identité.")
    data = IdentityUpdate.model_validate(
        {k: (v.isoformat() if isinstance(v, date) else v) for k, v in changes.items()},
        strict=False,
    )
    await patients_service.update_identity(
        w.session, principal=w.principal, patient=w.patient, data=data, today=w.ctx.today()
    )


@section_write(routes, "/patients/{pid}/deces", "deces", anchor="identite")
async def declare_death(w: FileWrite) -> None:
    day = parse_day(w.text("death_date"))
    if day is None:
        raise PageInputError("Indiquez la date du décès.")
    await patients_service.declare_death(
        w.session, principal=w.principal, patient=w.patient, death_date=day, today=w.ctx.today()
    )


@section_write(
    routes, "/patients/{pid}/deces/annulation", "deces", anchor="identite", verb="update"
)
async def cancel_death(w: FileWrite) -> None:
    data = DeathCancelIn.model_validate({"reason": w.text("reason")}, strict=False)
    await patients_service.cancel_death(
        w.session, principal=w.principal, patient=w.patient, reason=data.reason
    )


@section_write(routes, "/patients/{pid}/statut", "statut", verb="update")
async def set_status(w: FileWrite) -> None:
    await patients_service.set_file_status(
        w.session,
        principal=w.principal,
        patient=w.patient,
        status=w.text("status"),
        comment=w.text("comment")[:1000],
        allowed=w.ctx.config.file_statuses,
    )


@section_write(routes, "/patients/{pid}/cercle", "cercle", Action.MANAGE_CIRCLE)
async def add_member(w: FileWrite) -> None:
    data = CircleMemberIn.model_validate(
        {
            "kind": w.text("kind"),
            "display_name": w.text("display_name"),
            "matrix_user_id": w.optional("matrix_user_id"),
            "directory_id": w.optional("directory_id"),
            "profession": w.text("profession"),
            "specialty": w.text("specialty"),
            "role": w.text("role"),
            "has_access": w.text("has_access") == "oui",
            "description": w.text("description"),
        },
        strict=False,
    )
    await circle.add_member(w.session, principal=w.principal, patient=w.patient, data=data)


async def _member(w: FileWrite, own: str = "") -> CircleMember:
    """The circle member the page's path names; ``own`` (« votre propre rôle ») when the
    change may not be made to oneself."""
    member = await circle.get_member(w.session, patient_id=w.patient.id, member_id=w.row_id("mid"))
    if own and member.matrix_user_id == w.principal.user_id:
        raise PageInputError(f"Vous ne pouvez pas modifier {own}.")
    return member


@section_write(
    routes, "/patients/{pid}/cercle/{mid}/fin", "cercle", Action.MANAGE_CIRCLE, verb="update"
)
async def end_member(w: FileWrite) -> None:
    member = await _member(w)
    await circle.end_member(w.session, principal=w.principal, patient=w.patient, member=member)


@section_write(
    routes, "/patients/{pid}/cercle/{mid}/role", "cercle", Action.MANAGE_CIRCLE, verb="update"
)
async def change_role(w: FileWrite) -> None:
    member = await _member(w, "votre propre rôle")
    data = CircleMemberUpdate.model_validate({"role": w.text("role")}, strict=False)
    await circle.update_member(
        w.session, principal=w.principal, patient=w.patient, member=member, data=data
    )


@section_write(
    routes, "/patients/{pid}/cercle/{mid}/acces", "cercle", Action.MANAGE_CIRCLE, verb="update"
)
async def toggle_access(w: FileWrite) -> None:
    member = await _member(w, "votre propre habilitation")
    await circle.update_member(
        w.session,
        principal=w.principal,
        patient=w.patient,
        member=member,
        data=CircleMemberUpdate(has_access=w.text("has_access") == "oui"),
    )
