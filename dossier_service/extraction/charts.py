"""Monthly series as server-side SVG bar charts, readable without JavaScript (pure).

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that says every value
in words, so a screen reader gets the figures; the page shows the same numbers in a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from deployment.conventions import FRENCH_MONTHS, FRENCH_MONTHS_SHORT

WIDTH, HEIGHT = 640, 220
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 48, 42, 16


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


def bars(labels: list[str], values: list[int]) -> tuple[list[Bar], int]:
    """Bar geometry and the axis maximum (a round number ≥ every value)."""
    top = _round_up(max(values, default=0))
    inner_w = WIDTH - MARGIN_LEFT - 8
    inner_h = HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    step = inner_w / max(1, len(values))
    out = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = inner_h * value / top if top else 0
        out.append(
            Bar(
                MARGIN_LEFT + i * step + step * 0.15,
                MARGIN_TOP + inner_h - h,
                step * 0.7,
                h,
                label,
                value,
            )
        )
    return out, top


def svg(title: str, labels: list[str], values: list[int], *, chart_id: str) -> str:
    shapes, top = bars(labels, values)
    described = ", ".join(
        f"{_month(label)} : {value}" for label, value in zip(labels, values, strict=True)
    )
    base = HEIGHT - MARGIN_BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" class="chart">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(described) or "Aucune donnée."}</desc>',
        f'<line x1="{MARGIN_LEFT}" y1="{base}" x2="{WIDTH - 8}" y2="{base}" stroke="#333"/>',
        f'<text x="{MARGIN_LEFT - 6}" y="{MARGIN_TOP + 4}" text-anchor="end" '
        f'font-size="12" fill="#333">{top}</text>',
        f'<text x="{MARGIN_LEFT - 6}" y="{base}" text-anchor="end" font-size="12" '
        f'fill="#333">0</text>',
    ]
    for bar in shapes:
        parts.append(
            f'<rect x="{bar.x:.1f}" y="{bar.y:.1f}" width="{bar.width:.1f}" '
            f'height="{bar.height:.1f}" fill="#1d4f91"/>'
        )
        centre = bar.x + bar.width / 2
        parts.append(
            f'<text x="{centre:.1f}" y="{base + 16}" text-anchor="middle" font-size="11" '
            f'fill="#333">{escape(_short(bar.label))}</text>'
        )
        if bar.value:
            parts.append(
                f'<text x="{centre:.1f}" y="{bar.y - 3:.1f}" text-anchor="middle" '
                f'font-size="11" fill="#111">{bar.value}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _month(label: str) -> str:
    year, month = label.split("-")
    return f"{FRENCH_MONTHS[int(month) - 1]} {year}"


def _short(label: str) -> str:
    year, month = label.split("-")
    return f"{FRENCH_MONTHS_SHORT[int(month) - 1]} {year[2:]}"


def _round_up(value: int) -> int:
    if value <= 0:
        return 0
    magnitude: int = 10 ** (len(str(value)) - 1)
    for factor in (1, 2, 5, 10):
        if value <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude
