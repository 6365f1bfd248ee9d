"""One transaction per request: the change, its notebook entry, outbox event and audit row
commit together; idempotency keys make a replayed write answer what the first one did."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.api.context import Ctx
from dossier_service.api.errors import ApiError
from dossier_service.api.serialize import json_response
from dossier_service.services import idempotency

Work = Callable[[AsyncSession], Awaitable[tuple[int, Any]]]
IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_key(request: web.Request, body_key: str | None = None) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER) or body_key
    if key is not None and not (0 < len(key) <= 200):
        raise ApiError("M_INVALID_PARAM", "Clé d'idempotence invalide.")
    return key


async def run(ctx: Ctx, work: Work, *, key: str | None = None, raw: bytes = b"") -> web.Response:
    """Run ``work`` in one transaction and answer its (status, body) as JSON."""
    fingerprint = idempotency.fingerprint(ctx.request.method, ctx.request.path, raw)
    actor = ctx.principal.user_id
    for attempt in (1, 2):
        try:
            async with ctx.db.transaction() as session:
                if key is not None:
                    previous = await idempotency.recall(
                        session, actor=actor, key=key, request_fingerprint=fingerprint
                    )
                    if previous is not None:
                        return json_response(previous.body, status=previous.status)
                status, body = await work(session)
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
