"""The schedule widget: the form fields that choose a rotation schedule (Keeper Commander's
schedule JSON: on demand, once, daily, weekly, monthly, yearly, cron) and the schedule JSON
they stand for, both ways. The PAM Configuration form (its default schedule) and the rotation
app's Password Rotation Settings form both use it, so the two look and read alike.

Only the shape of the JSON is here: which keys each type takes, from which field. Whether a
schedule is valid and when it runs is rotation/schedules.py's; the vault never imports it (it
is below the rotation app) and reaches it through the check the rotation app registers,
``CONFIGURATION_FIELD_CLEANERS["default_rotation_schedule"]`` (vault/importer.py), which
raises ValidationError with the schedule key at fault as its code.
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Callable
from datetime import datetime, time

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from vault.timezones import time_zone_choices

# Keeper's names, which rotation/schedules.py reads from here.
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
OCCURRENCES = ("FIRST", "SECOND", "THIRD", "FOURTH", "LAST")
MONTHS = (
    "JANUARY",
    "FEBRUARY",
    "MARCH",
    "APRIL",
    "MAY",
    "JUNE",
    "JULY",
    "AUGUST",
    "SEPTEMBER",
    "OCTOBER",
    "NOVEMBER",
    "DECEMBER",
)
TYPE_CHOICES = [
    ("ON_DEMAND", "On demand only"),
    ("RUN_ONCE", "Once, at a date and time"),
    ("DAILY", "Daily"),
    ("WEEKLY", "Weekly"),
    ("MONTHLY_BY_DAY", "Monthly on a day"),
    ("MONTHLY_BY_WEEKDAY", "Monthly on a weekday"),
    ("YEARLY", "Yearly"),
    ("CRON", "Cron expression"),
]
# The fields each schedule type reads; static/js/schedule-fields.js shows only these.
FIELDS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "ON_DEMAND": (),
    "RUN_ONCE": ("tz", "once_at"),
    "DAILY": ("tz", "time", "interval_count"),
    "WEEKLY": ("tz", "time", "interval_count", "weekday"),
    "MONTHLY_BY_DAY": ("tz", "time", "interval_count", "month_day"),
    "MONTHLY_BY_WEEKDAY": ("tz", "time", "interval_count", "weekday", "occurrence"),
    "YEARLY": ("tz", "time", "interval_count", "month", "month_day"),
    "CRON": ("tz", "cron"),
}
DETAIL_FIELDS = (
    "tz",
    "time",
    "once_at",
    "interval_count",
    "weekday",
    "month_day",
    "occurrence",
    "month",
    "cron",
)
# Schedule JSON keys (the code of the check's ValidationError) -> the field that holds them.
KEY_FIELDS = {
    "type": "schedule_type",
    "time": "time",
    "utcTime": "time",
    "tz": "tz",
    "intervalCount": "interval_count",
    "occurrences": "interval_count",
    "weekday": "weekday",
    "monthDay": "month_day",
    "occurrence": "occurrence",
    "month": "month",
    "cron": "cron",
}


def _clock(value: str) -> str:
    """A stored "HH:MM:SS" (or "YYYY-MM-DDTHH:MM:SS") as the field shows it: without the
    seconds unless they matter."""
    return value[:-3] if len(value) in (8, 19) and value.endswith(":00") else value


def schedule_initial(schedule: dict | None) -> dict:
    """The widget's initial values for a stored schedule (canonical, or as Commander wrote it).
    Values the schedule does not set keep the fields' own defaults."""
    schedule = schedule if isinstance(schedule, dict) else {}
    kind = schedule.get("type") or "ON_DEMAND"
    kind = kind.strip().upper().replace("-", "_") if isinstance(kind, str) else ""
    initial: dict = {"schedule_type": kind, "tz": schedule.get("tz") or "UTC"}
    at = schedule.get("time")
    if schedule.get("utcTime"):
        at, initial["tz"] = schedule["utcTime"], "UTC"
    if isinstance(at, str):
        if kind == "RUN_ONCE":
            initial["once_at"] = _clock(at.strip().replace(" ", "T"))
        else:
            initial["time"] = _clock(at.strip())
    interval = schedule.get("intervalCount")
    if kind == "DAILY" and schedule.get("occurrences") not in (None, "", 1, "1"):
        interval = schedule["occurrences"]  # Commander's "every N days"
    for key, value in (
        ("interval_count", interval),
        ("weekday", schedule.get("weekday")),
        ("month_day", schedule.get("monthDay")),
        ("occurrence", schedule.get("occurrence")),
        ("month", schedule.get("month")),
        ("cron", schedule.get("cron")),
    ):
        if value not in (None, ""):
            initial[key] = value
    if isinstance(initial.get("month"), int) and 1 <= initial["month"] <= 12:
        initial["month"] = MONTHS[initial["month"] - 1]
    return initial


def schedule_from_fields(data: dict) -> dict:
    """The schedule JSON the widget's cleaned values stand for (not yet checked)."""
    kind = data.get("schedule_type")
    raw: dict = {"type": kind}
    used = FIELDS_BY_TYPE.get(kind, ())
    if "tz" in used:
        raw["tz"] = data.get("tz") or "UTC"
    if "time" in used and data.get("time"):
        raw["time"] = data["time"].strftime("%H:%M:%S")
    if "once_at" in used:
        raw["time"] = data.get("once_at") or ""
    if "interval_count" in used:
        raw["intervalCount"] = data.get("interval_count") or 1
    for field, key in (
        ("weekday", "weekday"),
        ("month_day", "monthDay"),
        ("occurrence", "occurrence"),
        ("month", "month"),
        ("cron", "cron"),
    ):
        if field in used:
            raw[key] = data.get(field) or ""
    return raw


