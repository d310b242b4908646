"""rotation/quartz.py: Quartz cron (6 or 7 fields) exactly as Quartz's CronExpression.

Vectors, by source:
- CronExpressionTest (quartz-scheduler/quartz, quartz/src/test/java/org/quartz/): the expressions
  it accepts and refuses, the fire times of its test1420, the dates its isSatisfiedBy tests
  match or not (Quartz: satisfied by t when the next fire time after t - 1 s is t), the
  intervals of its getTimeBefore test, and QTZ-259 (no fire time repeats). Its time zone is the
  JVM's default; here UTC.
- Quartz's CronExpression itself (commit bb2505aa340b, compiled and run on Java 17): the
  daylight-saving vectors, the quirks, the refusals below, and quartz_vectors.json (1,386 rows
  from a differential run: random and mutated expressions in 10 time zones, many next to a DST
  change).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rotation.quartz import FIELD_NAMES, QuartzCronError, parse
from rotation.schedules import ScheduleError, next_runs, normalize_schedule, schedule_from_cron

VECTORS = json.loads((Path(__file__).parent / "quartz_vectors.json").read_text())["vectors"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def fires(expression: str, after: datetime, count: int, tz: str = "UTC") -> list[str | None]:
    """The next `count` fire times, each found from the one before, as Quartz's tests chain."""
    cron, zone, found = parse(expression), ZoneInfo(tz), []
    for _ in range(count):
        after = cron.next_after(after, zone)
        found.append(iso(after))
        if after is None:
            break
    return found


def satisfied_by(expression: str, moment: datetime) -> bool:
    return parse(expression).next_after(moment - timedelta(seconds=1), ZoneInfo("UTC")) == moment


# ------------------------------------------------------------ CronExpressionTest: accepted


@pytest.mark.parametrize(
    "expression",
    [
        "0 15 10 * * ? 2005",
        "0 15 10 L * ? 2005",
        "0 15 10 L-2 * ? 2005",
        "0 15 10 L-5W * ? 2010",
        "0 15 10 L-1W,L-1 * ? 2010",
        "0 15 10 2W,16 * ? 2010",
        "19 15 10 4 Apr ? ",
        "0 0 0 L-2 * ? *",
        "0 0 0 LW * ? *",
        "0 43 9 ? * 5L",
        "* * * * * ?",
        "0 * 5 * * ?",
        "0 0 0 1W * ?",
        "59 59 23 L * ?",
        "0/15 * * * * ? *",
        "0/30 1 2 * * ? *",
    ],
)
def test_quartz_accepts(expression):
    parse(expression)


# ------------------------------------------------------------ CronExpressionTest: refused


@pytest.mark.parametrize(
    "expression, field",
    [
        ("0 15 10 * * ? 2005 *", None),  # too many fields
        ("kilroy was here", None),
        ("* * * * Foo ? ", "month"),
        ("* * * * Jan-Foo ? ", "month"),
        ("0 0 * * * *", "day-of-month"),  # neither day field is "?"
        ("0 0 * 4 * *", "day-of-month"),
        ("0 0 * * * 4", "day-of-month"),
        ("0 43 9 ? * SAT,SUN,L", "day-of-week"),
        ("0 43 9 ? * 6,7,L", "day-of-week"),
        ("0/5 * * 32W 1 ?", "day-of-month"),
        ("/120 0 8-18 ? * 2-6", "seconds"),
        ("0/120 0 8-18 ? * 2-6", "seconds"),
        ("/ 0 8-18 ? * 2-6", "seconds"),
        ("0/ 0 8-18 ? * 2-6", "seconds"),
        ("/60 0 8-18 ? * 2-6", "seconds"),
        ("0 /120 8-18 ? * 2-6", "minutes"),
        ("0 0/120 8-18 ? * 2-6", "minutes"),
        ("0 / 8-18 ? * 2-6", "minutes"),
        ("0 0/ 8-18 ? * 2-6", "minutes"),
        ("0 /60 8-18 ? * 2-6", "minutes"),
        ("0 0 /120 ? * 2-6", "hours"),
        ("0 0 0/120 ? * 2-6", "hours"),
        ("0 0 / ? * 2-6", "hours"),
        ("0 0 0/ ? * 2-6", "hours"),
        ("0 0 /24 ? * 2-6", "hours"),
        ("0 0 0 /120 * 2-6", "day-of-month"),
        ("0 0 0 0/120 * 2-6", "day-of-month"),
        ("0 0 0 / * 2-6", "day-of-month"),
        ("0 0 0 0/ * 2-6", "day-of-month"),
        ("0 0 0 ? /120 2-6", "month"),
        ("0 0 0 ? 0/120 2-6", "month"),
        ("0 0 0 ? / 2-6", "month"),
        ("0 0 0 ? 0/ 2-6", "month"),
        ("0 0 0 ? /13 2-6", "month"),
        ("0 0 0 ? * /120", "day-of-week"),
        ("0 0 0 ? * 0/120", "day-of-week"),
        ("0 0 0 ? * /", "day-of-week"),
        ("0 0 0 ? * 0/", "day-of-week"),
        ("Ralf 30 * * * ?", "seconds"),
        ("0 30 Ralf * * ?", "hours"),
        ("L 30 * * * ?", "seconds"),
    ],
)
def test_quartz_refuses_naming_the_field(expression, field):
    with pytest.raises(QuartzCronError) as caught:
        parse(expression)
    assert caught.value.field == field
    if field:
        assert field in caught.value.message


