"""A PATCH on a stored row: one rule for every partial update of the file's rows."""

from __future__ import annotations

from collections.abc import Collection

from pydantic import BaseModel


def apply_patch(
    row: object,
    update: BaseModel,
    *,
    clearable: Collection[str] = (),
    exclude: set[str] | None = None,
) -> None:
    """The fields the client sent change ``row``; a field sent as ``null`` is left as it
    is, except those of ``clearable``, where ``null`` means "none any more" (a discharge,
    an end, a recurrence). Fields of ``exclude`` are the caller's to apply."""
    for key, value in update.model_dump(exclude_unset=True, exclude=exclude).items():
        if value is None and key not in clearable:
            continue
        setattr(row, key, value)
