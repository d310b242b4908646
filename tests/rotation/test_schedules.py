"""rotation/schedules.py: Keeper schedule JSON -> next run times, DST-safe."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rotation.schedules import (
    ScheduleError,
    describe_schedule,
    next_run,
    next_runs,
    normalize_schedule,
    schedule_from_cron,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def at_3am(*days: tuple[int, int, int]) -> list[datetime]:
    return [utc(y, m, d, 3) for y, m, d in days]


# ----------------------------------------------------------------------- each type, 5 runs


def test_on_demand_has_no_runs():
    assert next_run({"type": "ON_DEMAND"}, utc(2026, 1, 1)) is None
    assert next_runs({"type": "ON_DEMAND"}, utc(2026, 1, 1)) == []


def test_daily_next_five_runs():
    schedule = {"type": "DAILY", "time": "03:00", "tz": "UTC"}
    runs = next_runs(schedule, utc(2026, 1, 10, 12))
    assert runs == at_3am(*[(2026, 1, d) for d in (11, 12, 13, 14, 15)])


def test_daily_every_two_days_is_anchored_to_1970_01_05():
    # 2026-01-05 is 20454 days (even) after Monday 1970-01-05, so odd January days run.
    schedule = {"type": "DAILY", "time": "03:00", "intervalCount": 2}
    runs = next_runs(schedule, utc(2026, 1, 10, 12))
    assert runs == at_3am(*[(2026, 1, d) for d in (11, 13, 15, 17, 19)])


def test_interval_runs_do_not_depend_on_the_starting_point():
    schedule = {"type": "DAILY", "time": "03:00", "intervalCount": 3}
    early = next_runs(schedule, utc(2026, 1, 1), 10)
    late = next_runs(schedule, utc(2026, 1, 8, 12), 5)
    assert set(late) <= set(early)


def test_weekly_next_five_runs_in_local_time():
    schedule = {"type": "WEEKLY", "time": "15:44", "weekday": "SUNDAY", "tz": "Europe/Berlin"}
    runs = next_runs(schedule, utc(2026, 1, 1))
    assert runs == [
        utc(2026, 1, 4, 14, 44),
        utc(2026, 1, 11, 14, 44),
        utc(2026, 1, 18, 14, 44),
        utc(2026, 1, 25, 14, 44),
        utc(2026, 2, 1, 14, 44),
    ]


def test_weekly_every_two_weeks_runs_in_even_weeks_since_1970_01_05():
    # The week starting Monday 2026-01-05 is week 2922 (even) since Monday 1970-01-05.
    schedule = {"type": "WEEKLY", "time": "03:00", "weekday": "SUNDAY", "intervalCount": 2}
    runs = next_runs(schedule, utc(2026, 1, 1))
    assert runs == at_3am((2026, 1, 11), (2026, 1, 25), (2026, 2, 8), (2026, 2, 22), (2026, 3, 8))


def test_monthly_by_day_next_five_runs():
    schedule = {"type": "MONTHLY_BY_DAY", "time": "03:00", "monthDay": 15}
    runs = next_runs(schedule, utc(2026, 1, 20))
    assert runs == at_3am(*[(2026, m, 15) for m in (2, 3, 4, 5, 6)])


def test_monthly_by_day_31_is_clamped_to_the_last_day_of_shorter_months():
    schedule = {"type": "MONTHLY_BY_DAY", "time": "03:00", "monthDay": 31}
    runs = next_runs(schedule, utc(2026, 1, 1))
    assert runs == at_3am((2026, 1, 31), (2026, 2, 28), (2026, 3, 31), (2026, 4, 30), (2026, 5, 31))


def test_monthly_by_day_30_runs_on_february_29_in_a_leap_year():
    schedule = {"type": "MONTHLY_BY_DAY", "time": "03:00", "monthDay": 30}
    runs = next_runs(schedule, utc(2028, 1, 31), 2)
    assert runs == at_3am((2028, 2, 29), (2028, 3, 30))


def test_monthly_by_weekday_last_friday():
    schedule = {
        "type": "MONTHLY_BY_WEEKDAY",
        "time": "03:00",
        "weekday": "FRIDAY",
        "occurrence": "LAST",
    }
    runs = next_runs(schedule, utc(2026, 1, 1))
    assert runs == at_3am((2026, 1, 30), (2026, 2, 27), (2026, 3, 27), (2026, 4, 24), (2026, 5, 29))


def test_monthly_by_weekday_first_monday():
    schedule = {
        "type": "MONTHLY_BY_WEEKDAY",
        "time": "03:00",
        "weekday": "MONDAY",
        "occurrence": "FIRST",
    }
    runs = next_runs(schedule, utc(2026, 1, 1))
    assert runs == at_3am((2026, 1, 5), (2026, 2, 2), (2026, 3, 2), (2026, 4, 6), (2026, 5, 4))


def test_yearly_next_five_runs():
    schedule = {"type": "YEARLY", "time": "03:00", "month": "MAY", "monthDay": 20}
    runs = next_runs(schedule, utc(2026, 1, 1))
    assert runs == at_3am(*[(y, 5, 20) for y in range(2026, 2031)])


def test_yearly_february_29_is_clamped_to_the_28th_in_non_leap_years():
    schedule = {"type": "YEARLY", "time": "03:00", "month": 2, "monthDay": 29}
    runs = next_runs(schedule, utc(2026, 1, 1))
    assert runs == at_3am((2026, 2, 28), (2027, 2, 28), (2028, 2, 29), (2029, 2, 28), (2030, 2, 28))


def test_cron_five_fields_next_five_runs():
    runs = next_runs(schedule_from_cron("0 3 * * 1-5"), utc(2026, 1, 1))  # a Thursday
    assert runs == at_3am((2026, 1, 1), (2026, 1, 2), (2026, 1, 5), (2026, 1, 6), (2026, 1, 7))


def test_utc_time_is_read_in_utc_whatever_the_tz():
    schedule = {
        "type": "WEEKLY",
        "utcTime": "15:44",
        "weekday": "SUNDAY",
        "intervalCount": 1,
        "tz": "America/New_York",
    }
    assert normalize_schedule(schedule)["tz"] == "UTC"
    assert next_runs(schedule, utc(2026, 1, 1), 2) == [
        utc(2026, 1, 4, 15, 44),
        utc(2026, 1, 11, 15, 44),
    ]


def test_next_run_is_strictly_after_a_run_instant():
    schedule = {"type": "DAILY", "time": "03:00"}
    assert next_run(schedule, utc(2026, 1, 1, 3)) == utc(2026, 1, 2, 3)
    assert next_run(schedule_from_cron("0 3 * * *"), utc(2026, 1, 1, 3)) == utc(2026, 1, 2, 3)


def test_next_run_accepts_after_in_any_time_zone():
    after = datetime(2026, 1, 1, 4, 0, tzinfo=BERLIN)  # 03:00 UTC
    assert next_run({"type": "DAILY", "time": "03:00"}, after) == utc(2026, 1, 2, 3)


def test_naive_after_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_run({"type": "DAILY", "time": "03:00"}, datetime(2026, 1, 1))


# ------------------------------------------------------------------------------- DST


def daily(at: str, tz: str) -> dict:
    return {"type": "DAILY", "time": at, "tz": tz}


@pytest.mark.parametrize(
    "at, tz, after, expected",
    [
        # Berlin springs forward 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does not exist.
        (
            "02:30",
            "Europe/Berlin",
            utc(2026, 3, 27, 12),
            [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)],
        ),
        (
            "01:30",
            "Europe/Berlin",
            utc(2026, 3, 27, 12),
            [utc(2026, 3, 28, 0, 30), utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 23, 30)],
        ),
        # Berlin falls back 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice.
        (
            "02:30",
            "Europe/Berlin",
            utc(2026, 10, 23, 12),
            [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
        ),
        (
            "01:30",
            "Europe/Berlin",
            utc(2026, 10, 23, 12),
            [utc(2026, 10, 23, 23, 30), utc(2026, 10, 24, 23, 30), utc(2026, 10, 26, 0, 30)],
        ),
        # New York springs forward 2026-03-08 02:00 EST -> 03:00 EDT: 02:30 does not exist.
        (
            "02:30",
            "America/New_York",
            utc(2026, 3, 6, 12),
            [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)],
        ),
        (
            "01:30",
            "America/New_York",
            utc(2026, 3, 6, 12),
            [utc(2026, 3, 7, 6, 30), utc(2026, 3, 8, 6, 30), utc(2026, 3, 9, 5, 30)],
        ),
        # New York falls back 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice.
        (
            "01:30",
            "America/New_York",
            utc(2026, 10, 30, 12),
            [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
        ),
        (
            "02:30",
            "America/New_York",
            utc(2026, 10, 30, 12),
            [utc(2026, 10, 31, 6, 30), utc(2026, 11, 1, 7, 30), utc(2026, 11, 2, 7, 30)],
        ),
    ],
)
def test_daily_across_dst_changes_runs_once_a_day(at, tz, after, expected):
    assert next_runs(daily(at, tz), after, 3) == expected


def test_missing_local_time_runs_at_the_end_of_the_gap():
    run = next_run(daily("02:30", "Europe/Berlin"), utc(2026, 3, 28, 12))
    assert run.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 0)


def test_repeated_local_time_runs_once_when_after_is_in_the_repeated_hour():
    # 01:10 UTC is 02:10 CET, the second 02:10 of the night; 02:30 already ran at 00:30 UTC.
    run = next_run(daily("02:30", "Europe/Berlin"), utc(2026, 10, 25, 1, 10))
    assert run == utc(2026, 10, 26, 1, 30)


def test_weekly_across_new_york_fall_back_keeps_the_local_time():
    schedule = {"type": "WEEKLY", "time": "09:00", "weekday": "MONDAY", "tz": "America/New_York"}
    runs = next_runs(schedule, utc(2026, 10, 20), 3)
    assert [r.astimezone(NEW_YORK).hour for r in runs] == [9, 9, 9]
    assert runs == [utc(2026, 10, 26, 13), utc(2026, 11, 2, 14), utc(2026, 11, 9, 14)]


def test_cron_missing_local_time_runs_at_the_end_of_the_gap():
    runs = next_runs(schedule_from_cron("30 2 * * *", "Europe/Berlin"), utc(2026, 3, 28, 12), 2)
    assert runs == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]


def test_cron_runs_inside_the_gap_collapse_into_one_run():
    runs = next_runs(schedule_from_cron("*/15 2 * * *", "Europe/Berlin"), utc(2026, 3, 28, 12), 2)
    assert runs == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 0)]


def test_cron_hourly_runs_the_repeated_hour_once():
    runs = next_runs(schedule_from_cron("0 * * * *", "Europe/Berlin"), utc(2026, 10, 24, 22, 30), 4)
    # Local 01:00 CEST, 02:00 CEST (first of two), then 03:00 CET and 04:00 CET.
    assert runs == [
        utc(2026, 10, 24, 23),
        utc(2026, 10, 25, 0),
        utc(2026, 10, 25, 2),
        utc(2026, 10, 25, 3),
    ]


def test_cron_new_york_fall_back_runs_once():
    # Quartz reads a repeated wall time in standard time: 01:30 EST, the second occurrence.
    runs = next_runs(
        schedule_from_cron("0 30 1 * * ?", "America/New_York"), utc(2026, 10, 31, 12), 2
    )
    assert runs == [utc(2026, 11, 1, 6, 30), utc(2026, 11, 2, 6, 30)]


# ------------------------------------------------------------------------------ Quartz


def test_quartz_weekdays_expression():
    runs = next_runs(schedule_from_cron("0 0 3 ? * MON-FRI"), utc(2026, 1, 1))
    assert runs == at_3am((2026, 1, 1), (2026, 1, 2), (2026, 1, 5), (2026, 1, 6), (2026, 1, 7))


def test_quartz_daily_expression():
    runs = next_runs(schedule_from_cron("0 30 2 * * ?"), utc(2026, 1, 1), 3)
    assert runs == [utc(2026, 1, d, 2, 30) for d in (1, 2, 3)]


@pytest.mark.parametrize(
    "expression, first_days",
    [
        ("0 0 3 ? * 2-6", [1, 2, 5]),  # Quartz 2-6 = MON-FRI
        ("0 0 3 ? * 1", [4, 11, 18]),  # Quartz 1 = Sunday
        ("0 0 3 ? * 7", [3, 10, 17]),  # Quartz 7 = Saturday
        ("0 0 3 ? * SUN", [4, 11, 18]),
        ("0 0 3 ? * 6#3", [16]),  # third Friday
        ("0 0 3 ? * 6L", [30]),  # last Friday
        ("0 0 3 ? * MON-FRI *", [1, 2, 5]),  # 7 fields, any year
        ("0 0 3 L * ?", [31]),  # last day of the month
        ("0 3 * * 0", [4, 11, 18]),  # standard cron: 0 = Sunday
        ("0 3 * * 7", [4, 11, 18]),  # standard cron: 7 = Sunday
    ],
)
def test_cron_day_of_week_numbering(expression, first_days):
    runs = next_runs(schedule_from_cron(expression), utc(2026, 1, 1), len(first_days))
    assert runs == at_3am(*[(2026, 1, d) for d in first_days])


def test_quartz_seconds_field_is_honoured():
    assert next_run(schedule_from_cron("30 0 3 * * ?"), utc(2026, 1, 1, 3)) == utc(
        2026, 1, 1, 3, 0, 30
    )


def test_cron_keeps_the_expression_as_written():
    assert schedule_from_cron("  0 0 3  ? * MON-FRI ", "Europe/Berlin") == {
        "type": "CRON",
        "cron": "0 0 3 ? * MON-FRI",
        "tz": "Europe/Berlin",
    }


# ------------------------------------------------------------------------- normalization


def test_normalize_accepts_keeper_json_text():
    text = '{"type":"WEEKLY","utcTime":"15:44","weekday":"SUNDAY","intervalCount":1}'
    assert normalize_schedule(text) == {
        "type": "WEEKLY",
        "time": "15:44:00",
        "tz": "UTC",
        "intervalCount": 1,
        "weekday": "SUNDAY",
    }


def test_normalize_accepts_keeper_import_on_demand_spelling():
    assert normalize_schedule({"type": "on-demand"}) == {"type": "ON_DEMAND"}


def test_normalize_accepts_keeper_import_cron_with_tz():
    schedule = {"type": "CRON", "cron": "30 18 * * *", "tz": "America/Chicago"}
    assert normalize_schedule(schedule) == schedule


def test_normalize_fills_defaults_and_canonical_names():
    schedule = {"type": "yearly", "time": "3:05", "month": 5, "monthDay": "20", "tz": ""}
    assert normalize_schedule(schedule) == {
        "type": "YEARLY",
        "time": "03:05:00",
        "tz": "UTC",
        "intervalCount": 1,
        "month": "MAY",
        "monthDay": 20,
    }


def test_normalize_ignores_fields_of_other_types():
    schedule = {"type": "DAILY", "time": "03:00", "weekday": "", "monthDay": None}
    assert normalize_schedule(schedule) == {
        "type": "DAILY",
        "time": "03:00:00",
        "tz": "UTC",
        "intervalCount": 1,
    }


def test_normalize_is_idempotent():
    schedule = {
        "type": "MONTHLY_BY_WEEKDAY",
        "time": "09:30:15",
        "tz": "Asia/Calcutta",
        "weekday": "tue",
        "occurrence": "second",
    }
    once = normalize_schedule(schedule)
    assert normalize_schedule(once) == once


def test_next_run_reads_raw_keeper_schedules():
    assert next_run({"type": "CRON", "cron": "30 18 * * *"}, utc(2026, 1, 1)) == utc(
        2026, 1, 1, 18, 30
    )


@pytest.mark.parametrize(
    "schedule, field",
    [
        ({"type": "DAILY", "time": "25:00"}, "time"),
        ({"type": "DAILY", "time": "12:60"}, "time"),
        ({"type": "DAILY", "time": "noon"}, "time"),
        ({"type": "DAILY", "time": 1200}, "time"),
        ({"type": "DAILY"}, "time"),
        ({"type": "DAILY", "time": "03:00", "utcTime": "03:00"}, "time"),
        ({"type": "DAILY", "utcTime": "24:00"}, "utcTime"),
        ({"type": "DAILY", "time": "03:00", "tz": "Mars/Base"}, "tz"),
        ({"type": "DAILY", "time": "03:00", "tz": "../../etc/passwd"}, "tz"),
        ({"type": "DAILY", "time": "03:00", "tz": 5}, "tz"),
        ({"type": "WEEKLY", "time": "03:00", "weekday": "FUNDAY"}, "weekday"),
        ({"type": "WEEKLY", "time": "03:00"}, "weekday"),
        ({"type": "WEEKLY", "time": "03:00", "weekday": 1}, "weekday"),
        ({"type": "MONTHLY_BY_DAY", "time": "03:00", "monthDay": 0}, "monthDay"),
        ({"type": "MONTHLY_BY_DAY", "time": "03:00", "monthDay": 32}, "monthDay"),
        ({"type": "MONTHLY_BY_DAY", "time": "03:00", "monthDay": "x"}, "monthDay"),
        ({"type": "MONTHLY_BY_DAY", "time": "03:00", "monthDay": True}, "monthDay"),
        ({"type": "MONTHLY_BY_DAY", "time": "03:00", "monthDay": 3.5}, "monthDay"),
        ({"type": "MONTHLY_BY_DAY", "time": "03:00"}, "monthDay"),
        (
            {
                "type": "MONTHLY_BY_WEEKDAY",
                "time": "03:00",
                "weekday": "MONDAY",
                "occurrence": "FIFTH",
            },
            "occurrence",
        ),
        ({"type": "MONTHLY_BY_WEEKDAY", "time": "03:00", "weekday": "MONDAY"}, "occurrence"),
        ({"type": "YEARLY", "time": "03:00", "month": 13, "monthDay": 1}, "month"),
        ({"type": "YEARLY", "time": "03:00", "month": "SMARCH", "monthDay": 1}, "month"),
        ({"type": "YEARLY", "time": "03:00", "monthDay": 1}, "month"),
        ({"type": "YEARLY", "time": "03:00", "month": "FEBRUARY", "monthDay": 30}, "monthDay"),
        ({"type": "YEARLY", "time": "03:00", "month": "APRIL", "monthDay": 31}, "monthDay"),
        ({"type": "HOURLY", "time": "03:00"}, "type"),
        ({"time": "03:00"}, "type"),
        ({"type": 5}, "type"),
        ({"type": "DAILY", "time": "03:00", "intervalCount": 0}, "intervalCount"),
        ({"type": "DAILY", "time": "03:00", "intervalCount": "x"}, "intervalCount"),
        ({"type": "DAILY", "time": "03:00", "intervalCount": -1}, "intervalCount"),
        ({"type": "DAILY", "time": "03:00", "intervalCount": 1.5}, "intervalCount"),
        (
            {"type": "WEEKLY", "time": "03:00", "weekday": "MONDAY", "intervalCount": 366},
            "intervalCount",
        ),
        ({"type": "CRON", "cron": "not a cron"}, "cron"),
        ({"type": "CRON", "cron": ""}, "cron"),
        ({"type": "CRON"}, "cron"),
        ({"type": "CRON", "cron": 5}, "cron"),
        ({"type": "CRON", "cron": "* * * *"}, "cron"),
        ({"type": "CRON", "cron": "0 0 0 3 * * ? 2027"}, "cron"),
        ({"type": "CRON", "cron": "0 3 30 2 *"}, "cron"),
        ({"type": "CRON", "cron": "60 * * * *"}, "cron"),
        ({"type": "CRON", "cron": "0 3 * * 8"}, "cron"),
        ({"type": "CRON", "cron": "R 3 * * *"}, "cron"),
        ({"type": "CRON", "cron": "H 3 * * *"}, "cron"),
        ({"type": "CRON", "cron": "@daily"}, "cron"),
        ({"type": "CRON", "cron": "0 0 3 ? * 8"}, "cron"),
        ({"type": "CRON", "cron": "0 0 3 ? * 0"}, "cron"),
        ({"type": "CRON", "cron": "0 ? 3 * * *"}, "cron"),
        ({"type": "CRON", "cron": "0 3 * * *", "tz": "Mars/Base"}, "tz"),
    ],
)
def test_invalid_schedule_raises_schedule_error_naming_the_field(schedule, field):
    with pytest.raises(ScheduleError) as caught:
        normalize_schedule(schedule)
    assert caught.value.field == field
    assert str(caught.value)


@pytest.mark.parametrize(
    "data",
    [None, 5, ["DAILY"], "", "   ", "not json", "[1, 2]", "null", '"DAILY"', "{bad json}"],
)
def test_non_object_schedule_raises_schedule_error(data):
    with pytest.raises(ScheduleError, match="schedule"):
        normalize_schedule(data)


def test_invalid_schedule_in_next_run_raises_schedule_error():
    with pytest.raises(ScheduleError):
        next_run({"type": "DAILY", "time": "25:00"}, utc(2026, 1, 1))


def test_schedule_error_message_is_readable():
    with pytest.raises(ScheduleError, match=r'Unknown time zone "Mars/Base"'):
        normalize_schedule({"type": "DAILY", "time": "03:00", "tz": "Mars/Base"})


@pytest.mark.parametrize(
    "schedule, message",
    [
        (
            {"type": "YEARLY", "time": "03:00", "month": "FEBRUARY", "monthDay": 30},
            'Day of month must be a whole number from 1 to 29 in February (got "30").',
        ),
        (
            {"type": "MONTHLY_BY_DAY", "time": "03:00", "monthDay": 32},
            'Day of month must be a whole number from 1 to 31 (got "32").',
        ),
        (
            {"type": "DAILY", "time": "03:00", "intervalCount": 0},
            'The interval must be a whole number from 1 to 365 (got "0").',
        ),
        (
            {"type": "WEEKLY", "time": "03:00", "weekday": "FUNDAY"},
            "Weekday must be one of MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, "
            'SUNDAY (got "FUNDAY").',
        ),
        (
            {"type": "DAILY", "time": "3 o'clock"},
            'Time must be a time of day as "HH:MM" or "HH:MM:SS" (got "3 o\'clock").',
        ),
        (
            {"type": "DAILY", "time": "03:00", "tz": 5},
            "Time zone must be an IANA time zone name such as Europe/Berlin.",
        ),
    ],
)
def test_schedule_errors_name_fields_as_the_form_labels_them(schedule, message):
    """A person reads these next to the form's fields: no internal key names (monthDay)."""
    with pytest.raises(ScheduleError) as caught:
        normalize_schedule(schedule)
    assert caught.value.message == message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
