"""iCalendar (RFC 5545) rendering of a professional's agenda — pure, no I/O.

Times are written in local Europe/Paris time with ``TZID=Europe/Paris`` and a matching
``VTIMEZONE`` so that a weekly event at 09:00 stays at 09:00 across daylight-saving changes
(the RRULE is expanded by the subscriber in local time). Timestamps (``DTSTAMP``,
``LAST-MODIFIED``, ``UNTIL``) are UTC. Lines end with CRLF and are folded at 75 octets
without splitting a UTF-8 character; TEXT values are escaped (``\\ ; , newline``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from deployment.conventions import PARIS

PRODID = "-//Cercle//Dossier de coordination//FR"
MAX_LINE_OCTETS = 75

VTIMEZONE_PARIS = (
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Paris",
    "X-LIC-LOCATION:Europe/Paris",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19810329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19961027T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
)

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
    """RFC 5545 §3.3.11 TEXT escaping."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold_line(line: str) -> str:
    """Fold one content line at 75 octets (continuation lines start with a space)."""
    encoded = line.encode("utf-8")
    if len(encoded) <= MAX_LINE_OCTETS:
        return line
    parts: list[str] = []
    current = ""
    size = 0
    limit = MAX_LINE_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size = "", 0
            limit = MAX_LINE_OCTETS - 1  # the leading space counts
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def _utc_stamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("horodatage sans fuseau")
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _paris_local(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("horodatage sans fuseau")
    return moment.astimezone(PARIS).strftime("%Y%m%dT%H%M%S")


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
    unknown = set(parts) - {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY",
                            "BYMONTH", "WKST"}  # fmt: skip
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


def _event_lines(event: CalendarEvent, stamp: str) -> list[str]:
    start, end = _paris_local(event.start), _paris_local(event.end)
    if event.end < event.start:
        raise ValueError("fin avant le début")
    lines = [
        "BEGIN:VEVENT",
        f"UID:{escape_text(event.uid)}",
        f"DTSTAMP:{stamp}",
        f"DTSTART;TZID=Europe/Paris:{start}",
        f"DTEND;TZID=Europe/Paris:{end}",
        f"SUMMARY:{escape_text(event.summary)}",
    ]
    if event.rrule:
        lines.append(f"RRULE:{normalise_rrule(event.rrule)}")
    if event.description:
        lines.append(f"DESCRIPTION:{escape_text(event.description)}")
    if event.location:
        lines.append(f"LOCATION:{escape_text(event.location)}")
    if event.categories:
        lines.append("CATEGORIES:" + ",".join(escape_text(c) for c in event.categories))
    if event.url:
        lines.append(f"URL:{event.url}")
    if event.last_modified is not None:
        lines.append(f"LAST-MODIFIED:{_utc_stamp(event.last_modified)}")
    if event.sequence:
        lines.append(f"SEQUENCE:{int(event.sequence)}")
    lines.append("STATUS:CANCELLED" if event.cancelled else "STATUS:CONFIRMED")
    lines.append("TRANSP:OPAQUE")
    for name, value in event.extra:
        if not re.fullmatch(r"X-[A-Z0-9-]{1,60}", name):
            raise ValueError("propriété non standard invalide")
        lines.append(f"{name}:{escape_text(value)}")
    lines.append("END:VEVENT")
    return lines


def render_calendar(
    events: Iterable[CalendarEvent], *, name: str, now: datetime, refresh_minutes: int = 30
) -> str:
    """The whole VCALENDAR as text (CRLF line endings, folded lines)."""
    stamp = _utc_stamp(now)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(name)}",
        "X-WR-TIMEZONE:Europe/Paris",
        f"REFRESH-INTERVAL;VALUE=DURATION:PT{int(refresh_minutes)}M",
        f"X-PUBLISHED-TTL:PT{int(refresh_minutes)}M",
        *VTIMEZONE_PARIS,
    ]
    for event in events:
        lines.extend(_event_lines(event, stamp))
    lines.append("END:VCALENDAR")
    return "".join(fold_line(line) + "\r\n" for line in lines)


def occurrences(
    start: datetime, end: datetime, rrule: str | None, window_start: datetime,
    window_end: datetime, *, limit: int = 500,
) -> list[tuple[datetime, datetime]]:  # fmt: skip
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
