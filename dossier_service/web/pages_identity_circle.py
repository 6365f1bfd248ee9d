"""Writes of the file's administrative side: INS identity, death declaration, file status,
and the care circle (coordinators). Each is one audited transaction (``write_section``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.api.context import Ctx, FileAccess
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
from dossier_service.web.pages_patients import write_section

routes = web.RouteTableDef()


TEXT_TRAITS = ("label", "birth_name", "used_name", "used_first_name", "birth_commune",
               "birth_country", "postcode", "address", "email", "identity_document_type")  # fmt: skip


def identity_changes(patient: Any, form: Any) -> dict[str, Any]:
    """Only what the person changed: unchanged traits are not re-sent (the INS rules freeze
    some of them once the identity is verified); the INS number only when typed."""
    wanted: dict[str, Any] = {key: text(form, key) for key in TEXT_TRAITS}
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


@routes.post("/patients/{pid}/identite")
async def update_identity(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        changes = identity_changes(access.patient, form)
        if not changes:
            raise PageInputError("Aucune modification de l'identité.")
        data = IdentityUpdate.model_validate(
            {k: (v.isoformat() if isinstance(v, date) else v) for k, v in changes.items()},
            strict=False,
        )
        await patients_service.update_identity(
            session, principal=ctx.principal, patient=access.patient, data=data, today=ctx.today()
        )

    return await write_section(request, "identite", Action.WRITE, work, verb="update")


@routes.post("/patients/{pid}/deces")
async def declare_death(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        day = parse_day(text(form, "death_date"))
        if day is None:
            raise PageInputError("Indiquez la date du décès.")
        await patients_service.declare_death(
            session,
            principal=ctx.principal,
            patient=access.patient,
            death_date=day,
            today=ctx.today(),
        )

    return await write_section(request, "deces", Action.WRITE, work, anchor="identite")


@routes.post("/patients/{pid}/deces/annulation")
async def cancel_death(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        data = DeathCancelIn.model_validate({"reason": text(form, "reason")}, strict=False)
        await patients_service.cancel_death(
            session, principal=ctx.principal, patient=access.patient, reason=data.reason
        )

    return await write_section(
        request, "deces", Action.WRITE, work, anchor="identite", verb="update"
    )


@routes.post("/patients/{pid}/statut")
async def set_status(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        await patients_service.set_file_status(
            session,
            principal=ctx.principal,
            patient=access.patient,
            status=text(form, "status"),
            comment=text(form, "comment")[:1000],
            allowed=ctx.config.file_statuses,
        )

    return await write_section(request, "statut", Action.WRITE, work, verb="update")


@routes.post("/patients/{pid}/cercle")
async def add_member(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        data = CircleMemberIn.model_validate(
            {
                "kind": text(form, "kind"),
                "display_name": text(form, "display_name"),
                "matrix_user_id": optional(form, "matrix_user_id"),
                "directory_id": optional(form, "directory_id"),
                "profession": text(form, "profession"),
                "specialty": text(form, "specialty"),
                "role": text(form, "role"),
                "has_access": text(form, "has_access") == "oui",
                "description": text(form, "description"),
            },
            strict=False,
        )
        await circle.add_member(session, principal=ctx.principal, patient=access.patient, data=data)

    return await write_section(request, "cercle", Action.MANAGE_CIRCLE, work)


async def _member(
    session: AsyncSession, ctx: Ctx, access: FileAccess, request: web.Request, own: str = ""
) -> CircleMember:
    """The circle member the page's path names; ``own`` (« votre propre rôle ») when the
    change may not be made to oneself."""
    member = await circle.get_member(
        session, patient_id=access.patient.id, member_id=request.match_info["mid"][:36]
    )
    if own and member.matrix_user_id == ctx.principal.user_id:
        raise PageInputError(f"Vous ne pouvez pas modifier {own}.")
    return member


@routes.post("/patients/{pid}/cercle/{mid}/fin")
async def end_member(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        member = await _member(session, ctx, access, request)
        await circle.end_member(
            session, principal=ctx.principal, patient=access.patient, member=member
        )

    return await write_section(request, "cercle", Action.MANAGE_CIRCLE, work, verb="update")


@routes.post("/patients/{pid}/cercle/{mid}/role")
async def change_role(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        member = await _member(session, ctx, access, request, "votre propre rôle")
        data = CircleMemberUpdate.model_validate({"role": text(form, "role")}, strict=False)
        await circle.update_member(
            session, principal=ctx.principal, patient=access.patient, member=member, data=data
        )

    return await write_section(request, "cercle", Action.MANAGE_CIRCLE, work, verb="update")


@routes.post("/patients/{pid}/cercle/{mid}/acces")
async def toggle_access(request: web.Request) -> web.StreamResponse:
    async def work(session: AsyncSession, ctx: Ctx, access: FileAccess, form: Any) -> None:
        member = await _member(session, ctx, access, request, "votre propre habilitation")
        await circle.update_member(
            session,
            principal=ctx.principal,
            patient=access.patient,
            member=member,
            data=CircleMemberUpdate(has_access=text(form, "has_access") == "oui"),
        )

    return await write_section(request, "cercle", Action.MANAGE_CIRCLE, work, verb="update")
