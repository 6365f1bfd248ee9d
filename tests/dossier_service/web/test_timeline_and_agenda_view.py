"""The life-line SVG and the agenda layouts (pure, no mocks)."""

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, date, datetime

from deployment.conventions import PARIS
from dossier_service.web.agenda_view import build_agenda, period
from dossier_service.web.fr_dates import age_on, fmt_datetime, fmt_long_date
from dossier_service.web.timeline import render_life_line

SVG = "{http://www.w3.org/2000/svg}"
TODAY = date(2026, 11, 25)


@dataclass(frozen=True)
class Ep:
    theme: str
    title: str
    starts_on: date
    ends_on: date | None


@dataclass(frozen=True)
class Ev:
    title: str
    starts_at: datetime
    ends_at: datetime
    rrule: str | None = None


def test_life_line_draws_one_lane_per_theme_and_bars_in_time_order() -> None:
    episodes = [
        Ep("Suivi / Réunion", "Suivi IDE", date(2026, 6, 1), None),
        Ep("Sortie d'hospitalisation", "Sortie CHU <Purpan>", date(2026, 3, 2), date(2026, 3, 20)),
        Ep("Intervention / Réunion", "RCP", date(2026, 9, 10), date(2026, 9, 10)),
        Ep("Sortie d'hospitalisation", "Sortie clinique", date(2026, 10, 1), date(2026, 10, 15)),
    ]
    svg = render_life_line(
        episodes,
        today=TODAY,
        themes=("Sortie d'hospitalisation", "Intervention / Réunion", "Suivi / Réunion"),
    )
    root = ET.fromstring(svg)  # well-formed XML: text is escaped
    lanes = root.findall(f"{SVG}g[@class='lane']")
    assert [g.get("data-theme") for g in lanes] == [
        "Sortie d'hospitalisation",
        "Intervention / Réunion",
        "Suivi / Réunion",
    ]
    bars = lanes[0].findall(f"{SVG}g/{SVG}rect")
    assert len(bars) == 2
    x_first, x_second = (float(b.get("x") or 0) for b in bars)
    assert x_first < x_second  # March before October on the axis
    assert float(bars[1].get("width") or 0) < float(bars[0].get("width") or 0) * 1.5
    assert lanes[1].find(f"{SVG}g[@class='episode point']") is not None  # one-day episode
    ongoing = lanes[2].find(f"{SVG}g[@class='episode ongoing']")
    assert ongoing is not None
    assert "en cours" in (ongoing.findtext(f"{SVG}title") or "")
    today_line = root.find(f"{SVG}line[@class='today']")
    assert today_line is not None
    ongoing_rect = ongoing.find(f"{SVG}rect")
    assert ongoing_rect is not None
    end_x = float(ongoing_rect.get("x") or 0) + float(ongoing_rect.get("width") or 0)
    assert abs(end_x - float(today_line.get("x1") or 0)) < 1  # runs up to today
    assert "Sortie CHU &lt;Purpan&gt;" in svg
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "tick-label"]
    assert labels and labels[0].startswith(("févr.", "mars")) and "2026" in labels[0]


def test_life_line_empty_and_long_spans_use_years() -> None:
    empty = ET.fromstring(render_life_line([], today=TODAY))
    assert "Aucun épisode" in "".join(empty.itertext())
    long = render_life_line([Ep("Suivi", "", date(2015, 1, 1), date(2016, 1, 1))], today=TODAY)
    labels = [
        t.text for t in ET.fromstring(long).iter(f"{SVG}text") if t.get("class") == "tick-label"
    ]
    assert "2020" in labels and all(str(label).isdigit() for label in labels)


def test_periods_of_each_view() -> None:
    start, end, *_rest, title, prev, nxt = period("semaine", date(2026, 11, 25))
    assert (start, end) == (date(2026, 11, 23), date(2026, 11, 30))
    assert title == "Semaine du 23 au 29 novembre 2026"
    assert (prev, nxt) == (date(2026, 11, 16), date(2026, 11, 30))
    gs, ge, ps, pe, title, prev, nxt = period("mois", date(2026, 2, 14))
    assert (gs, ge) == (date(2026, 1, 26), date(2026, 3, 2))
    assert (ps, pe, title) == (date(2026, 2, 1), date(2026, 3, 1), "Février 2026")
    assert (prev, nxt) == (date(2026, 1, 1), date(2026, 3, 1))
    assert period("jour", date(2026, 3, 1))[4] == "dimanche 1er mars 2026"
    assert period("liste", TODAY)[1] == date(2026, 12, 25)


def test_agenda_places_recurring_and_multi_day_events() -> None:
    weekly = Ev(
        "Astreinte",
        datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
        datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
        "FREQ=WEEKLY;BYDAY=MO,TH",
    )
    overnight = Ev(
        "Garde",
        datetime(2026, 11, 24, 20, 0, tzinfo=PARIS),
        datetime(2026, 11, 26, 8, 0, tzinfo=PARIS),
    )
    outside = Ev(
        "Ailleurs", datetime(2027, 1, 5, 9, tzinfo=PARIS), datetime(2027, 1, 5, 10, tzinfo=PARIS)
    )
    page = build_agenda("semaine", TODAY, [weekly, overnight, outside], today=TODAY)
    by_day = {d.day: [o.event.title for o in d.occurrences] for d in page.days}
    assert by_day[date(2026, 11, 23)] == ["Astreinte"]
    assert by_day[date(2026, 11, 24)] == ["Garde"]
    assert by_day[date(2026, 11, 25)] == ["Garde"]
    assert by_day[date(2026, 11, 26)] == ["Garde", "Astreinte"]  # by start time
    assert by_day[date(2026, 11, 27)] == []
    monday = page.days[0].occurrences[0]
    assert (monday.start.hour, monday.start.utcoffset()) == (
        9,
        PARIS.utcoffset(monday.start.replace(tzinfo=None)),
    )
    assert [d.is_today for d in page.days].index(True) == 2
    month = build_agenda("mois", TODAY, [weekly], today=TODAY)
    assert len(month.weeks) == 6 and all(len(w) == 7 for w in month.weeks)
    assert month.count == 9  # 5 Mondays + 4 Thursdays in November 2026
    listing = build_agenda("liste", TODAY, [overnight, outside], today=TODAY)
    assert [d.day for d in listing.busy_days] == [date(2026, 11, 25), date(2026, 11, 26)]


def test_french_formats() -> None:
    assert fmt_long_date(date(2026, 11, 25)) == "mercredi 25 novembre 2026"
    assert fmt_datetime(datetime(2026, 7, 1, 6, 30, tzinfo=UTC)) == "01/07/2026 à 08:30"
    assert age_on(date(1940, 11, 26), TODAY) == 85
    assert age_on(date(1940, 11, 25), TODAY) == 86