# ----------------------------------------------------- CronExpressionTest: fire times


def test_first_weekday_of_the_month_test1420():
    assert fires("0 0 0 1W * ?", utc(2025, 11, 18, 10, 15), 13) == [
        "2025-12-01T00:00:00Z",
        "2026-01-01T00:00:00Z",
        "2026-02-02T00:00:00Z",
        "2026-03-02T00:00:00Z",
        "2026-04-01T00:00:00Z",
        "2026-05-01T00:00:00Z",
        "2026-06-01T00:00:00Z",
        "2026-07-01T00:00:00Z",
        "2026-08-03T00:00:00Z",
        "2026-09-01T00:00:00Z",
        "2026-10-01T00:00:00Z",
        "2026-11-02T00:00:00Z",
        "2026-12-01T00:00:00Z",
    ]


def test_last_day_of_the_month_test1420():
    days = [(2025, 11, 30), (2025, 12, 31)] + [
        (2026, m, d)
        for m, d in zip(range(1, 13), (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), strict=True)
    ]
    assert fires("59 59 23 L * ?", utc(2025, 11, 18, 10, 15), 14) == [
        f"{y}-{m:02d}-{d:02d}T23:59:59Z" for y, m, d in days
    ]


@pytest.mark.parametrize(
    "expression, day, expected",
    [
        ("0 15 10 * * ? 2005", (2005, 6, 1), True),
        ("0 15 10 * * ? 2005", (2005, 6, 30), True),
        ("0 15 10 * * ? 2005", (2006, 6, 30), False),
        ("0 15 10 * * ? 2005", (2005, 3, 31), True),
        ("0 15 10 * * ? 2005", (2005, 2, 28), True),
        ("0 15 10 12 * ? 2005", (2005, 12, 12), True),
        ("0 15 10 12 * ? 2005", (2005, 12, 11), False),
        ("0 15 10 12 * ? 2005", (2005, 12, 13), False),
        ("0 15 10 L * ? 2005", (2005, 12, 31), True),
        ("0 15 10 L * ? 2005", (2005, 12, 30), False),
        ("0 15 10 L * ? 2005", (2005, 9, 30), True),
        ("0 15 10 L * ? 2005", (2005, 9, 29), False),
        ("0 15 10 L 2 ? 2005", (2005, 2, 28), True),
        ("0 15 10 L 2 ? 2005", (2005, 2, 27), False),
        ("0 15 10 L 2 ? 2004", (2004, 2, 29), True),
        ("0 15 10 L 2 ? 2004", (2004, 2, 28), False),
        ("0 15 10 L-2 * ? 2005", (2005, 12, 29), True),
        ("0 15 10 L-2 * ? 2005", (2005, 12, 28), False),
        ("0 15 10 L-2 * ? 2005", (2005, 12, 30), False),
        ("0 15 10 L-2 * ? 2005", (2005, 12, 31), False),
        ("0 15 10 L-1 * ? 2005", (2005, 9, 29), True),
        ("0 15 10 L-1 * ? 2005", (2005, 9, 27), False),
        ("0 15 10 L-1 * ? 2005", (2005, 9, 28), False),
        ("0 15 10 L-1 * ? 2005", (2005, 9, 30), False),
        ("0 15 10 L-3 2 ? 2005", (2005, 2, 25), True),
        ("0 15 10 L-3 2 ? 2005", (2005, 2, 24), False),
        ("0 15 10 L-3 2 ? 2005", (2005, 2, 26), False),
        ("0 15 10 L-3 2 ? 2005", (2005, 2, 28), False),
        ("0 15 10 L-3 2 ? 2000", (2000, 2, 26), True),
        ("0 15 10 L-3 2 ? 2000", (2000, 2, 25), False),
        ("0 15 10 L-3 2 ? 2000", (2000, 2, 27), False),
        ("0 15 10 L-3 2 ? 2000", (2000, 2, 29), False),
        ("0 15 10 L-2 * ? 2010", (2010, 10, 29), True),
        ("0 15 10 L-2 * ? 2010", (2010, 10, 28), False),
        ("0 15 10 L-2 * ? 2010", (2010, 2, 26), True),
        ("0 15 10 L-2 * ? 2010", (2010, 2, 25), False),
        ("0 15 10 L-2 * ? 2010", (2010, 6, 28), True),
        ("0 15 10 L-2 * ? 2010", (2010, 6, 27), False),
        ("0 15 10 L-5W * ? 2010", (2010, 10, 26), True),
        ("0 15 10 L-5W * ? 2010", (2010, 10, 25), False),
        ("0 15 10 L-5W * ? 2010", (2010, 10, 27), False),
        ("0 15 10 L-5W * ? 2010", (2010, 9, 24), True),
        ("0 15 10 L-5W * ? 2010", (2010, 9, 23), False),
        ("0 15 10 L-5W * ? 2010", (2010, 9, 25), False),
        ("0 15 10 L-1 * ? 2010", (2010, 10, 30), True),
        ("0 15 10 L-1W * ? 2010", (2010, 10, 29), True),
        ("0 15 10 1,L * ? 2010", (2010, 10, 1), True),
        ("0 15 10 1,L * ? 2010", (2010, 10, 31), True),
        ("0 15 10 1,L * ? 2010", (2010, 10, 30), False),
        ("0 15 10 1,L * ? 2010", (2010, 2, 1), True),
        ("0 15 10 1,L * ? 2010", (2010, 2, 28), True),
        ("0 15 10 1,L * ? 2010", (2010, 2, 27), False),
        ("0 15 10 L-1W,L-1 * ? 2010", (2010, 10, 29), True),
        ("0 15 10 L-1W,L-1 * ? 2010", (2010, 10, 30), True),
        ("0 15 10 L-1W,L-1 * ? 2010", (2010, 2, 26), True),
        ("0 15 10 L-1W,L-1 * ? 2010", (2010, 2, 27), True),
        ("0 15 10 2W,16 * ? 2010", (2010, 10, 1), True),
        ("0 15 10 2W,16 * ? 2010", (2010, 10, 2), False),
        ("0 15 10 2W,16 * ? 2010", (2010, 10, 16), True),
        ("0 15 10 2W,16 * ? 2010", (2010, 11, 2), True),
        ("0 15 10 2W,16 * ? 2010", (2010, 11, 16), True),
    ],
)
def test_satisfied_by_as_in_cron_expression_test(expression, day, expected):
    assert satisfied_by(expression, utc(*day, 10, 15)) is expected


