"""The one bounded date, datetime and text check for every input: the API's JSON bodies and
query parameters, the pages' forms and the bot's commands all go through these.

Dates outside [1900-01-01, 2199-12-31] are refused (a year 1 or 9999 overflows as soon as a
time zone or a duration is applied: ``OverflowError`` in the iCalendar feed, the life line,
the UTC conversion). Text refuses NUL and the other control characters except tab and line
breaks (PostgreSQL refuses NUL in text, and they are never meant).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, WithJsonSchema

from deployment.conventions import PARIS

FIRST_YEAR = 1900
LAST_YEAR = 2199
DATE_MIN = date(FIRST_YEAR, 1, 1)
DATE_MAX = date(LAST_YEAR, 12, 31)
_CONTROL_CLASS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
_CONTROL = re.compile(f"[{_CONTROL_CLASS}]")
# the same rule in the OpenAPI description of every free text field
TEXT_PATTERN = f"^[^{_CONTROL_CLASS}]*$"


class OutOfRange(ValueError):
    """French text naming the bounds (the caller names the field)."""


def check_day(value: date) -> date:
    if isinstance(value, datetime):  # a datetime is a date: keep the day only
        value = value.date()
    if not DATE_MIN <= value <= DATE_MAX:
        raise OutOfRange(f"date hors limites ({FIRST_YEAR}–{LAST_YEAR})")
    return value


def check_moment(value: datetime, *, default_zone: ZoneInfo | None = None) -> datetime:
    """An aware datetime within the bounds; naive ones take ``default_zone`` or are refused."""
    if value.tzinfo is None:
        if default_zone is None:
            raise OutOfRange(
                "l'horodatage doit préciser son fuseau (ex. 2026-01-31T09:00:00+01:00)"
            )
        value = value.replace(tzinfo=default_zone)
    # the year first: converting year 1 at +14:00 to UTC is itself an OverflowError
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise OutOfRange(f"date hors limites ({FIRST_YEAR}–{LAST_YEAR})")
    value.astimezone(UTC)
    return value


def in_bounds(value: date) -> bool:
    """Whether a stored date or timestamp is within the bounds (rows from before them)."""
    day = value.date() if isinstance(value, datetime) else value
    return DATE_MIN <= day <= DATE_MAX


def parse_day(raw: str) -> date:
    """An ISO day ``AAAA-MM-JJ`` within the bounds (ValueError otherwise)."""
    return check_day(date.fromisoformat(raw.strip()))


def parse_moment(raw: str, *, default_zone: ZoneInfo | None = PARIS) -> datetime:
    """An ISO 8601 date and time within the bounds (naive = Paris wall-clock time)."""
    return check_moment(datetime.fromisoformat(raw.strip()), default_zone=default_zone)


def check_text(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("caractère de contrôle non permis")
    return value


# The bounds said in the OpenAPI description too, so that clients (and the fuzzing) send
# dates the API takes; whether a 29th to 31st exists in its month is left to the check.
_YEAR_MONTH_DAY = r"(19\d\d|2[01]\d\d)-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
DAY_SCHEMA = {
    "type": "string",
    "pattern": f"^{_YEAR_MONTH_DAY}$",
    "description": f"Jour ISO 8601 AAAA-MM-JJ, de {FIRST_YEAR} à {LAST_YEAR}",
}
MOMENT_SCHEMA = {
    "type": "string",
    "pattern": (
        f"^{_YEAR_MONTH_DAY}T([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(Z|[+-](0\\d|1[0-4]):[0-5]\\d)$"
    ),
    "description": f"Date et heure ISO 8601 avec fuseau, de {FIRST_YEAR} à {LAST_YEAR}",
}

BoundedDate = Annotated[date, AfterValidator(check_day), WithJsonSchema(DAY_SCHEMA)]
BoundedDatetime = Annotated[datetime, AfterValidator(check_moment), WithJsonSchema(MOMENT_SCHEMA)]


def bounded_int(value: str | None, default: int, low: int, high: int) -> int:
    """A number from a page's query or path: clamped into [low, high]; the default when
    missing or not a number (a page shows something rather than an error)."""
    try:
        return min(max(int(value or default), low), high)
    except ValueError:
        return default