schedule_keys = st.sampled_from(
    [
        "type",
        "time",
        "utcTime",
        "tz",
        "weekday",
        "monthDay",
        "occurrence",
        "month",
        "cron",
        "intervalCount",
    ]
)
schedule_values = (
    st.sampled_from(
        [
            "DAILY",
            "WEEKLY",
            "CRON",
            "YEARLY",
            "MONTHLY_BY_DAY",
            "MONTHLY_BY_WEEKDAY",
            "03:00",
            "MONDAY",
            "LAST",
            "0 3 * * *",
        ]
    )
    | json_values
)


@settings(deadline=None)
@given(st.dictionaries(schedule_keys, schedule_values, max_size=6) | json_values)
def test_normalize_raises_only_schedule_error(data):
    try:
        normalize_schedule(data)
    except ScheduleError:
        pass


# ----------------------------------------------------------------------------- describe


@pytest.mark.parametrize(
    "schedule, text",
    [
        ({"type": "ON_DEMAND"}, "On demand only"),
        (
            {"type": "WEEKLY", "time": "15:44", "weekday": "SUNDAY", "tz": "Europe/Berlin"},
            "Weekly on Sunday at 15:44 (Europe/Berlin)",
        ),
        ({"type": "DAILY", "time": "03:00", "intervalCount": 2}, "Every 2 days at 03:00 (UTC)"),
        ({"type": "DAILY", "utcTime": "03:00:30"}, "Daily at 03:00:30 (UTC)"),
        ({"type": "CRON", "cron": "0 3 * * 1-5"}, "Cron 0 3 * * 1-5 (UTC)"),
        (
            {"type": "MONTHLY_BY_DAY", "time": "02:00", "monthDay": 31},
            "Monthly on day 31 (or the month's last day) at 02:00 (UTC)",
        ),
        (
            {
                "type": "MONTHLY_BY_WEEKDAY",
                "time": "09:30",
                "weekday": "FRIDAY",
                "occurrence": "LAST",
            },
            "Monthly on the last Friday at 09:30 (UTC)",
        ),
        (
            {"type": "YEARLY", "time": "00:00", "month": "MAY", "monthDay": 20, "intervalCount": 2},
            "Every 2 years on May 20 at 00:00 (UTC)",
        ),
    ],
)
def test_describe_schedule(schedule, text):
    assert describe_schedule(schedule) == text


