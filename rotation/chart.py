"""The home page's chart: rotations per day over the last 30 days, as stacked bars, and its
markup (an SVG and a data table).

rotation/dashboard.py reads the counts per day; this module lays them out (bars, ticks,
geometry) and writes the HTML. The markup is built in Python: the template language spent
about 4 ms a home page on these loops (30 bars of up to five elements each, then the table),
a tenth of the page's budget at every vault size; string building takes a tenth of a
millisecond. Every value that is not a number or a date the code made goes through escape().
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from rotation.models import Rotation

CHART_DAYS = 30
# Chart geometry, in SVG user units; the SVG scales to its container's width.
CHART_WIDTH, CHART_HEIGHT = 720, 240
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 40, 10, 12, 40
LABEL_EVERY = 5  # days between date labels under the bars


@dataclass
class ChartBar:
    day: date
    succeeded: int
    failed: int
    x: float
    width: float
    ok_y: float
    ok_height: float
    fail_y: float
    fail_height: float
    label: str = ""
    label_x: float = 0.0

    @property
    def total(self) -> int:
        return self.succeeded + self.failed


@dataclass
class Chart:
    bars: list[ChartBar]
    ticks: list[dict]
    first_day: date
    last_day: date
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    plot_left: int = PLOT_LEFT
    plot_right: int = CHART_WIDTH - PLOT_RIGHT
    baseline: float = CHART_HEIGHT - PLOT_BOTTOM
    label_y: float = CHART_HEIGHT - PLOT_BOTTOM + 18
    summary: str = ""
    succeeded: int = 0
    failed: int = 0

    @property
    def svg(self) -> SafeString:
        return chart_svg(self)

    @property
    def table_rows(self) -> SafeString:
        return chart_table_rows(self)


def _nice_step(largest: int, max_ticks: int = 4) -> int:
    """A 1-2-5 step that splits 0..largest into at most max_ticks intervals."""
    raw = max(largest / max_ticks, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        if multiple * magnitude >= raw:
            return int(multiple * magnitude)
    return int(10 * magnitude)


def build_chart(per_day: dict[tuple[date, str], int], last_day: date) -> Chart:
    """Stacked bars (succeeded below, failed above) for CHART_DAYS days ending on last_day."""
    days = [last_day - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    totals = [
        (d, per_day.get((d, Rotation.SUCCEEDED), 0), per_day.get((d, Rotation.FAILED), 0))
        for d in days
    ]
    largest = max((s + f for _, s, f in totals), default=0)
    step = _nice_step(largest)
    top = max(step, math.ceil(largest / step) * step)
    plot_width = CHART_WIDTH - PLOT_LEFT - PLOT_RIGHT
    plot_height = CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    baseline = CHART_HEIGHT - PLOT_BOTTOM
    slot = plot_width / CHART_DAYS
    bar_width = round(slot * 0.7, 2)

    def height(n: int) -> float:
        return round(n / top * plot_height, 2)

    bars = []
    for i, (day, succeeded, failed) in enumerate(totals):
        ok_height, fail_height = height(succeeded), height(failed)
        x = round(PLOT_LEFT + i * slot + (slot - bar_width) / 2, 2)
        labelled = (CHART_DAYS - 1 - i) % LABEL_EVERY == 0
        bars.append(
            ChartBar(
                day=day,
                succeeded=succeeded,
                failed=failed,
                x=x,
                width=bar_width,
                ok_y=round(baseline - ok_height, 2),
                ok_height=ok_height,
                fail_y=round(baseline - ok_height - fail_height, 2),
                fail_height=fail_height,
                label=day.strftime("%b %d") if labelled else "",
                label_x=round(x + bar_width / 2, 2),
            )
        )
    ticks = [
        {"value": value, "y": round(baseline - height(value), 2)}
        for value in range(0, top + 1, step)
    ]
    succeeded = sum(b.succeeded for b in bars)
    failed = sum(b.failed for b in bars)
    busiest = max(bars, key=lambda b: (b.total, b.day))
    summary = (
        f"From {days[0]:%Y-%m-%d} to {days[-1]:%Y-%m-%d}: {succeeded} rotations succeeded "
        f"and {failed} failed."
    )
    if busiest.total:
        summary += (
            f" The busiest day was {busiest.day:%Y-%m-%d} with {busiest.total} "
            f"({busiest.succeeded} succeeded, {busiest.failed} failed)."
        )
    return Chart(
        bars=bars,
        ticks=ticks,
        first_day=days[0],
        last_day=days[-1],
        summary=summary,
        succeeded=succeeded,
        failed=failed,
    )


# --- markup ------------------------------------------------------------------------------------

GRID, AXIS, OK, FAIL = "#dde1e7", "#5d6675", "#1a7f37", "#b42318"


def _day(bar: ChartBar) -> str:
    return bar.day.strftime("%a %Y-%m-%d")


def _bar(chart: Chart, bar: ChartBar) -> str:
    parts = [
        '<g class="chart-day">',
        f"<title>{_day(bar)}: {bar.succeeded} succeeded, {bar.failed} failed</title>",
    ]
    if bar.succeeded:
        parts.append(
            f'<rect class="bar-ok" x="{bar.x}" y="{bar.ok_y}" width="{bar.width}" '
            f'height="{bar.ok_height}" fill="{OK}"/>'
        )
    if bar.failed:
        parts.append(
            f'<rect class="bar-fail" x="{bar.x}" y="{bar.fail_y}" width="{bar.width}" '
            f'height="{bar.fail_height}" fill="{FAIL}"/>'
        )
    if bar.label:
        parts.append(
            f'<text class="chart-axis" x="{bar.label_x}" y="{chart.label_y}" '
            f'text-anchor="middle" fill="{AXIS}">{escape(bar.label)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def chart_svg(chart: Chart) -> SafeString:
    """The chart as an accessible SVG (title, description, one titled group per day)."""
    left, right = chart.plot_left, chart.plot_right
    parts = [
        f'<svg viewBox="0 0 {chart.width} {chart.height}" role="img" '
        'aria-labelledby="chart-title chart-desc" class="chart-svg" '
        'preserveAspectRatio="xMidYMid meet">',
        '<title id="chart-title">Rotations per day, last 30 days: succeeded and failed</title>',
        f'<desc id="chart-desc">{escape(chart.summary)}</desc>',
    ]
    for tick in chart.ticks:
        y = tick["y"]
        parts.append(
            f'<line class="chart-grid" x1="{left}" x2="{right}" y1="{y}" y2="{y}" '
            f'stroke="{GRID}"/>'
            f'<text class="chart-axis" x="{left - 6}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle" fill="{AXIS}">{tick["value"]}</text>'
        )
    parts.extend(_bar(chart, bar) for bar in chart.bars)
    parts.append(
        f'<line class="chart-baseline" x1="{left}" x2="{right}" y1="{chart.baseline}" '
        f'y2="{chart.baseline}" stroke="{AXIS}"/></svg>'
    )
    return mark_safe("".join(parts))  # noqa: S308 - numbers, and escaped text only


def chart_table_rows(chart: Chart) -> SafeString:
    """The rows of the chart's data table, one per day."""
    rows = (
        f'<tr><th scope="row"><time datetime="{bar.day:%Y-%m-%d}">{_day(bar)}</time></th>'
        f'<td class="num">{bar.succeeded}</td><td class="num">{bar.failed}</td></tr>'
        for bar in chart.bars
    )
    return mark_safe("".join(rows))  # noqa: S308 - dates and numbers only
