"""/api/v1/patients: the list, opening a file, the whole file as JSON, identity, status,
death declaration and its cancellation, the link to the patient's Matrix room."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.context import Ctx, FileAccess, page
from dossier_service.api.errors import ApiError, Denied
from dossier_service.api.operation import (
    SIGNED_IN,
    Audit,
    Call,
    Operations,
    Param,
    allowed_when,
    member_of_file,
)
from dossier_service.api.serialize import dump
from dossier_service.models.patient import (
    Patient,
    patient_public,
)
from dossier_service.policy import Action, may_create_patient
from dossier_service.schemas import (
    DeathCancelIn,
    DeathIn,
    FileStatusIn,
    IdentityUpdate,
    PatientCreate,
    RoomLinkIn,
)
from dossier_service.services import patients, read_models

operations = Operations()
NOTEBOOK_IN_FILE = 50
FILE = "/api/v1/patients/{patient_id}"
READ = member_of_file(Action.READ)
WRITE = member_of_file(Action.WRITE)


def summary(patient: Patient) -> dict[str, Any]:
    """What a list shows: no INS number, no address."""
    return {
        "id": patient.id,
        "label": patient.label,
        "birth_name": patient.birth_name,
        "used_name": patient.used_name,
        "first_birth_first_name": patient.first_birth_first_name,
        "used_first_name": patient.used_first_name,
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
        "sex": patient.sex,
        "identity_status": patient.identity_status,
        "file_status": patient.file_status,
        "room_id": patient.room_id,
        "deceased": patient.death_date is not None,
    }


async def full_file(session: AsyncSession, ctx: Ctx, access: FileAccess) -> dict[str, Any]:
    """Everything the caller may see of one file (the JSON behind the file's page)."""
    sections = await read_models.file_sections(
        session,
        patient_id=access.patient.id,
        principal=ctx.principal,
        membership=access.membership,
        now=ctx.now(),
        today=ctx.today(),
        notebook_limit=NOTEBOOK_IN_FILE,
        cache=ctx.request.app.get(appkeys.FILE_CACHE),
        kept_revision=ctx.db.file_revision(access.patient.id),
    )
    return {
        "patient": patient_public(access.patient),
        "my_role": access.membership.role if access.membership else None,
        **sections,
    }


@operations.get(
    "/api/v1/patients",
    access=SIGNED_IN,
    audit=Audit("read", "patients.list"),
    query=(
        Param("q", max_length=100),
        Param("room_id"),
        Param("limit", "int", 50, low=1, high=200),
        Param("offset", "int", 0),
    ),
)
async def list_patients(call: Call, session: AsyncSession) -> tuple[int, Any]:
    q = call.query
    rows, total = await patients.list_patients(
        session,
        principal=call.me,
        search=q["q"],
        room_id=q["room_id"],
        limit=q["limit"],
        offset=q["offset"],
    )
    return 200, {
        "items": [summary(p) for p in rows],
        "total": total,
        "next": page(q["limit"], q["offset"], len(rows)),
    }


async def _who_may_create(call: Call) -> None:
    """Only the service names another coordinator, the file's id or its room."""
    data, me = call.data(PatientCreate), call.me
    if data.coordinator and me.kind != "service" and data.coordinator != me.user_id:
        raise ApiError("M_FORBIDDEN", "Seul le service peut désigner un autre coordinateur.")
    if data.id and me.kind != "service":
        raise ApiError("M_FORBIDDEN", "Seul le service peut choisir l'identifiant du dossier.")
    if data.room_id and me.kind != "service":
        raise ApiError("M_FORBIDDEN", ROOM_LINK_BY_BOT)


@operations.post(
    "/api/v1/patients",
    access=allowed_when("may_create_patient", may_create_patient),
    audit=Audit("create", "patient"),
    body=PatientCreate,
    before=_who_may_create,
    idempotent=True,
)
async def create_patient(call: Call, session: AsyncSession) -> tuple[int, Any]:
    patient = await patients.create_patient(
        session, principal=call.me, data=call.data(PatientCreate), today=call.today()
    )
    call.audit_as(patient_id=patient.id)
    return 201, {"id": patient.id, "patient": patient_public(patient)}


@operations.get(FILE, access=READ, audit=Audit("read", "patient"))
async def get_file(call: Call, session: AsyncSession) -> tuple[int, Any]:
    assert call.file is not None
    return 200, await full_file(session, call.ctx, call.file)


@operations.patch(
    FILE + "/identity", access=WRITE, audit=Audit("update", "patient.identity"), body=IdentityUpdate
)
async def update_identity(call: Call, session: AsyncSession) -> tuple[int, Any]:
    changed = await call.on_file(
        patients.update_identity, session, data=call.data(IdentityUpdate), today=call.today()
    )
    return 200, {"changed": changed, "patient": patient_public(call.patient)}


@operations.post(
    FILE + "/status", access=WRITE, audit=Audit("update", "patient.status"), body=FileStatusIn
)
async def set_status(call: Call, session: AsyncSession) -> tuple[int, Any]:
    data = call.data(FileStatusIn)
    change = await call.on_file(
        patients.set_file_status,
        session,
        status=data.status,
        comment=data.comment,
        allowed=call.ctx.config.file_statuses,
    )
    return 201, dump(change)


@operations.post(
    FILE + "/death",
    access=WRITE,
    audit=Audit("create", "patient.death"),
    body=DeathIn,
    idempotent=True,
)
async def declare_death(call: Call, session: AsyncSession) -> tuple[int, Any]:
    declaration = await call.on_file(
        patients.declare_death,
        session,
        death_date=call.data(DeathIn).death_date,
        today=call.today(),
    )
    return 201, dump(declaration)


@operations.post(
    FILE + "/death/cancel",
    access=WRITE,
    resource="patient.death",
    audit=Audit("update", "patient.death.cancel"),
    body=DeathCancelIn,
    idempotent=True,
)
async def cancel_death(call: Call, session: AsyncSession) -> tuple[int, Any]:
    declaration = await call.on_file(
        patients.cancel_death, session, reason=call.data(DeathCancelIn).reason
    )
    return 200, dump(declaration)


ROOM_LINK_BY_BOT = (
    "Un dossier se lie à une conversation depuis la conversation elle-même, avec le bot : "
    "!patient lier <identifiant du dossier>."
)


@operations.put(
    FILE + "/room",
    access=member_of_file(Action.MANAGE_CIRCLE),
    audit=Audit("update", "patient.room"),
    body=RoomLinkIn,
)
async def link_room(call: Call, session: AsyncSession) -> tuple[int, Any]:
    """Link the file to its patient room. Only the bot does it: it has seen, in Matrix,
    that the person asking is a joined member of the room, that the bot is in it with the
    power to furnish it (a patient room), and it acts on her behalf (her circle role is
    checked here); a room already linked to another file is a 409."""
    if call.me.kind != "service":
        # nobody here can vouch for the person's membership of that room
        raise Denied(
            status=403,
            patient_id=call.patient.id,
            resource="patient.room",
            action=Action.MANAGE_CIRCLE.value,
        )
    patient = await call.on_file(patients.link_room, session, room_id=call.data(RoomLinkIn).room_id)
    return 200, {"id": patient.id, "room_id": patient.room_id}