def test_describe_invalid_schedule_says_so_instead_of_raising():
    assert describe_schedule({"type": "HOURLY"}).startswith("Invalid schedule: ")


# ------------------------------------------------------------------------------ property

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST
    "America/St_Johns",
    "Pacific/Apia",  # skipped a whole day in 2011
    "Asia/Kolkata",
]
CRONS = [
    "0 3 * * *",
    "*/20 2 * * *",
    "0 * * * *",
    "30 2 * * 1-5",
    "0 0 29 2 *",
    "0 0 3 ? * MON-FRI",
    "0 30 2 * * ?",
    "15 45 1 L * ?",
    "0 0 2 ? * 6#3",
]


@st.composite
def schedules(draw):
    kind = draw(
        st.sampled_from(
            ["DAILY", "WEEKLY", "MONTHLY_BY_DAY", "MONTHLY_BY_WEEKDAY", "YEARLY", "CRON"]
        )
    )
    tz = draw(st.sampled_from(ZONES))
    if kind == "CRON":
        return {"type": "CRON", "cron": draw(st.sampled_from(CRONS)), "tz": tz}
    hour, minute = draw(st.integers(0, 23)), draw(st.sampled_from([0, 1, 15, 30, 59]))
    schedule = {
        "type": kind,
        "time": f"{hour:02d}:{minute:02d}",
        "tz": tz,
        "intervalCount": draw(st.integers(1, 5)),
        "weekday": draw(st.sampled_from(["MONDAY", "FRIDAY", "SUNDAY"])),
        "occurrence": draw(st.sampled_from(["FIRST", "FOURTH", "LAST"])),
        "month": draw(st.integers(1, 12)),
        "monthDay": draw(st.integers(1, 31)),
    }
    if kind == "YEARLY":
        schedule["monthDay"] = min(schedule["monthDay"], 29 if schedule["month"] == 2 else 30)
    return schedule


