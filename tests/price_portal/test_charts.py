"""The server-drawn SVG chart: valid, accessible, and drawn to scale."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

from pharmacy_gateway.prices.schemas import DayStats
from price_portal.charts import ChartText, history_chart, nice_step

SVG = "{http://www.w3.org/2000/svg}"
TEXT = ChartText(
    title="Giá 30 ngày",
    summary="Giá trung vị từ 1.000 đến 1.200",
    median="Trung vị",
    band="Thấp nhất – cao nhất",
    declared="Giá kê khai",
)


def draw(points: list[DayStats], declared: int | None = 1100) -> ET.Element:
    svg = history_chart(
        points, declared_price=declared, text=TEXT, money=lambda v: f"{v} ₫", day=lambda d: d.isoformat()
    )
    return ET.fromstring(svg)  # noqa: S314 - our own SVG


def days(*medians: int) -> list[DayStats]:
    start = date(2026, 11, 1)
    return [DayStats(start + timedelta(days=i), m - 100, m, m + 100, 3) for i, m in enumerate(medians)]


class TestHistoryChart:
    def test_is_valid_accessible_svg(self) -> None:
        root = draw(days(1000, 1100, 1200))
        assert root.tag == f"{SVG}svg" and root.get("role") == "img"
        labelled = (root.get("aria-labelledby") or "").split()
        ids = {el.get("id"): el.text for el in root.iter() if el.get("id")}
        assert [ids[i] for i in labelled] == [TEXT.title, TEXT.summary]

    def test_draws_one_median_point_per_day_rising_upwards(self) -> None:
        root = draw(days(1000, 1100, 1200, 1150))
        line = root.find(f"{SVG}polyline")
        assert line is not None
        points = [tuple(map(float, p.split(","))) for p in (line.get("points") or "").split()]
        assert len(points) == 4
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        assert xs == sorted(xs)
        # SVG's y grows downwards: a higher price is drawn higher up.
        assert ys[0] > ys[1] > ys[2] < ys[3]
        band = root.find(f"{SVG}polygon")
        assert band is not None and len((band.get("points") or "").split()) == 8

    def test_declared_price_line_and_labels_escape_text(self) -> None:
        root = draw(days(1000, 1200), declared=1100)
        dashed = [el for el in root.iter(f"{SVG}line") if el.get("stroke-dasharray")]
        assert len(dashed) == 1
        labels = [el.text or "" for el in root.iter(f"{SVG}text")]
        assert "Giá kê khai: 1100 ₫" in labels
        hostile = ChartText(title="<script>", summary="&", median="a<b", band="x", declared="y")
        svg = history_chart(days(1000, 1200), declared_price=None, text=hostile, money=str, day=str)
        assert "<script>" not in svg and ET.fromstring(svg) is not None  # noqa: S314 - our own SVG

    def test_a_single_day_and_no_data(self) -> None:
        assert draw(days(1000)).find(f"{SVG}polyline") is None
        assert history_chart([], declared_price=None, text=TEXT, money=str, day=str) == ""

    def test_axis_steps_are_round(self) -> None:
        assert [nice_step(s) for s in (1, 7, 45, 230, 1000, 86000)] == [0.2, 2.0, 10.0, 50.0, 200.0, 20000.0]