@pytest.mark.parametrize("minute", [14, 16])
def test_not_satisfied_a_minute_off(minute):
    assert not satisfied_by("0 15 10 * * ? 2005", utc(2005, 6, 1, 10, minute))


@pytest.mark.parametrize(
    "expression, interval, interval_after",
    [
        ("* * * * * ? *", 1, 1),
        ("0 * * * * ? *", 60, 60),
        ("0/15 * * * * ? *", 15, 15),
        ("0 0 5 * * ? *", 86400, 86400),
        ("0/30 1 2 * * ? *", 30, 86400 - 30),
    ],
)
def test_intervals_between_fire_times(expression, interval, interval_after):
    # From the getTimeBefore test: the gaps between consecutive fire times.
    first, second, third = (
        datetime.fromisoformat(t) for t in fires(expression, utc(2026, 5, 1, 2, 1), 3)
    )
    assert {(second - first).total_seconds(), (third - second).total_seconds()} == {
        interval,
        interval_after,
    }


@pytest.mark.parametrize("expression", ["0 0 0 L-2 * ? *", "0 0 0 LW * ? *"])
def test_no_fire_time_repeats_qtz259(expression):
    times = fires(expression, utc(2026, 1, 1), 26)
    assert len(set(times)) == 26 and times == sorted(times)


