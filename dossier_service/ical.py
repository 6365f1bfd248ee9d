"""iCalendar (RFC 5545) rendering of a professional's agenda — pure, no I/O; the
``icalendar`` library writes the text (escaping, CRLF, folding at 75 octets).

Times are written in local Europe/Paris time with ``TZID=Europe/Paris`` and a matching
``VTIMEZONE`` so that a weekly event at 09:00 stays at 09:00 across daylight-saving changes
(the RRULE is expanded by the subscriber in local time). Timestamps (``DTSTAMP``,
``LAST-MODIFIED``, ``UNTIL``) are UTC. Recurrence rules are checked and normalised here
(``normalise_rrule``): Cercle accepts a subset, with French refusals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import icalendar

from deployment.conventions import PARIS

PRODID = "-//Cercle//Dossier de coordination//FR"

FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_BYDAY_RE = re.compile(r"^([+-]?[1-9][0-9]?)?(MO|TU|WE|TH|FR|SA|SU)$")
_INT_LIST_RE = re.compile(r"^[+-]?\d{1,3}(,[+-]?\d{1,3})*$")


class RecurrenceError(ValueError):
    """An RRULE that Cercle does not accept; the message is French."""


@dataclass(frozen=True)
class CalendarEvent:
    """One agenda event as the feed shows it (built by the caller from the stored event)."""

    uid: str
    summary: str
    start: datetime  # timezone-aware
    end: datetime  # timezone-aware
    description: str = ""
    location: str = ""
    categories: tuple[str, ...] = ()
    rrule: str | None = None
    cancelled: bool = False
    last_modified: datetime | None = None
    url: str | None = None
    sequence: int = 0
    extra: tuple[tuple[str, str], ...] = field(default=())


def escape_text(value: str) -> str:
    """RFC 5545 §3.3.11 TEXT escaping (the library's), line breaks normalised first."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return icalendar.vText(value).to_ical().decode()


def _text(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n")


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("horodatage sans fuseau")
    return moment


def _utc_stamp(moment: datetime) -> str:
    return _aware(moment).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _paris_timezone() -> icalendar.Timezone:
    """Europe/Paris as two yearly rules (EU summer time since 1996), not a list of years."""
    zone = icalendar.Timezone()
    zone.add("TZID", "Europe/Paris")
    zone.add("X-LIC-LOCATION", "Europe/Paris")
    for kind, offsets, name, start, month in (
        (icalendar.TimezoneDaylight, (1, 2), "CEST", datetime(1981, 3, 29, 2), 3),
        (icalendar.TimezoneStandard, (2, 1), "CET", datetime(1996, 10, 27, 3), 10),
    ):
        part = kind()
        part.add("TZOFFSETFROM", timedelta(hours=offsets[0]))
        part.add("TZOFFSETTO", timedelta(hours=offsets[1]))
        part.add("TZNAME", name)
        part.add("DTSTART", start)
        part.add("RRULE", {"FREQ": "YEARLY", "BYMONTH": month, "BYDAY": "-1SU"})
        zone.add_component(part)
    return zone


def normalise_rrule(text: str) -> str:
    """Validate an RRULE value (with or without ``RRULE:``) and return it normalised.

    Accepted parts: FREQ (required), INTERVAL, COUNT or UNTIL, BYDAY, BYMONTHDAY, BYMONTH,
    WKST. ``UNTIL`` given as a date (AAAAMMJJ or AAAA-MM-JJ) means "until the end of that day
    in Paris" and is written in UTC as RFC 5545 requires with a TZID start.
    """
    raw = text.strip()
    if raw.upper().startswith("RRULE:"):
        raw = raw[6:]
    if not raw or len(raw) > 300 or "\n" in raw or "\r" in raw:
        raise RecurrenceError("règle de récurrence invalide")
    parts: dict[str, str] = {}
    for chunk in raw.split(";"):
        if "=" not in chunk:
            raise RecurrenceError(f"élément de récurrence invalide : {chunk[:20]}")
        name, value = (s.strip().upper() for s in chunk.split("=", 1))
        if name in parts:
            raise RecurrenceError(f"{name} répété dans la récurrence")
        parts[name] = value
    unknown = set(parts) - {
        "FREQ",
        "INTERVAL",
        "COUNT",
        "UNTIL",
        "BYDAY",
        "BYMONTHDAY",
        "BYMONTH",
        "WKST",
    }
    if unknown:
        raise RecurrenceError(f"élément de récurrence non pris en charge : {sorted(unknown)[0]}")
    if parts.get("FREQ") not in FREQUENCIES:
        raise RecurrenceError("fréquence attendue : DAILY, WEEKLY, MONTHLY ou YEARLY")
    if "COUNT" in parts and "UNTIL" in parts:
        raise RecurrenceError("COUNT et UNTIL ne peuvent pas être utilisés ensemble")
    for name, low, high in (("INTERVAL", 1, 999), ("COUNT", 1, 1000)):
        if name in parts:
            if not parts[name].isdigit() or not low <= int(parts[name]) <= high:
                raise RecurrenceError(f"{name} doit être un entier entre {low} et {high}")
            parts[name] = str(int(parts[name]))
    if "UNTIL" in parts:
        parts["UNTIL"] = _normalise_until(parts["UNTIL"])
    if "BYDAY" in parts:
        days = parts["BYDAY"].split(",")
        if not all(_BYDAY_RE.match(d) for d in days):
            raise RecurrenceError("BYDAY invalide (ex. MO,WE ou -1FR)")
    if "WKST" in parts and parts["WKST"] not in WEEKDAYS:
        raise RecurrenceError("WKST invalide")
    for name, high in (("BYMONTHDAY", 31), ("BYMONTH", 12)):
        if name in parts:
            value = parts[name]
            if not _INT_LIST_RE.match(value):
                raise RecurrenceError(f"{name} invalide")
            for item in value.split(","):
                number = int(item)
                if number == 0 or abs(number) > high or (name == "BYMONTH" and number < 0):
                    raise RecurrenceError(f"{name} invalide")
    order = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYMONTH", "BYMONTHDAY", "BYDAY", "WKST")
    return ";".join(f"{k}={parts[k]}" for k in order if k in parts)


def _normalise_until(value: str) -> str:
    compact = value.replace("-", "").replace(":", "")
    try:
        if re.fullmatch(r"\d{8}", compact):
            day = date(int(compact[:4]), int(compact[4:6]), int(compact[6:8]))
            end_of_day = datetime.combine(day, time(23, 59, 59), tzinfo=PARIS)
            return _utc_stamp(end_of_day)
        if re.fullmatch(r"\d{8}T\d{6}Z", compact):
            moment = datetime.strptime(compact, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            return _utc_stamp(moment)
    except ValueError:
        pass
    raise RecurrenceError("UNTIL invalide (date AAAA-MM-JJ ou horodatage UTC)")


def _vevent(event: CalendarEvent, now: datetime) -> icalendar.Event:
    start = _aware(event.start).astimezone(PARIS)
    end = _aware(event.end).astimezone(PARIS)
    if event.end < event.start:
        raise ValueError("fin avant le début")
    vevent = icalendar.Event()
    vevent.add("UID", _text(event.uid))
    vevent.add("DTSTAMP", now.astimezone(UTC))
    vevent.add("DTSTART", start)
    vevent.add("DTEND", end)
    vevent.add("SUMMARY", _text(event.summary))
    if event.rrule:
        vevent.add("RRULE", icalendar.vRecur.from_ical(normalise_rrule(event.rrule)))
    if event.description:
        vevent.add("DESCRIPTION", _text(event.description))
    if event.location:
        vevent.add("LOCATION", _text(event.location))
    if event.categories:
        vevent.add("CATEGORIES", [_text(c) for c in event.categories])
    if event.url:
        vevent.add("URL", event.url)
    if event.last_modified is not None:
        vevent.add("LAST-MODIFIED", _aware(event.last_modified).astimezone(UTC))
    if event.sequence:
        vevent.add("SEQUENCE", int(event.sequence))
    vevent.add("STATUS", "CANCELLED" if event.cancelled else "CONFIRMED")
    vevent.add("TRANSP", "OPAQUE")
    for name, value in event.extra:
        if not re.fullmatch(r"X-[A-Z0-9-]{1,60}", name):
            raise ValueError("propriété non standard invalide")
        vevent.add(name, icalendar.vText(_text(value)))
    return vevent


def render_calendar(
    events: Iterable[CalendarEvent], *, name: str, now: datetime, refresh_minutes: int = 30
) -> str:
    """The whole VCALENDAR as text (CRLF line endings, folded lines)."""
    _aware(now)
    calendar = icalendar.Calendar()
    calendar.add("VERSION", "2.0")
    calendar.add("PRODID", PRODID)
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", "PUBLISH")
    calendar.add("X-WR-CALNAME", icalendar.vText(_text(name)))
    calendar.add("X-WR-TIMEZONE", "Europe/Paris")
    refresh = timedelta(minutes=int(refresh_minutes))
    calendar.add("REFRESH-INTERVAL", refresh, parameters={"VALUE": "DURATION"})
    calendar.add("X-PUBLISHED-TTL", icalendar.vDuration(refresh))
    calendar.add_component(_paris_timezone())
    for event in events:
        calendar.add_component(_vevent(event, now))
    text: bytes = calendar.to_ical()
    return text.decode("utf-8")


def occurrences(
    start: datetime,
    end: datetime,
    rrule: str | None,
    window_start: datetime,
    window_end: datetime,
    *,
    limit: int = 500,
) -> list[tuple[datetime, datetime]]:
    """Occurrences (start, end) of an event overlapping [window_start, window_end).

    Recurrences are expanded in Paris wall-clock time (as a subscriber does with the feed).
    """
    duration = end - start
    if not rrule:
        return [(start, end)] if start < window_end and end > window_start else []
    from dateutil.rrule import rrulestr

    local_start = start.astimezone(PARIS)
    rule = rrulestr(normalise_rrule(rrule), dtstart=local_start)
    out: list[tuple[datetime, datetime]] = []
    search_from = (window_start - duration).astimezone(PARIS)
    for occ in rule.xafter(search_from, inc=True):
        occ_start = occ.replace(tzinfo=None).replace(tzinfo=PARIS)  # re-resolve DST offset
        if occ_start >= window_end:
            break
        occ_end = occ_start + duration
        if occ_end > window_start:
            out.append((occ_start, occ_end))
        if len(out) >= limit:
            break
    return out


def paris_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a calendar day in Paris, as aware datetimes."""
    start = datetime.combine(day, time(0, 0), tzinfo=PARIS)
    end = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=PARIS)
    return start, end
