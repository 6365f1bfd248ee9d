"""Agenda views (jour / semaine / mois / liste) — pure: events in, what to draw out.

Recurring events are expanded in Paris wall-clock time with the same rule code as the
iCalendar feed; an event spanning several days appears on each of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from deployment.conventions import PARIS
from dossier_service.ical import occurrences, paris_day_bounds
from dossier_service.web.fr_dates import MONTHS, WEEKDAYS, fmt_long_date, fmt_month

VIEWS = ("jour", "semaine", "mois", "liste")
LIST_DAYS = 30


class EventLike(Protocol):
    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime: ...
    @property
    def rrule(self) -> str | None: ...


@dataclass(frozen=True)
class Occurrence:
    event: Any
    start: datetime  # Paris
    end: datetime  # Paris

    @property
    def all_day_on(self) -> bool:
        return self.start.time() == self.end.time() == datetime.min.time()


@dataclass(frozen=True)
class AgendaDay:
    day: date
    occurrences: tuple[Occurrence, ...]
    in_period: bool = True
    is_today: bool = False

    @property
    def label(self) -> str:
        return fmt_long_date(self.day)


@dataclass(frozen=True)
class AgendaPage:
    view: str
    anchor: date
    start: date  # first day shown
    end: date  # day after the last one shown
    title: str
    previous: date
    following: date
    days: tuple[AgendaDay, ...] = field(default_factory=tuple)

    @property
    def weeks(self) -> list[tuple[AgendaDay, ...]]:
        return [self.days[i : i + 7] for i in range(0, len(self.days), 7)]

    @property
    def busy_days(self) -> list[AgendaDay]:
        return [d for d in self.days if d.occurrences]

    @property
    def count(self) -> int:
        return sum(len(d.occurrences) for d in self.days if d.in_period)


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def period(view: str, anchor: date) -> tuple[date, date, date, date, str, date, date]:
    """(shown_start, shown_end, period_start, period_end, title, previous, following)."""
    if view == "jour":
        return (
            anchor,
            anchor + timedelta(days=1),
            anchor,
            anchor + timedelta(days=1),
            fmt_long_date(anchor),
            anchor - timedelta(days=1),
            anchor + timedelta(days=1),
        )
    if view == "semaine":
        monday = anchor - timedelta(days=anchor.weekday())
        sunday = monday + timedelta(days=6)
        if monday.month == sunday.month:
            title = (
                f"Semaine du {monday.day} au {sunday.day} {MONTHS[sunday.month - 1]} {sunday.year}"
            )
        else:
            title = (
                f"Semaine du {monday.day} {MONTHS[monday.month - 1]} au {sunday.day} "
                f"{MONTHS[sunday.month - 1]} {sunday.year}"
            )
        return (
            monday,
            monday + timedelta(days=7),
            monday,
            monday + timedelta(days=7),
            title,
            monday - timedelta(days=7),
            monday + timedelta(days=7),
        )
    if view == "mois":
        first = anchor.replace(day=1)
        following = _add_months(first, 1)
        grid_start = first - timedelta(days=first.weekday())
        last = following - timedelta(days=1)
        grid_end = last + timedelta(days=7 - last.weekday())
        title = fmt_month(first).capitalize()
        return (grid_start, grid_end, first, following, title, _add_months(first, -1), following)
    if view == "liste":
        end = anchor + timedelta(days=LIST_DAYS)
        title = f"Du {fmt_long_date(anchor)} au {fmt_long_date(end - timedelta(days=1))}"
        return (anchor, end, anchor, end, title, anchor - timedelta(days=LIST_DAYS), end)
    raise ValueError("vue inconnue")


def build_agenda(
    view: str, anchor: date, events: Iterable[EventLike], *, today: date
) -> AgendaPage:
    """Lay the events out for one view around ``anchor`` (a Paris calendar day)."""
    shown_start, shown_end, p_start, p_end, title, previous, following = period(view, anchor)
    window_start = paris_day_bounds(shown_start)[0]
    window_end = paris_day_bounds(shown_end)[0]
    per_day: dict[date, list[Occurrence]] = {}
    for event in events:
        for start, end in occurrences(
            event.starts_at, event.ends_at, event.rrule, window_start, window_end
        ):
            occ = Occurrence(event=event, start=start.astimezone(PARIS), end=end.astimezone(PARIS))
            day = max(occ.start.date(), shown_start)
            last = (occ.end - timedelta(microseconds=1)).date() if occ.end > occ.start else day
            while day <= last and day < shown_end:
                per_day.setdefault(day, []).append(occ)
                day += timedelta(days=1)
    days: list[AgendaDay] = []
    day = shown_start
    while day < shown_end:
        items = tuple(sorted(per_day.get(day, []), key=lambda o: (o.start, o.end)))
        days.append(AgendaDay(day, items, p_start <= day < p_end, day == today))
        day += timedelta(days=1)
    return AgendaPage(view, anchor, shown_start, shown_end, title, previous, following, tuple(days))


def weekday_headers() -> Sequence[str]:
    return [w.capitalize() for w in WEEKDAYS]