# ------------------------------------------------------ Quartz run: daylight saving time


@pytest.mark.parametrize(
    "expression, tz, after, expected",
    [
        # Berlin springs forward 2026-03-29 02:00 -> 03:00: 02:30 does not exist that day and
        # Quartz does not fire that day at all.
        (
            "0 30 2 * * ?",
            "Europe/Berlin",
            utc(2026, 3, 27),
            ["2026-03-27T01:30:00Z", "2026-03-28T01:30:00Z", "2026-03-30T00:30:00Z"],
        ),
        # ... and a schedule fixed on that date waits a year.
        ("0 30 2 29 3 ?", "Europe/Berlin", utc(2026, 1, 1), ["2027-03-29T00:30:00Z"]),
        (
            "0 30 2 ? * SUN",
            "Europe/Berlin",
            utc(2026, 3, 20),
            ["2026-03-22T01:30:00Z", "2026-04-05T00:30:00Z"],
        ),
        # Every 20 minutes: the run after 01:40 CET is 03:00 CEST, the end of the gap.
        (
            "0 */20 * * * ?",
            "Europe/Berlin",
            utc(2026, 3, 28, 23),
            [
                "2026-03-28T23:20:00Z",
                "2026-03-28T23:40:00Z",
                "2026-03-29T00:00:00Z",
                "2026-03-29T00:20:00Z",
                "2026-03-29T00:40:00Z",
                "2026-03-29T01:00:00Z",
            ],
        ),
        # Hours 2-3: the skipped 02:00 resumes at 03:00 CEST, once.
        (
            "0 0 2-3 * * ?",
            "Europe/Berlin",
            utc(2026, 3, 28, 12),
            ["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-30T01:00:00Z"],
        ),
        # Berlin falls back 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice and Quartz
        # fires at the second, 02:30 CET = 01:30 UTC.
        (
            "0 30 2 * * ?",
            "Europe/Berlin",
            utc(2026, 10, 24),
            ["2026-10-24T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-26T01:30:00Z"],
        ),
        # Every 20 minutes: nothing in the first pass through 02:xx (CEST), 01:40 CEST is
        # followed by 02:00 CET.
        (
            "0 */20 * * * ?",
            "Europe/Berlin",
            utc(2026, 10, 24, 23, 30),
            [
                "2026-10-24T23:40:00Z",
                "2026-10-25T01:00:00Z",
                "2026-10-25T01:20:00Z",
                "2026-10-25T01:40:00Z",
                "2026-10-25T02:00:00Z",
                "2026-10-25T02:20:00Z",
            ],
        ),
        # New York springs forward 2026-03-08 02:00 -> 03:00.
        (
            "0 30 2 * * ?",
            "America/New_York",
            utc(2026, 3, 7),
            ["2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"],
        ),
        (
            "0 */20 * * * ?",
            "America/New_York",
            utc(2026, 3, 8, 5),
            [
                "2026-03-08T05:20:00Z",
                "2026-03-08T05:40:00Z",
                "2026-03-08T06:00:00Z",
                "2026-03-08T06:20:00Z",
                "2026-03-08T06:40:00Z",
                "2026-03-08T07:00:00Z",
            ],
        ),
        # New York falls back 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 EST (06:30 UTC) only.
        (
            "0 30 1 * * ?",
            "America/New_York",
            utc(2026, 10, 31),
            ["2026-10-31T05:30:00Z", "2026-11-01T06:30:00Z", "2026-11-02T06:30:00Z"],
        ),
        (
            "0 0 * * * ?",
            "America/New_York",
            utc(2026, 11, 1, 3, 30),
            [
                "2026-11-01T04:00:00Z",
                "2026-11-01T06:00:00Z",
                "2026-11-01T07:00:00Z",
                "2026-11-01T08:00:00Z",
            ],
        ),
        (
            "0 */20 * * * ?",
            "America/New_York",
            utc(2026, 11, 1, 4, 30),
            [
                "2026-11-01T04:40:00Z",
                "2026-11-01T06:00:00Z",
                "2026-11-01T06:20:00Z",
                "2026-11-01T06:40:00Z",
                "2026-11-01T07:00:00Z",
                "2026-11-01T07:20:00Z",
            ],
        ),
        # Pacific/Apia skipped 2011-12-30: Quartz reads that Friday as the Saturday after it,
        # so 30W fires on Thursday the 29th.
        (
            "0 0 0 30W 12 ? *",
            "Pacific/Apia",
            utc(2011, 3, 20),
            ["2011-12-29T10:00:00Z", "2012-12-30T10:00:00Z"],
        ),
    ],
)
def test_daylight_saving_as_quartz_runs_it(expression, tz, after, expected):
    assert fires(expression, after, len(expected), tz) == expected