def run_once_passed(schedule: dict, now: datetime) -> bool:
    """Whether a checked RUN_ONCE schedule's one run is not ahead of `now` (aware)."""
    zone = zoneinfo.ZoneInfo(schedule["tz"])
    return datetime.fromisoformat(schedule["time"]).replace(tzinfo=zone) <= now


class ClockInput(forms.TimeInput):
    """The schedule's time as a time picker: minutes, and seconds too when the time has them
    (Keeper may store 03:00:30), so the browser neither drops nor refuses them."""

    input_type = "time"

    def format_value(self, value):
        if isinstance(value, time):
            value = value.strftime("%H:%M:%S")
        return _clock(value) if isinstance(value, str) else super().format_value(value)

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        shown = context["widget"]["value"] or ""
        context["widget"]["attrs"]["step"] = "1" if shown.count(":") == 2 else "60"
        return context


class ScheduleFields(forms.Form):
    """The widget's fields. A form that uses it calls `clean_schedule_fields` from clean()."""

    schedule_type = forms.ChoiceField(label="Schedule", choices=TYPE_CHOICES)
    tz = forms.ChoiceField(label="Time zone", initial="UTC")
    time = forms.TimeField(
        label="Time",
        initial="00:00",
        input_formats=["%H:%M", "%H:%M:%S"],
        required=False,
        help_text="HH:MM (or HH:MM:SS), in the time zone above.",
        widget=ClockInput(),
    )
    once_at = forms.CharField(
        label="Date and time",
        max_length=19,
        required=False,
        help_text="The one run, in the time zone above.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}),
    )
    interval_count = forms.IntegerField(
        label="Every N (days, weeks, months or years)",
        min_value=1,
        max_value=365,
        initial=1,
        required=False,
    )
    weekday = forms.ChoiceField(
        label="Weekday", choices=[(d, d.title()) for d in WEEKDAYS], required=False
    )
    month_day = forms.IntegerField(
        label="Day of month", min_value=1, max_value=31, initial=1, required=False
    )
    occurrence = forms.ChoiceField(
        label="Which weekday of the month",
        choices=[(o, o.title()) for o in OCCURRENCES],
        required=False,
    )
    month = forms.ChoiceField(
        label="Month", choices=[(m, m.title()) for m in MONTHS], required=False
    )
    cron = forms.CharField(
        label="Cron expression",
        max_length=500,
        required=False,
        help_text="5 fields, or Keeper's Quartz form: 6 or 7 fields with seconds and ?",
    )

    # Types the form adds to the widget's (a form's own choice) -> the fields they read.
    extra_types: dict[str, tuple[str, ...]] = {}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tz"].choices = time_zone_choices()
        self.schedule_uses = {**FIELDS_BY_TYPE, **self.extra_types}
        # Used or not depending on the schedule type: not labelled "(optional)".
        for name in DETAIL_FIELDS:
            self.fields[name].conditional = True

    def schedule_uses_json(self) -> str:
        """FIELDS_BY_TYPE for the page's script (data-schedule-fields)."""
        return json.dumps(self.schedule_uses)

    def schedule_type_unknown(self, label: str) -> None:
        """Offer an empty choice that is selected: a stored type the form cannot show is
        never silently replaced by the first type of the list."""
        field = self.fields["schedule_type"]
        field.choices = [("", label), *field.choices]

    def clean_schedule_fields(
        self, check: Callable[[dict], dict], stored: dict | None = None
    ) -> dict | None:
        """The checked schedule the fields stand for, or None after adding the field errors.

        `check` validates and normalises (rotation/schedules.py, through the registered
        cleaner), raising ValidationError whose code is the schedule key at fault. A RUN_ONCE
        whose time has passed is refused unless it is the `stored` one, unchanged."""
        kind = self.cleaned_data.get("schedule_type")
        if kind is None:
            return None  # the field error already says what is wrong
        used = self.schedule_uses.get(kind, ())
        # Fields this type does not read are hidden on the page: their errors would be invisible.
        for name in DETAIL_FIELDS:
            if name not in used:
                self.errors.pop(name, None)
        if any(name in self.errors for name in used):
            return None  # one message per problem: the field error already says it
        if kind not in FIELDS_BY_TYPE:
            return None  # the form's own type: the form reads it
        if kind == "CRON" and not self.cleaned_data.get("cron"):
            self.add_error("cron", "Enter a cron expression for a cron schedule.")
            return None
        if kind == "RUN_ONCE" and not self.cleaned_data.get("once_at"):
            self.add_error("once_at", "Enter the date and time of the one run.")
            return None
        try:
            schedule = check(schedule_from_fields(self.cleaned_data))
        except ValidationError as exc:
            field = KEY_FIELDS.get(exc.code or "", "schedule_type")
            if kind == "RUN_ONCE" and field == "time":
                field = "once_at"
            self.add_error(field if field in used else "schedule_type", " ".join(exc.messages))
            return None
        if kind == "RUN_ONCE" and schedule != stored and run_once_passed(schedule, timezone.now()):
            now = timezone.now().astimezone(zoneinfo.ZoneInfo(schedule["tz"]))
            self.add_error(
                "once_at",
                f"This date and time has already passed (it is now {now:%Y-%m-%d %H:%M} in "
                f"{schedule['tz']}): choose one ahead.",
            )
            return None
        return schedule
