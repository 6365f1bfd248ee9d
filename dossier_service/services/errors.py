"""Expected failures raised by services; ``api.errors`` turns them into Matrix-shaped replies."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    errcode = "M_INVALID_PARAM"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(ServiceError):
    """The request is well-formed but breaks a rule (INSEE code, dates, transitions …)."""


class NotFound(ServiceError):
    status = 404
    errcode = "M_NOT_FOUND"


class Conflict(ServiceError):
    status = 409
    errcode = "CERCLE_CONFLICT"