afters = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@settings(deadline=None, max_examples=300)
@given(schedules(), afters)
def test_next_runs_are_strictly_increasing_and_after_after(schedule, after):
    runs = next_runs(schedule, after, 5)
    assert len(runs) == 5
    assert all(run.tzinfo is UTC for run in runs)
    assert runs[0] > after
    assert all(earlier < later for earlier, later in pairwise(runs))
    assert runs[0] == next_run(schedule, after)


@settings(deadline=None, max_examples=200)
@given(
    st.sampled_from(
        ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/St_Johns"]
    ),
    st.integers(0, 23),
    st.sampled_from([0, 15, 30, 59]),
    st.dates(min_value=date(1980, 1, 1), max_value=date(2090, 1, 1)),
)
def test_daily_runs_once_on_every_local_day(tz, hour, minute, day):
    schedule = daily(f"{hour:02d}:{minute:02d}", tz)
    after = datetime(day.year, day.month, day.day, tzinfo=UTC)
    runs = next_runs(schedule, after, 10)
    local_days = [run.astimezone(ZoneInfo(tz)).date() for run in runs]
    assert all(later - earlier == timedelta(days=1) for earlier, later in pairwise(local_days))


# ------------------------------------------------------- Keeper Commander's schedule JSON
# Every shape Commander writes (keepercommander/vault.py import_schedule_field, the
# --schedulejson help, unit-tests/pam/test_pam_rotation.py, pam_import/README.md).

