"""A refusal the service answers with: a Matrix-shaped ``errcode`` for programs, a French
``message`` for people, an HTTP ``status``. Authentication, the documents' store and the
directory's requests each refuse with a subclass; the API renders them all alike."""

from __future__ import annotations

from deployment.conventions import ToldError


class Refusal(ToldError):
    default_status = 400

    def __init__(self, errcode: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.status = status or self.default_status
