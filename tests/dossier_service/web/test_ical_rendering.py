"""RFC 5545 rendering of an agenda, checked with an independent parser (icalendar)."""

from datetime import UTC, date, datetime, timedelta

import icalendar
import pytest
from dateutil.rrule import rrulestr

from dossier_service.ical import (
    PARIS,
    CalendarEvent,
    RecurrenceError,
    escape_text,
    normalise_rrule,
    occurrences,
    render_calendar,
)

NOW = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)


def event(**kw: object) -> CalendarEvent:
    base = dict(
        uid="evt-1@cercle",
        summary="Visite à domicile",
        start=datetime(2026, 3, 23, 9, 0, tzinfo=PARIS),
        end=datetime(2026, 3, 23, 9, 45, tzinfo=PARIS),
    )
    return CalendarEvent(**(base | kw))  # type: ignore[arg-type]


def test_lines_are_crlf_and_folded_at_75_octets_without_breaking_utf8() -> None:
    long_text = "Réunion de concertation pluriprofessionnelle — éàü; " * 6
    text = render_calendar([event(description=long_text)], name="Agenda", now=NOW)
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    for line in text.split("\r\n"):
        assert len(line.encode("utf-8")) <= 75
    cal = icalendar.Calendar.from_ical(text)
    (vevent,) = cal.walk("VEVENT")
    assert str(vevent["DESCRIPTION"]) == long_text


def test_folding_keeps_characters_whole() -> None:
    text = render_calendar([event(summary="é" * 100)], name="A", now=NOW)
    lines = text.split("\r\n")
    first = next(i for i, line in enumerate(lines) if line.startswith("SUMMARY:"))
    pieces = [lines[first]]
    pieces += [line[1:] for line in lines[first + 1 :] if line.startswith(" ")][:10]
    assert len(pieces) > 2 and "".join(pieces) == "SUMMARY:" + "é" * 100
    assert all(len(p.encode()) <= 74 for p in pieces[1:]) and len(pieces[0].encode()) <= 75


def test_text_is_escaped_and_round_trips() -> None:
    nasty = 'Patient\\dossier; "urgent", ligne 1\nligne 2\r\nligne 3'
    assert escape_text("a;b,c\\d\ne") == "a\\;b\\,c\\\\d\\ne"
    text = render_calendar(
        [event(summary=nasty, location="12, rue d'Alsace; Toulouse", categories=("RDV", "a,b"))],
        name="Agenda de Mme Durand, IDE",
        now=NOW,
    )
    cal = icalendar.Calendar.from_ical(text)
    assert "X-WR-CALNAME:Agenda de Mme Durand\\, IDE\r\n" in text
    (vevent,) = cal.walk("VEVENT")
    assert str(vevent["SUMMARY"]) == nasty.replace("\r\n", "\n")
    assert str(vevent["LOCATION"]) == "12, rue d'Alsace; Toulouse"
    assert set(vevent) == {  # no injected property line
        "UID",
        "DTSTAMP",
        "DTSTART",
        "DTEND",
        "SUMMARY",
        "LOCATION",
        "CATEGORIES",
        "STATUS",
        "TRANSP",
    }
    assert "\nligne 2" not in text


def test_times_are_paris_local_with_vtimezone_and_stamp_utc() -> None:
    text = render_calendar([event()], name="A", now=NOW)
    assert "DTSTART;TZID=Europe/Paris:20260323T090000" in text
    assert "DTSTAMP:20261125T170000Z" in text
    cal = icalendar.Calendar.from_ical(text)
    (tz,) = cal.walk("VTIMEZONE")
    assert str(tz["TZID"]) == "Europe/Paris"
    (vevent,) = cal.walk("VEVENT")
    start = vevent.decoded("DTSTART")
    assert start.utcoffset() == timedelta(hours=1)
    assert start.astimezone(UTC) == datetime(2026, 3, 23, 8, 0, tzinfo=UTC)


def test_weekly_recurrence_keeps_wall_clock_time_across_dst() -> None:
    text = render_calendar(
        [event(rrule="freq=weekly;byday=mo;until=2026-04-13")], name="A", now=NOW
    )
    assert "RRULE:FREQ=WEEKLY;UNTIL=20260413T215959Z;BYDAY=MO" in text
    (vevent,) = icalendar.Calendar.from_ical(text).walk("VEVENT")
    rule = vevent["RRULE"].to_ical().decode()
    dates = list(rrulestr(rule, dtstart=vevent.decoded("DTSTART")))
    assert [d.date() for d in dates] == [
        date(2026, 3, 23),
        date(2026, 3, 30),
        date(2026, 4, 6),
        date(2026, 4, 13),
    ]
    # the same expansion used by the agenda pages: 09:00 Paris before and after 29 March
    occ = occurrences(
        event().start,
        event().end,
        "FREQ=WEEKLY;BYDAY=MO;COUNT=3",
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 5, 1, tzinfo=UTC),
    )
    assert [(s.astimezone(PARIS).hour, s.utcoffset()) for s, _ in occ] == [
        (9, timedelta(hours=1)),
        (9, timedelta(hours=2)),
        (9, timedelta(hours=2)),
    ]
    assert all(e - s == timedelta(minutes=45) for s, e in occ)


def test_occurrences_of_a_single_event_and_window() -> None:
    e = event()
    inside = occurrences(e.start, e.end, None, e.start - timedelta(hours=1), e.end)
    assert inside == [(e.start, e.end)]
    assert occurrences(e.start, e.end, None, e.end, e.end + timedelta(days=1)) == []
    daily = occurrences(
        e.start,
        e.end,
        "FREQ=DAILY",
        datetime(2026, 6, 1, tzinfo=PARIS),
        datetime(2026, 6, 8, tzinfo=PARIS),
    )
    assert len(daily) == 7


@pytest.mark.parametrize(
    "bad",
    [
        "FREQ=HOURLY",
        "BYDAY=MO",
        "FREQ=DAILY;COUNT=3;UNTIL=20270101",
        "FREQ=DAILY;COUNT=0",
        "FREQ=WEEKLY;BYDAY=XX",
        "FREQ=DAILY\r\nATTENDEE:mailto:x",
        "FREQ=MONTHLY;BYMONTHDAY=32",
        "FREQ=YEARLY;BYMONTH=-1",
        "FREQ=DAILY;BYSECOND=1",
        "FREQ=DAILY;UNTIL=demain",
    ],
)
def test_bad_recurrence_is_refused(bad: str) -> None:
    with pytest.raises(RecurrenceError):
        normalise_rrule(bad)


def test_cancelled_and_naive_times() -> None:
    text = render_calendar([event(cancelled=True, sequence=2)], name="A", now=NOW)
    assert "STATUS:CANCELLED" in text and "SEQUENCE:2" in text
    with pytest.raises(ValueError):
        render_calendar([event(start=datetime(2026, 1, 1, 9))], name="A", now=NOW)
    with pytest.raises(ValueError):
        render_calendar([event(end=datetime(2026, 3, 23, 8, tzinfo=PARIS))], name="A", now=NOW)