COMMANDER_SCHEDULES = [
    # pam rotation edit --schedulejson help
    (
        {"type": "WEEKLY", "utcTime": "15:44", "weekday": "SUNDAY", "intervalCount": 1},
        "Weekly on Sunday at 15:44 (UTC)",
    ),
    # unit-tests/pam/test_pam_rotation.py
    (
        {"type": "DAILY", "utcTime": "03:00", "intervalCount": 1, "tz": "Etc/UTC"},
        "Daily at 03:00 (UTC)",
    ),
    (
        {
            "type": "WEEKLY",
            "utcTime": "12:00",
            "weekday": "MONDAY",
            "intervalCount": 1,
            "tz": "Etc/UTC",
        },
        "Weekly on Monday at 12:00 (UTC)",
    ),
    # import_schedule_field("1 1 * * *"), ("1 1 */5 * *"), ("1 1 5 * *"), ("1 1 20 5 ?"),
    # ("1 1 * * 3"), ("1 1 * * 3#2"), and its RUN_ONCE for anything else
    (
        {"type": "DAILY", "tz": "Etc/UTC", "time": "01:01:00", "intervalCount": 1},
        "Daily at 01:01 (Etc/UTC)",
    ),
    (
        {
            "type": "DAILY",
            "occurrences": 5,
            "tz": "Etc/UTC",
            "time": "01:01:00",
            "intervalCount": 1,
        },
        "Every 5 days at 01:01 (Etc/UTC)",
    ),
    (
        {
            "type": "MONTHLY_BY_DAY",
            "monthDay": 5,
            "tz": "Etc/UTC",
            "time": "01:01:00",
            "intervalCount": 1,
        },
        "Monthly on day 5 at 01:01 (Etc/UTC)",
    ),
    (
        {
            "type": "YEARLY",
            "month": "MAY",
            "monthDay": 20,
            "tz": "Etc/UTC",
            "time": "01:01:00",
            "intervalCount": 1,
        },
        "Yearly on May 20 at 01:01 (Etc/UTC)",
    ),
    (
        {
            "type": "WEEKLY",
            "weekday": "WEDNESDAY",
            "tz": "Etc/UTC",
            "time": "01:01:00",
            "intervalCount": 1,
        },
        "Weekly on Wednesday at 01:01 (Etc/UTC)",
    ),
    (
        {
            "type": "MONTHLY_BY_WEEKDAY",
            "weekday": "WEDNESDAY",
            "occurrence": "SECOND",
            "tz": "Etc/UTC",
            "time": "01:01:00",
            "intervalCount": 1,
        },
        "Monthly on the second Wednesday at 01:01 (Etc/UTC)",
    ),
    (
        {"type": "RUN_ONCE", "tz": "Etc/UTC", "time": "2000-01-01T00:00:00", "intervalCount": 1},
        "Once on 2000-01-01 at 00:00 (Etc/UTC)",
    ),
    # pam config's required schedule field, left empty (discoveryrotation_v1.py)
    (
        {"type": "RUN_ONCE", "time": "2000-01-01T00:00:00", "tz": "Etc/UTC"},
        "Once on 2000-01-01 at 00:00 (Etc/UTC)",
    ),
    # CRON, Commander's tests and pam_import/README.md
    ({"type": "CRON", "cron": "1 5 1 * * ?", "tz": "Etc/UTC"}, "Cron 1 5 1 * * ? (Etc/UTC)"),
    ({"type": "CRON", "cron": "30 18 * * *"}, "Cron 30 18 * * * (UTC)"),
    ({"type": "on-demand"}, "On demand only"),
    ({"type": "ON_DEMAND"}, "On demand only"),
]


