"""Charts drawn on the server as SVG: no script, no external asset, readable by screen readers."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from pharmacy_gateway.prices.schemas import DayStats

Formatter = Callable[[int], str]
DayFormatter = Callable[[date], str]


@dataclass(frozen=True)
class ChartText:
    """Words of the chart in the visitor's language."""

    title: str
    summary: str
    median: str
    band: str
    declared: str


def nice_step(span: float, ticks: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about `ticks` intervals."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def history_chart(
    points: Sequence[DayStats],
    *,
    declared_price: int | None,
    text: ChartText,
    money: Formatter,
    day: DayFormatter,
    width: int = 720,
    height: int = 300,
    chart_id: str = "price-history",
) -> str:
    """Median price with its min-max band over time, and the declared price as a dashed line."""
    if not points:
        return ""
    left, right, top, bottom = 84, 16, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [p.min for p in points] + [p.max for p in points]
    if declared_price is not None:
        values.append(declared_price)
    low: float = min(values)
    high: float = max(values)
    if low == high:
        low, high = low * 0.9, high * 1.1 + 1
    step = nice_step(high - low)
    y_min = max(0.0, math.floor(low / step) * step)
    y_max = math.ceil(high / step) * step
    if y_max <= y_min:
        y_max = y_min + step
    count = len(points)

    def x(i: int) -> float:
        return left + (plot_w / 2 if count == 1 else plot_w * i / (count - 1))

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - y_min) / (y_max - y_min))

    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(text.title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(text.summary)}</desc>',
    ]
    # Horizontal grid with price labels.
    tick = y_min
    while tick <= y_max + step / 2:
        ty = y(tick)
        parts.append(
            f'<line class="chart-grid" x1="{left}" x2="{width - right}" y1="{_num(ty)}" y2="{_num(ty)}" '
            f'stroke="#d5dbe3" stroke-width="1"/>'
        )
        parts.append(
            f'<text class="chart-label" x="{left - 8}" y="{_num(ty + 4)}" text-anchor="end" '
            f'font-size="12" fill="#4a5565">{escape(money(int(tick)))}</text>'
        )
        tick += step
    # Dates along the bottom: about six, always the first and the last.
    wanted = min(count, 6)
    indices = sorted({round(i * (count - 1) / max(1, wanted - 1)) for i in range(wanted)})
    for i in indices:
        anchor = "start" if i == 0 and count > 1 else "end" if i == count - 1 and count > 1 else "middle"
        parts.append(
            f'<text class="chart-label" x="{_num(x(i))}" y="{height - 14}" text-anchor="{anchor}" '
            f'font-size="12" fill="#4a5565">{escape(day(points[i].day))}</text>'
        )
    # Band between the lowest and the highest price, then the median line.
    upper = " ".join(f"{_num(x(i))},{_num(y(p.max))}" for i, p in enumerate(points))
    lower = " ".join(f"{_num(x(i))},{_num(y(p.min))}" for i, p in reversed(list(enumerate(points))))
    if count > 1:
        parts.append(
            f'<polygon class="chart-band" points="{upper} {lower}" fill="#0b57a4" fill-opacity="0.14">'
            f"<title>{escape(text.band)}</title></polygon>"
        )
        median = " ".join(f"{_num(x(i))},{_num(y(p.median))}" for i, p in enumerate(points))
        parts.append(
            f'<polyline class="chart-median" points="{median}" fill="none" stroke="#0b57a4" '
            f'stroke-width="2.5" stroke-linejoin="round" stroke-linecap="round"/>'
        )
    else:
        p = points[0]
        parts.append(
            f'<line class="chart-band-line" x1="{_num(x(0))}" x2="{_num(x(0))}" y1="{_num(y(p.max))}" '
            f'y2="{_num(y(p.min))}" stroke="#0b57a4" stroke-opacity="0.35" stroke-width="8"/>'
        )
    last = points[-1]
    parts.append(
        f'<circle class="chart-point" cx="{_num(x(count - 1))}" cy="{_num(y(last.median))}" r="4.5" '
        f'fill="#0b57a4"><title>{escape(day(last.day))}: {escape(money(last.median))}</title></circle>'
    )
    if declared_price is not None:
        dy = y(declared_price)
        parts.append(
            f'<line class="chart-declared" x1="{left}" x2="{width - right}" y1="{_num(dy)}" y2="{_num(dy)}" '
            f'stroke="#8a4b00" stroke-width="2" stroke-dasharray="6 5"/>'
        )
        parts.append(
            f'<text class="chart-declared-label" x="{width - right - 4}" y="{_num(dy - 6)}" text-anchor="end" '
            f'font-size="12" fill="#8a4b00">{escape(text.declared)}: {escape(money(declared_price))}</text>'
        )
    # Legend.
    legend_y = top + 2
    # Width of the first label, roughly, at 12 px: keeps the second key clear of it.
    band_x = left + 34 + len(text.median) * 7 + 18
    parts.append(
        f'<g class="chart-legend" font-size="12" fill="#4a5565">'
        f'<line x1="{left + 8}" x2="{left + 28}" y1="{legend_y + 6}" y2="{legend_y + 6}" '
        f'stroke="#0b57a4" stroke-width="2.5" class="chart-median-key"/>'
        f'<text x="{left + 34}" y="{legend_y + 10}" class="chart-label">{escape(text.median)}</text>'
        f'<rect x="{band_x}" y="{legend_y}" width="20" height="12" fill="#0b57a4" fill-opacity="0.14" '
        f'class="chart-band-key"/>'
        f'<text x="{band_x + 26}" y="{legend_y + 10}" class="chart-label">{escape(text.band)}</text>'
        f"</g>"
    )
    parts.append("</svg>")
    return "".join(parts)
