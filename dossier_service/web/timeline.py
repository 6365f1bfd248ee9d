"""The life line (ligne de vie) drawn as an SVG timeline — pure: episodes in, SVG text out.

One lane per theme (in the configured order), each episode a bar from its start to its
end on a shared time axis; an ongoing episode runs to today and is drawn open-ended;
a one-day episode is a diamond. Ticks are months or years depending on the span.
Everything textual is XML-escaped; the SVG has a title and a description for screen
readers, and each shape a ``<title>`` tooltip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol
from xml.sax.saxutils import escape, quoteattr

from dossier_service.bounded import DATE_MAX, DATE_MIN
from dossier_service.web.fr_dates import MONTHS_SHORT, fmt_date

WIDTH = 960
LABEL_WIDTH = 190
RIGHT_PAD = 24
TOP = 34
LANE_HEIGHT = 34
BAR_HEIGHT = 18
PALETTE = ("#2f6f8f", "#b5532f", "#4f7d3a", "#7a4f9a", "#a07a12", "#3a6a6a", "#8f2f55")


class EpisodeLike(Protocol):
    @property
    def theme(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def starts_on(self) -> date: ...
    @property
    def ends_on(self) -> date | None: ...


@dataclass(frozen=True)
class Axis:
    start: date
    end: date

    @property
    def days(self) -> int:
        return max((self.end - self.start).days, 1)

    def x(self, day: date) -> float:
        inner = WIDTH - LABEL_WIDTH - RIGHT_PAD
        return LABEL_WIDTH + inner * (day - self.start).days / self.days


def _clamp(day: date) -> date:
    """Rows written before dates were bounded (year 1, 9999) are drawn at the bounds."""
    return min(max(day, DATE_MIN), DATE_MAX)


def _axis(episodes: Sequence[EpisodeLike], today: date) -> Axis:
    first = _clamp(min((e.starts_on for e in episodes), default=today))
    last = _clamp(max([today, *(e.ends_on or e.starts_on for e in episodes)]))
    first = min(first, today)
    span = max((last - first).days, 30)
    pad = max(span // 20, 3)
    start = first - timedelta(days=pad)
    return Axis(start=date(start.year, start.month, 1), end=last + timedelta(days=pad))


def _ticks(axis: Axis) -> list[tuple[date, str]]:
    ticks: list[tuple[date, str]] = []
    months = (axis.end.year - axis.start.year) * 12 + axis.end.month - axis.start.month
    if months <= 18:
        step = 1 if months <= 8 else 2
        day = date(axis.start.year, axis.start.month, 1)
        while day <= axis.end:
            if day >= axis.start:
                label = MONTHS_SHORT[day.month - 1]
                if day.month == 1 or not ticks:
                    label += f" {day.year}"
                ticks.append((day, label))
            month = day.month - 1 + step
            day = date(day.year + month // 12, month % 12 + 1, 1)
        return ticks
    # at most ~15 labelled years, whatever the span (a bound at 2199 is 175 years away)
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100) if months <= 12 * 15 * s)
    for year in range(axis.start.year + 1, axis.end.year + 1):
        if year % step == 0:
            ticks.append((date(year, 1, 1), str(year)))
    return ticks


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_life_line(
    episodes: Sequence[EpisodeLike], *, today: date, themes: Sequence[str] = ()
) -> str:
    """The SVG markup (a string ready to be embedded in an HTML page)."""
    lanes = [t for t in themes if any(e.theme == t for e in episodes)]
    lanes += sorted({e.theme for e in episodes} - set(lanes))
    axis = _axis(episodes, today)
    height = TOP + LANE_HEIGHT * max(len(lanes), 1) + 16
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ligne-de-vie" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'aria-labelledby="ldv-titre ldv-desc">',
        '<title id="ldv-titre">Ligne de vie du patient</title>',
        f'<desc id="ldv-desc">{len(episodes)} épisode(s) du parcours sur un axe du temps, '
        f"du {fmt_date(axis.start)} au {fmt_date(axis.end)}.</desc>",
    ]
    bottom = height - 12
    for day, label in _ticks(axis):
        x = axis.x(day)
        out.append(
            f'<line class="tick" x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{bottom}" />'
            f'<text class="tick-label" x="{x + 3:.1f}" y="{TOP - 12}">{escape(label)}</text>'
        )
    for index, theme in enumerate(lanes):
        y = TOP + LANE_HEIGHT * index
        color = PALETTE[index % len(PALETTE)]
        out.append(
            f'<g class="lane" data-theme={quoteattr(theme)}>'
            f'<rect class="lane-bg" x="0" y="{y}" width="{WIDTH}" height="{LANE_HEIGHT}" />'
            f'<text class="lane-label" x="8" y="{y + LANE_HEIGHT / 2 + 4:.1f}">'
            f"{escape(_short(theme, 26))}</text>"
        )
        for episode in sorted((e for e in episodes if e.theme == theme), key=lambda e: e.starts_on):
            out.append(_episode_shape(episode, axis, y, color, today))
        out.append("</g>")
    if not lanes:
        out.append(
            f'<text class="empty" x="{LABEL_WIDTH}" y="{TOP + 20}">'
            "Aucun épisode de parcours pour l'instant.</text>"
        )
    x_today = axis.x(today)
    near_end = x_today > WIDTH - 90
    label_x, anchor = (x_today - 3, "end") if near_end else (x_today + 3, "start")
    out.append(
        f'<line class="today" x1="{x_today:.1f}" y1="{TOP - 6}" x2="{x_today:.1f}" '
        f'y2="{bottom}" /><text class="today-label" x="{label_x:.1f}" y="{bottom + 10}" '
        f'text-anchor="{anchor}">aujourd\'hui</text>'
    )
    out.append("</svg>")
    return "".join(out)


def _episode_shape(episode: EpisodeLike, axis: Axis, y: int, color: str, today: date) -> str:
    label = episode.title or episode.theme
    ongoing = episode.ends_on is None
    end = episode.ends_on or max(today, episode.starts_on)
    period = (
        f"depuis le {fmt_date(episode.starts_on)} (en cours)"
        if ongoing
        else f"du {fmt_date(episode.starts_on)} au {fmt_date(end)}"
    )
    tooltip = f"<title>{escape(episode.theme)} — {escape(label)}, {escape(period)}</title>"
    x1, x2 = axis.x(episode.starts_on), axis.x(end)
    mid = y + LANE_HEIGHT / 2
    if not ongoing and x2 - x1 < 4:
        size = 7
        return (
            f'<g class="episode point"><polygon fill="{color}" points="{x1:.1f},{mid - size:.1f} '
            f'{x1 + size:.1f},{mid:.1f} {x1:.1f},{mid + size:.1f} {x1 - size:.1f},{mid:.1f}" />'
            f"{tooltip}</g>"
        )
    top = y + (LANE_HEIGHT - BAR_HEIGHT) / 2
    width = max(x2 - x1, 4)
    css = "episode ongoing" if ongoing else "episode"
    text = ""
    if width > 60:
        text = (
            f'<text class="episode-label" x="{x1 + 5:.1f}" y="{mid + 4:.1f}">'
            f"{escape(_short(label, max(int(width / 7), 4)))}</text>"
        )
    return (
        f'<g class="{css}"><rect x="{x1:.1f}" y="{top:.1f}" width="{width:.1f}" '
        f'height="{BAR_HEIGHT}" rx="4" fill="{color}" />{text}{tooltip}</g>'
    )
