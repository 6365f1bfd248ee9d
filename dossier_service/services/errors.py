"""Expected failures raised by services; ``api.errors`` turns them into Matrix-shaped replies."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from deployment.conventions import ToldError


class ServiceError(ToldError):
    status = 400
    errcode = "M_INVALID_PARAM"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidInput(ServiceError):
    """The request is well-formed but breaks a rule (INSEE code, dates, transitions …)."""


class NotFound(ServiceError):
    status = 404
    errcode = "M_NOT_FOUND"


class Forbidden(ServiceError):
    status = 403
    errcode = "M_FORBIDDEN"


class Conflict(ServiceError):
    status = 409
    errcode = "CERCLE_CONFLICT"


class _FileRow(Protocol):
    patient_id: Any


R = TypeVar("R", bound=_FileRow)


async def row_of_file(
    session: AsyncSession, model: type[R], row_id: str, patient_id: str, missing: str
) -> R:
    """The row ``row_id`` of this patient's file, or NotFound (``missing``): a row of another
    file is as absent as one that never was."""
    row = await session.get(model, row_id)
    if row is None or row.patient_id != patient_id:
        raise NotFound(missing)
    return row