# ------------------------------------------------------- Quartz run: what Quartz does


@pytest.mark.parametrize(
    "expression, expected",
    [
        (
            "0 0 3 ? * MON-FRI",
            ["2026-01-01T03:00:00Z", "2026-01-02T03:00:00Z", "2026-01-05T03:00:00Z"],
        ),
        ("0 0 3 ? * 2-6", ["2026-01-01T03:00:00Z", "2026-01-02T03:00:00Z", "2026-01-05T03:00:00Z"]),
        ("0 0 3 ? * 1", ["2026-01-04T03:00:00Z", "2026-01-11T03:00:00Z"]),  # 1 = Sunday
        ("0 0 3 ? * 7", ["2026-01-03T03:00:00Z", "2026-01-10T03:00:00Z"]),  # 7 = Saturday
        ("0 0 3 ? * L", ["2026-01-03T03:00:00Z", "2026-01-10T03:00:00Z"]),  # L alone: Saturday
        ("0 0 3 ? * 6#3", ["2026-01-16T03:00:00Z", "2026-02-20T03:00:00Z", "2026-03-20T03:00:00Z"]),
        ("0 0 3 ? * 6L", ["2026-01-30T03:00:00Z", "2026-02-27T03:00:00Z", "2026-03-27T03:00:00Z"]),
        ("0 0 3 ? * 2#5", ["2026-03-30T03:00:00Z", "2026-06-29T03:00:00Z", "2026-08-31T03:00:00Z"]),
        (
            "0 0 3 ? * FRI-MON",
            [
                "2026-01-02T03:00:00Z",
                "2026-01-03T03:00:00Z",
                "2026-01-04T03:00:00Z",
                "2026-01-05T03:00:00Z",
            ],
        ),
        (
            "0 0 3 ? * 5-0",
            [
                "2026-01-01T03:00:00Z",
                "2026-01-02T03:00:00Z",
                "2026-01-03T03:00:00Z",
                "2026-01-08T03:00:00Z",
            ],
        ),
        ("0 0 3 ? jan,Jul mon", ["2026-01-05T03:00:00Z", "2026-01-12T03:00:00Z"]),
        ("0 0 3 LW * ?", ["2026-01-30T03:00:00Z", "2026-02-27T03:00:00Z", "2026-03-31T03:00:00Z"]),
        ("0 0 3 L-W * ?", ["2026-01-30T03:00:00Z", "2026-02-27T03:00:00Z"]),
        (
            "0 0 3 L-2W * ?",
            ["2026-01-29T03:00:00Z", "2026-02-26T03:00:00Z", "2026-03-30T03:00:00Z"],
        ),
        ("0 0 3 L-3 * ?", ["2026-01-28T03:00:00Z", "2026-02-25T03:00:00Z", "2026-03-28T03:00:00Z"]),
        ("0 0 3 1W * ?", ["2026-01-01T03:00:00Z", "2026-02-02T03:00:00Z", "2026-03-02T03:00:00Z"]),
        ("0 0 3 31W * ?", ["2026-01-30T03:00:00Z", "2026-03-31T03:00:00Z", "2026-05-29T03:00:00Z"]),
        (
            "0 0 3 15W,L * ?",
            ["2026-01-15T03:00:00Z", "2026-01-31T03:00:00Z", "2026-02-16T03:00:00Z"],
        ),
        (
            "0,30 0 3 * * ?",
            ["2026-01-01T03:00:00Z", "2026-01-01T03:00:30Z", "2026-01-02T03:00:00Z"],
        ),
        (
            "0/30 0 3 * * ?",
            ["2026-01-01T03:00:00Z", "2026-01-01T03:00:30Z", "2026-01-02T03:00:00Z"],
        ),
        (
            "*/20 0 3 * * ?",
            [
                "2026-01-01T03:00:00Z",
                "2026-01-01T03:00:20Z",
                "2026-01-01T03:00:40Z",
                "2026-01-02T03:00:00Z",
            ],
        ),
        ("0 0 3 * * ? 2027", ["2027-01-01T03:00:00Z", "2027-01-02T03:00:00Z"]),
        ("0 0 3 1 1 ? 2027-2028", ["2027-01-01T03:00:00Z", "2028-01-01T03:00:00Z", None]),
        ("0 0 3 1 1 ? 2020", [None]),  # only in the past
        ("0 0 3 1 1 ? 1800", [None]),  # Quartz takes any year number
        ("0 0 3 30 2 ?", [None]),  # accepted, never fires
        (
            "0 0 22-2 * * ?",
            [
                "2026-01-01T01:00:00Z",
                "2026-01-01T02:00:00Z",
                "2026-01-01T22:00:00Z",
                "2026-01-01T23:00:00Z",
                "2026-01-02T00:00:00Z",
            ],
        ),
        (
            "0 0 0 1 NOV-FEB ?",
            [
                "2026-02-01T00:00:00Z",
                "2026-11-01T00:00:00Z",
                "2026-12-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ],
        ),
        ("0 0 0 1 7/6 ?", ["2026-07-01T00:00:00Z", "2027-07-01T00:00:00Z"]),  # 7/6 is July only
        # Quartz's own quirks, kept: text after a complete value is ignored...
        ("0 0 3abc * * ?", ["2026-01-01T03:00:00Z", "2026-01-02T03:00:00Z"]),
        ("0 0 3 ? * MONDAY", ["2026-01-05T03:00:00Z", "2026-01-12T03:00:00Z"]),
        ("0 0 3 * * ?X", ["2026-01-01T03:00:00Z"]),
        # ... empty list items are skipped, a step of 0 means every value or the start alone...
        (
            "0 0 3 1,,15 * ?",
            ["2026-01-01T03:00:00Z", "2026-01-15T03:00:00Z", "2026-02-01T03:00:00Z"],
        ),
        ("*/0 0 3 * * ?", ["2026-01-01T03:00:00Z", "2026-01-01T03:00:01Z"]),
        ("0 0 0 1-5/0 * ?", ["2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"]),
        # ... with "#" only the smallest weekday counts ("*" holds Sunday), 0#1 is accepted,
        ("0 0 3 ? * *,5#2", ["2026-01-11T03:00:00Z", "2026-02-08T03:00:00Z"]),
        ("0 0 3 ? * 0#1", ["2026-01-03T03:00:00Z", "2026-02-07T03:00:00Z"]),
        # ... "L-3" and plain days are compared by Quartz's encoding: 26 wins over L-3 (25th).
        ("0 0 3 L-3,26 2 ?", ["2026-02-26T03:00:00Z", "2027-02-26T03:00:00Z"]),
        # ... and a W day keeps the hour already found that day.
        (
            "0 0 3,20 15W * ?",
            ["2026-01-15T03:00:00Z", "2026-01-15T20:00:00Z", "2026-02-16T03:00:00Z"],
        ),
        # An empty day-of-month is accepted and never fires.
        ("0 0 0 , * ?", [None]),
    ],
)
def test_fire_times_as_quartz_computes_them(expression, expected):
    assert fires(expression, utc(2026, 1, 1), len(expected)) == expected


@pytest.mark.parametrize(
    "expression, field",
    [
        ("0 0 3 ? * 2#1,6#3", "day-of-week"),  # two "#" terms
        ("0 0 3 4 * 4", "day-of-month"),  # both day fields given
        ("0 0 3 ? * ?", "day-of-week"),  # "?" in both
        ("0 0 3 ?? * ?", "day-of-week"),
        ("0 0 3 ?ab * ?", "day-of-month"),
        ("0 0 3 ? * 8", "day-of-week"),
        ("0 0 3 ? * 0", "day-of-week"),
        ("0 0 3 ? * 6#6", "day-of-week"),
        ("0 0 3 ? * 8L", "day-of-week"),
        ("0 0 3 L-31 * ?", "day-of-month"),
        ("0 0 3 32W * ?", "day-of-month"),
        ("0 0 3 ? 13 *", "month"),
        ("0 0 24 * * ?", "hours"),
        ("0 60 3 * * ?", "minutes"),
        ("60 0 3 * * ?", "seconds"),
        ("0 0 3 * * ? 2030-2020", "year"),
        ("0 0 L * * ?", "hours"),
        ("0 0 3 5L * ?", "day-of-month"),
        ("0 0 3 * 5W ?", "month"),
        ("0 0 3 5#2 * ?", "day-of-month"),
        ("0 0 3 ? * MON-", "day-of-week"),
        ("0 0 3 ? * MO", "day-of-week"),
        ("0 0 3 ? FOO *", "month"),
        ("0 0 3 ? * */8", "day-of-week"),
        ("0 0 3 ? */13 *", "month"),
        ("0 0 3 */32 * ?", "day-of-month"),
        ("0 0 */24 * * ?", "hours"),
        ("0 0 3 ? * 5/x", "day-of-week"),
        ("0 0 3 ? * 5-", "day-of-week"),
        ("0 0 3 L- * ?", "day-of-month"),
        ("0 0 3 * * ? 2027 *", None),
        ("0 0 3 * *", None),
        ("0 0 3\n* * ?", None),  # Quartz splits fields at spaces and tabs only: 5
        # Accepted by Quartz's parser, but its scheduler cannot compute a fire time (an empty
        # set): refused here, naming the field.
        ("0 0 0 ? L *", "month"),
        ("0 0 0 ? * ,", "day-of-week"),
        (", 0 0 * * ?", "seconds"),
        # A year range Quartz never finishes listing.
        ("0 0 0 * * ? 1970-2147483647", "year"),
    ],
)
def test_refused_as_quartz_refuses(expression, field):
    with pytest.raises(QuartzCronError) as caught:
        parse(expression)
    assert caught.value.field == field
    assert caught.value.field is None or caught.value.field in FIELD_NAMES


def test_control_characters_are_trimmed_from_a_field_as_java_does():
    assert fires("0 0 3\n * * ?", utc(2026, 1, 1), 1) == ["2026-01-01T03:00:00Z"]


# ---------------------------------------------------- Quartz run: the recorded vectors


@pytest.mark.parametrize("expression, tz, after, expected", VECTORS)
def test_recorded_quartz_vectors(expression, tz, after, expected):
    start = datetime.fromisoformat(after.replace("Z", "+00:00"))
    if expected == "refused":
        with pytest.raises(QuartzCronError):
            parse(expression)
    else:
        assert fires(expression, start, len(expected), tz) == expected


def test_recorded_vectors_cover_both_answers_and_many_zones():
    refused = sum(1 for row in VECTORS if row[3] == "refused")
    assert len(VECTORS) > 1000 and 300 < refused < len(VECTORS) - 300
    assert len({row[1] for row in VECTORS}) >= 10


# ------------------------------------------------------------- through rotation.schedules


def test_schedules_run_six_and_seven_fields_through_quartz():
    schedule = schedule_from_cron("0 30 2 * * ?", "Europe/Berlin")
    assert [iso(r) for r in next_runs(schedule, utc(2026, 3, 27), 3)] == [
        "2026-03-27T01:30:00Z",
        "2026-03-28T01:30:00Z",
        "2026-03-30T00:30:00Z",
    ]
    assert [
        iso(r) for r in next_runs(schedule_from_cron("0/30 0 3 ? * MON *"), utc(2026, 1, 1), 3)
    ] == [
        "2026-01-05T03:00:00Z",
        "2026-01-05T03:00:30Z",
        "2026-01-12T03:00:00Z",
    ]


def test_a_schedule_that_never_fires_has_no_runs():
    assert next_runs(schedule_from_cron("0 0 3 30 2 ?"), utc(2026, 1, 1)) == []


def test_quartz_expression_is_stored_as_written_with_single_spaces():
    assert schedule_from_cron(" 0  0 3\t? * mon-fri  ", "UTC")["cron"] == "0 0 3 ? * mon-fri"


@pytest.mark.parametrize(
    "expression, words",
    [
        ("0 0 3 ? * 8", 'the day-of-week field "8"'),
        ("0 0 3 L-31 * ?", 'the day-of-month field "L-31"'),
        ("0/120 0 3 * * ?", 'the seconds field "0/120"'),
        ("0 0 3 * * * 2027", "exactly one of the day-of-month and day-of-week fields"),
        ("0 0 3 l-2 * * ?", "day-of-month"),
        ("0 3 l-2 * *", 'day-of-month field "l-2"'),  # 5 fields: croniter's verdict, our words
        ("0 3 * * 8", 'day-of-week field "8"'),
        ("0 3 * 13 *", 'month field "13"'),
    ],
)
def test_cron_errors_name_the_field_in_our_words(expression, words):
    with pytest.raises(ScheduleError) as caught:
        normalize_schedule({"type": "CRON", "cron": expression})
    message = caught.value.message
    assert caught.value.field == "cron"
    assert words in message
    for croniter_text in ("bands", "Croniter", "out of range", "Exactly", "[", "failed to"):
        assert croniter_text not in message


# ------------------------------------------------ 5-field cron keeps croniter's meaning

MINUTE = st.integers(0, 59)
HOUR = st.integers(0, 23)


def _field(low: int, high: int, names: list[str] | None = None) -> st.SearchStrategy[str]:
    number = st.integers(low, high).map(str)
    if names:
        number = number | st.sampled_from(names)
    span = st.tuples(st.integers(low, high), st.integers(low, high)).map(
        lambda pair: f"{min(pair)}-{max(pair)}"
    )
    term = (
        number
        | span
        | (span | st.just("*")).flatmap(
            lambda head: st.integers(1, high - low + 1).map(lambda step: f"{head}/{step}")
        )
    )
    return st.just("*") | st.lists(term, min_size=1, max_size=3).map(",".join)


FIVE_FIELDS = st.tuples(
    _field(0, 59),
    _field(0, 23),
    _field(1, 28),
    _field(1, 12, ["JAN", "MAR", "JUN", "DEC"]),
    _field(0, 6, ["MON", "WED", "SAT", "SUN"]),
).map(" ".join)


@settings(deadline=None, max_examples=300)
@given(
    FIVE_FIELDS,
    st.sampled_from(["UTC", "Asia/Kolkata", "Asia/Tokyo"]),  # no daylight saving time
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)),
)
def test_five_field_runs_match_croniter(expression, tz, after):
    try:
        schedule = schedule_from_cron(expression, tz)
    except ScheduleError:
        assume(False)
    zone = ZoneInfo(tz)
    start = after.replace(tzinfo=zone)
    expected = []
    cron = croniter(expression, start)
    for _ in range(3):
        expected.append(cron.get_next(datetime).astimezone(UTC))
    assert next_runs(schedule, start, 3) == expected