@pytest.mark.parametrize("schedule, words", COMMANDER_SCHEDULES)
def test_every_schedule_commander_writes_is_read_and_described(schedule, words):
    canonical = normalize_schedule(schedule)
    assert normalize_schedule(canonical) == canonical
    assert describe_schedule(schedule) == words


def test_daily_occurrences_is_every_n_days():
    # Commander's importer writes "*/5" days as occurrences 5 beside intervalCount 1.
    schedule = {"type": "DAILY", "time": "03:00", "intervalCount": 1, "occurrences": 5}
    assert normalize_schedule(schedule)["intervalCount"] == 5
    runs = next_runs(schedule, utc(2026, 1, 10, 12), 3)
    assert [b - a for a, b in pairwise(runs)] == [timedelta(days=5)] * 2
    assert runs == next_runs(
        {"type": "DAILY", "time": "03:00", "intervalCount": 5}, utc(2026, 1, 10, 12), 3
    )


def test_daily_occurrences_equal_to_interval_count_is_accepted():
    schedule = {"type": "DAILY", "time": "03:00", "intervalCount": 3, "occurrences": "3"}
    assert normalize_schedule(schedule)["intervalCount"] == 3


def test_run_once_runs_once_at_its_local_date_and_time():
    schedule = {"type": "RUN_ONCE", "time": "2026-05-01T09:00:00", "tz": "Europe/Berlin"}
    assert normalize_schedule(schedule) == schedule
    assert next_runs(schedule, utc(2026, 1, 1)) == [utc(2026, 5, 1, 7)]
    assert next_run(schedule, utc(2026, 5, 1, 7)) is None
    assert describe_schedule(schedule) == "Once on 2026-05-01 at 09:00 (Europe/Berlin)"


