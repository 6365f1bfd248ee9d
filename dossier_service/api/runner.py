"""One transaction per request: the change, its notebook entry, outbox event and audit row
commit together; idempotency keys make a replayed write answer what the first one did.

``serve`` runs a declared ``Operation`` (api/operation.py): authentication and access,
query and body parsing, the handler, then the audit row the declaration names, in the same
transaction. A call whose audit row was not written (``journal.audit`` counts the rows it
writes in the session) is rolled back: no write reaches the database without its trace."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys
from dossier_service.api.context import Ctx, context, open_file, parse_model, read_raw
from dossier_service.api.errors import ApiError
from dossier_service.api.operation import Call, Operation, Reply
from dossier_service.api.serialize import json_response
from dossier_service.services import idempotency, journal

Work = Callable[[AsyncSession], Awaitable[Reply]]
IDEMPOTENCY_HEADER = "Idempotency-Key"
OPERATIONS = web.AppKey("dossier_operations", dict)  # (method, path) -> Operation


class AuditMissing(RuntimeError):
    """A call reached its commit without its audit row: it is rolled back (a 500)."""


def idempotency_key(request: web.Request, body_key: str | None = None) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER) or body_key
    if key is not None and not (0 < len(key) <= 200):
        raise ApiError("M_INVALID_PARAM", "Clé d'idempotence invalide.")
    return key


async def run(
    db: Any, actor: str, request: web.Request, work: Work, *, key: str | None, raw: bytes
) -> web.StreamResponse:
    """Run ``work`` in one transaction and answer its (status, body) as JSON."""
    fingerprint = idempotency.fingerprint(request.method, request.path, raw)
    for attempt in (1, 2):
        try:
            async with db.transaction() as session:
                if key is not None:
                    previous = await idempotency.recall(
                        session, actor=actor, key=key, request_fingerprint=fingerprint
                    )
                    if previous is not None:
                        return json_response(previous.body, status=previous.status)
                reply = await work(session)
                if isinstance(reply, web.StreamResponse):
                    assert key is None, "une réponse brute ne se rejoue pas"
                    return reply
                status, body = reply
                if key is not None:
                    await idempotency.remember(
                        session,
                        actor=actor,
                        key=key,
                        request_fingerprint=fingerprint,
                        status=status,
                        body=body,
                    )
            return json_response(body, status=status)
        except IntegrityError:
            # a concurrent request with the same key won the race: answer what it stored
            if key is None or attempt == 2:
                raise ApiError("CERCLE_CONFLICT") from None
    raise ApiError("CERCLE_CONFLICT")  # pragma: no cover


def register(app: web.Application, tables: Iterable[Iterable[Operation]]) -> None:
    """Route every declared operation; the OpenAPI description reads the same table."""
    operations: dict[tuple[str, str], Operation] = app.setdefault(OPERATIONS, {})
    for table in tables:
        for op in table:
            if (op.method, op.path) in operations:
                raise ValueError(f"{op.method} {op.path} déclarée deux fois")
            operations[(op.method, op.path)] = op

            async def endpoint(request: web.Request, op: Operation = op) -> web.StreamResponse:
                return await serve(op, request)

            endpoint.operation = op  # type: ignore[attr-defined]
            app.router.add_route(op.method, op.path, endpoint)


async def serve(op: Operation, request: web.Request) -> web.StreamResponse:
    ctx: Ctx | None = context(request) if op.access.authenticated else None
    if ctx is not None and op.access.allowed is not None and not op.access.allowed(ctx.principal):
        raise ApiError("M_FORBIDDEN", op.access.refusal)
    call = Call(op=op, request=request, context=ctx, principal=ctx.principal if ctx else None)
    call.query = {param.name: param.parse(request) for param in op.query}
    if isinstance(op.body, type) and issubclass(op.body, BaseModel):
        call.raw = await read_raw(request)
        call.body = parse_model(op.body, call.raw)
    elif op.body is not None:
        call.body, call.raw = await op.body.read(call)
    elif op.idempotent:
        call.raw = await read_raw(request)
    if op.before is not None:
        early = await op.before(call)
        if early is not None or op.handler is None:
            assert early is not None
            return early
    key = None
    if op.idempotent:
        key = idempotency_key(request, getattr(call.body, "idempotency_key", None))

    async def work(session: AsyncSession) -> Reply:
        await _enter(call, session)
        assert op.handler is not None
        reply = await op.handler(call, session)
        await _write_audit(call, session)
        return reply

    database = request.app[appkeys.DATABASE]
    actor = call.principal.user_id if call.principal else ""
    response = await run(database, actor, request, work, key=key, raw=call.raw)
    for then in call.after_commit:
        await then()
    return response


async def _enter(call: Call, session: AsyncSession) -> None:
    """The access the operation declares, checked in the request's transaction: the file the
    path names, or the one the request names if it names one, is named in the audit row."""
    access = call.op.access
    action = access.file or access.named_file
    if action is not None:
        patient_id = call.path("patient_id") if access.file else call.named_file_id()
        if patient_id:
            call.file = await open_file(
                session, call.ctx, patient_id, action, call.op.refused_resource
            )
            call.audit_patient_id = call.file.patient.id
    elif access.row is not None:
        assert access.row_action is not None
        await access.row(call, session, access.row_action)


async def _write_audit(call: Call, session: AsyncSession) -> None:
    audit = call.op.audit
    if audit is None or not call.audited:
        return
    assert call.principal is not None
    before = session.info.get(journal.AUDIT_ROWS, 0)
    await journal.audit(
        session,
        principal=call.principal,
        action=audit.action,
        resource=call.audit_resource or audit.resource,
        patient_id=call.audit_patient_id,
        remote=call.request.remote or "",
        request_id=call.context.request_id if call.context else "",
    )
    if session.info.get(journal.AUDIT_ROWS, 0) <= before:
        raise AuditMissing(f"{call.op.method} {call.op.path}")
