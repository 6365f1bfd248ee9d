"""Idempotency keys on programmatic writes: a replayed request gets the first answer."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.models.audit import IdempotencyRecord
from dossier_service.services.errors import Conflict


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


async def recall(
    session: AsyncSession, *, actor: str, key: str, request_fingerprint: str
) -> IdempotencyRecord | None:
    record = await session.get(IdempotencyRecord, (actor, key))
    if record is not None and record.request_fingerprint != request_fingerprint:
        raise Conflict("Clé d'idempotence déjà utilisée pour une autre requête.")
    return record


async def remember(
    session: AsyncSession,
    *,
    actor: str,
    key: str,
    request_fingerprint: str,
    status: int,
    body: dict[str, Any],
) -> None:
    session.add(
        IdempotencyRecord(
            actor=actor, key=key, request_fingerprint=request_fingerprint, status=status, body=body
        )
    )
    await session.flush()