def test_run_once_placeholder_of_commander_never_runs():
    schedule = {"type": "RUN_ONCE", "time": "2000-01-01T00:00:00", "tz": "Etc/UTC"}
    assert next_run(schedule, utc(2026, 1, 1)) is None
    assert next_run(schedule, utc(1999, 12, 31, 23)) == utc(2000, 1, 1)


def test_run_once_follows_the_dst_rules_of_the_calendar_types():
    gap = {"type": "RUN_ONCE", "time": "2026-03-29T02:30", "tz": "Europe/Berlin"}
    assert next_run(gap, utc(2026, 1, 1)) == utc(2026, 3, 29, 1)  # 03:00 CEST, end of the gap
    twice = {"type": "RUN_ONCE", "time": "2026-10-25 02:30", "tz": "Europe/Berlin"}
    assert normalize_schedule(twice)["time"] == "2026-10-25T02:30:00"
    assert next_run(twice, utc(2026, 1, 1)) == utc(2026, 10, 25, 0, 30)  # first occurrence


def test_run_once_utc_time_is_in_utc():
    schedule = {"type": "RUN_ONCE", "utcTime": "2026-05-01T09:00", "tz": "Asia/Tokyo"}
    assert normalize_schedule(schedule) == {
        "type": "RUN_ONCE",
        "time": "2026-05-01T09:00:00",
        "tz": "UTC",
    }


