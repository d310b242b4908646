"""The home page chart's layout and markup (rotation/chart.py)."""

from __future__ import annotations

import re
from datetime import date, timedelta

from rotation.chart import CHART_DAYS, build_chart, chart_svg, chart_table_rows

TODAY = date(2026, 11, 30)


def chart_with(per_day: dict):
    return build_chart(per_day, TODAY)


def test_one_titled_group_per_day_and_a_bar_only_where_something_happened():
    chart = chart_with({(TODAY, "succeeded"): 3, (TODAY - timedelta(days=1), "failed"): 2})
    svg = str(chart_svg(chart))
    assert svg.count('<g class="chart-day">') == CHART_DAYS
    assert len(re.findall(r'<rect class="bar-ok"', svg)) == 1
    assert len(re.findall(r'<rect class="bar-fail"', svg)) == 1
    assert "<title>Mon 2026-11-30: 3 succeeded, 0 failed</title>" in svg


def test_the_table_has_a_row_per_day_oldest_first():
    rows = str(chart_table_rows(chart_with({})))
    days = re.findall(r'<time datetime="([0-9-]+)">', rows)
    assert len(days) == CHART_DAYS
    assert days[0] == "2026-11-01" and days[-1] == "2026-11-30"


def test_the_description_is_escaped():
    chart = chart_with({})
    chart.summary = "<script>alert(1)</script>"
    svg = str(chart_svg(chart))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
