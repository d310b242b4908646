"""The schedule widget's time is a time picker (<input type="time">): minutes when the time
has no seconds, seconds too when it has; typed HH:MM and HH:MM:SS are both accepted."""

from __future__ import annotations

import re
from datetime import time

import pytest

from vault.schedule_widget import ScheduleFields


def time_input(form: ScheduleFields) -> str:
    html = str(form["time"])
    assert html.startswith("<input"), html
    return html


def attr(html: str, name: str) -> str | None:
    match = re.search(rf'\b{name}="([^"]*)"', html)
    return match[1] if match else None


def test_a_new_schedule_shows_a_minute_time_picker():
    html = time_input(ScheduleFields())
    assert attr(html, "type") == "time"
    assert attr(html, "step") == "60"
    assert attr(html, "value") == "00:00"


@pytest.mark.parametrize(
    "stored,shown,step",
    [("09:30:00", "09:30", "60"), ("09:30:15", "09:30:15", "1"), (time(3, 0, 30), "03:00:30", "1")],
)
def test_a_stored_time_shows_seconds_only_when_they_matter(stored, shown, step):
    html = time_input(ScheduleFields(initial={"time": stored}))
    assert attr(html, "type") == "time"
    assert (attr(html, "value"), attr(html, "step")) == (shown, step)


@pytest.mark.parametrize("typed,expected", [("04:15", time(4, 15)), ("04:15:30", time(4, 15, 30))])
def test_typed_hh_mm_and_hh_mm_ss_are_accepted(typed, expected):
    form = ScheduleFields(data={"schedule_type": "DAILY", "tz": "UTC", "time": typed})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["time"] == expected
    # Shown again as typed, with the step that lets the browser keep the seconds.
    html = time_input(form)
    assert attr(html, "value") == typed
    assert attr(html, "step") == ("1" if typed.count(":") == 2 else "60")


def test_a_bad_time_is_a_field_error_and_shown_as_typed():
    form = ScheduleFields(data={"schedule_type": "DAILY", "tz": "UTC", "time": "25:99"})
    assert not form.is_valid()
    assert "time" in form.errors
    assert attr(time_input(form), "value") == "25:99"
