"""The vault's schedule widget (vault/schedule_widget.py) speaks rotation/schedules.py's
language: the same type, weekday, occurrence and month names, so that every schedule the
rotation app reads can be shown and chosen."""

from __future__ import annotations

from datetime import time

import pytest

from rotation import schedules
from vault import schedule_widget
from vault.schedule_widget import schedule_from_fields, schedule_initial


def test_the_names_are_the_schedules_modules():
    assert schedule_widget.WEEKDAYS == schedules.WEEKDAYS
    assert schedule_widget.OCCURRENCES == schedules.OCCURRENCES
    assert schedule_widget.MONTHS == schedules.MONTHS
    assert [kind for kind, _ in schedule_widget.TYPE_CHOICES] == list(schedules.SCHEDULE_TYPES)
    assert set(schedule_widget.FIELDS_BY_TYPE) == set(schedules.SCHEDULE_TYPES)


def test_every_key_a_schedule_may_carry_has_a_field():
    keys = set(schedules._KNOWN_KEYS)
    assert keys == set(schedule_widget.KEY_FIELDS)


@pytest.mark.parametrize(
    ("written", "initial"),
    [
        (
            {"type": "DAILY", "utcTime": "15:44", "occurrences": 5, "intervalCount": 1},
            {"schedule_type": "DAILY", "tz": "UTC", "time": "15:44", "interval_count": 5},
        ),
        (
            {"type": "on-demand"},
            {"schedule_type": "ON_DEMAND", "tz": "UTC"},
        ),
        (
            {"type": "RUN_ONCE", "time": "2026-05-01 09:00:30", "tz": "Etc/UTC"},
            {"schedule_type": "RUN_ONCE", "tz": "Etc/UTC", "once_at": "2026-05-01T09:00:30"},
        ),
        (
            {"type": "YEARLY", "time": "00:00:00", "month": 5, "monthDay": 20},
            {
                "schedule_type": "YEARLY",
                "tz": "UTC",
                "time": "00:00",
                "month": "MAY",
                "month_day": 20,
            },
        ),
    ],
)
def test_initial_values_of_commander_written_schedules(written, initial):
    assert schedule_initial(written) == initial


def test_the_fields_make_the_json_of_their_type_only():
    data = {
        "schedule_type": "MONTHLY_BY_DAY",
        "tz": "Europe/Berlin",
        "time": time(2, 0, 5),
        "interval_count": 3,
        "weekday": "MONDAY",
        "month_day": 31,
        "cron": "ignored",
        "once_at": "ignored",
    }
    assert schedule_from_fields(data) == {
        "type": "MONTHLY_BY_DAY",
        "tz": "Europe/Berlin",
        "time": "02:00:05",
        "intervalCount": 3,
        "monthDay": 31,
    }