@pytest.mark.parametrize(
    "schedule, field, words",
    [
        (
            {"type": "DAILY", "time": "03:00", "interval": 2},
            "interval",
            'Unknown schedule key "interval"',
        ),
        (
            {"type": "WEEKLY", "utcTime": "03:00", "weekday": "MONDAY", "days": [1]},
            "days",
            '"days"',
        ),
        ({"type": "ON_DEMAND", "cronn": "0 3 * * *"}, "cronn", '"cronn"'),
        (
            {"type": "DAILY", "time": "03:00", "intervalCount": 2, "occurrences": 5},
            "occurrences",
            "intervalCount (2) and occurrences (5)",
        ),
        ({"type": "DAILY", "time": "03:00", "occurrences": 0}, "occurrences", "occurrences"),
        ({"type": "DAILY", "time": "03:00", "occurrences": "x"}, "occurrences", "occurrences"),
        ({"type": "DAILY", "time": "03:00", "occurrences": 400}, "occurrences", "occurrences"),
        (
            {"type": "WEEKLY", "time": "03:00", "weekday": "MONDAY", "occurrences": 2},
            "occurrences",
            "DAILY schedules only",
        ),
        ({"type": "RUN_ONCE", "tz": "UTC"}, "time", "RUN_ONCE"),
        ({"type": "RUN_ONCE", "time": "03:00"}, "time", "YYYY-MM-DDTHH:MM:SS"),
        ({"type": "RUN_ONCE", "time": "2026-02-30T00:00:00"}, "time", "2026-02-30"),
        ({"type": "RUN_ONCE", "time": "2026-05-01T09:00:00+02:00"}, "time", "YYYY-MM-DD"),
        ({"type": "RUN_ONCE", "time": 5}, "time", "RUN_ONCE"),
        ({"type": "RUN_ONCE", "time": "2026-05-01T09:00", "tz": "Mars/Base"}, "tz", "Mars/Base"),
        (
            {"type": "RUN_ONCE", "time": "2026-05-01T09:00", "intervalCount": 0},
            "intervalCount",
            "interval",
        ),
    ],
)
def test_unknown_keys_and_bad_values_are_errors_naming_them(schedule, field, words):
    with pytest.raises(ScheduleError) as caught:
        normalize_schedule(schedule)
    assert caught.value.field == field
    assert words in caught.value.message
