"""French display of dates and times (Europe/Paris), used by the pages' templates."""

from __future__ import annotations

from datetime import date, datetime

from deployment.conventions import FRENCH_MONTHS, FRENCH_MONTHS_SHORT, FRENCH_WEEKDAYS, PARIS

MONTHS = FRENCH_MONTHS
MONTHS_SHORT = FRENCH_MONTHS_SHORT
WEEKDAYS = FRENCH_WEEKDAYS
WEEKDAYS_SHORT = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")


def paris(moment: datetime) -> datetime:
    return moment.astimezone(PARIS)


def fmt_date(value: date | datetime | None) -> str:
    """25/11/2026 (a datetime is first converted to Paris time)."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = paris(value)
    return value.strftime("%d/%m/%Y")


def fmt_datetime(value: datetime | None) -> str:
    """25/11/2026 à 18:05, Paris time."""
    if value is None:
        return "—"
    local = paris(value)
    return f"{local:%d/%m/%Y} à {local:%H:%M}"


def fmt_time(value: datetime) -> str:
    return f"{paris(value):%H:%M}"


def fmt_long_date(day: date) -> str:
    """mercredi 25 novembre 2026."""
    first = "1er" if day.day == 1 else str(day.day)
    return f"{WEEKDAYS[day.weekday()]} {first} {MONTHS[day.month - 1]} {day.year}"


def fmt_month(day: date) -> str:
    return f"{MONTHS[day.month - 1]} {day.year}"


def age_on(birth: date | None, today: date) -> int | None:
    if birth is None:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
