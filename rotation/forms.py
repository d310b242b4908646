"""Password Rotation Settings: the form a person with edit rights fills in on a PAM User."""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from django import forms
from django.utils import timezone

from rotation import schedules
from rotation.connection import KnownPolicy, known_policy
from rotation.models import RotationSettings
from rotation.passwords import (
    AWS_SYMBOLS,
    Complexity,
    ComplexityError,
    effective_complexity,
    validate_complexity,
)
from rotation.schedules import ScheduleError, next_runs, normalize_schedule
from vault.access import configurations_usable_by, may_use_configuration
from vault.forms import ObjectChoiceField
from vault.models import PamConfiguration, PamUser

CONFIG_DEFAULT = "CONFIG_DEFAULT"
SCHEDULE_DETAIL_FIELDS = (
    "time",
    "interval_count",
    "weekday",
    "month_day",
    "occurrence",
    "month",
    "cron",
    "symbols",
)
SCHEDULE_TYPES = [
    ("ON_DEMAND", "On demand only"),
    ("DAILY", "Daily"),
    ("WEEKLY", "Weekly"),
    ("MONTHLY_BY_DAY", "Monthly on a day"),
    ("MONTHLY_BY_WEEKDAY", "Monthly on a weekday"),
    ("YEARLY", "Yearly"),
    ("CRON", "Cron expression"),
    (CONFIG_DEFAULT, "Use the configuration's default schedule"),
]
WEEKDAYS = [(d, d.title()) for d in schedules.WEEKDAYS]
OCCURRENCES = [(o, o.title()) for o in schedules.OCCURRENCES]
MONTHS = [(m, m.title()) for m in schedules.MONTHS]


# The form fields each schedule type reads (static/js/rotation-settings.js shows only these).
SCHEDULE_FIELDS = {
    "ON_DEMAND": (),
    CONFIG_DEFAULT: (),
    "DAILY": ("tz", "time", "interval_count"),
    "WEEKLY": ("tz", "time", "interval_count", "weekday"),
    "MONTHLY_BY_DAY": ("tz", "time", "month_day"),
    "MONTHLY_BY_WEEKDAY": ("tz", "time", "weekday", "occurrence"),
    "YEARLY": ("tz", "time", "month", "month_day"),
    "CRON": ("tz", "cron"),
}
ALL_SCHEDULE_FIELDS = (
    "tz",
    "time",
    "interval_count",
    "weekday",
    "month_day",
    "occurrence",
    "month",
    "cron",
)
# Schedule JSON keys (ScheduleError.field) -> the form field that holds them.
SCHEDULE_KEY_FIELDS = {
    "type": "schedule_type",
    "time": "time",
    "utcTime": "time",
    "tz": "tz",
    "intervalCount": "interval_count",
    "weekday": "weekday",
    "monthDay": "month_day",
    "occurrence": "occurrence",
    "month": "month",
    "cron": "cron",
}


def _time_zones() -> list[tuple[str, str]]:
    return [(z, z) for z in sorted(zoneinfo.available_timezones()) if "/" in z or z == "UTC"]


class RotationSettingsForm(forms.Form):
    method = forms.ChoiceField(label="Rotation method", choices=RotationSettings.METHODS)
    configuration = ObjectChoiceField(
        label="PAM Configuration", queryset=PamConfiguration.objects.none(), to_field_name="uid"
    )
    schedule_type = forms.ChoiceField(label="Schedule", choices=SCHEDULE_TYPES)
    time = forms.TimeField(
        label="Time", initial="00:00", input_formats=["%H:%M", "%H:%M:%S"], required=False
    )
    tz = forms.ChoiceField(label="Time zone", initial="UTC")
    interval_count = forms.IntegerField(
        label="Every N (days or weeks)", min_value=1, max_value=365, initial=1, required=False
    )
    weekday = forms.ChoiceField(label="Weekday", choices=WEEKDAYS, required=False)
    month_day = forms.IntegerField(
        label="Day of month", min_value=1, max_value=31, initial=1, required=False
    )
    occurrence = forms.ChoiceField(
        label="Which weekday of the month", choices=OCCURRENCES, required=False
    )
    month = forms.ChoiceField(label="Month", choices=MONTHS, required=False)
    cron = forms.CharField(
        label="Cron expression",
        max_length=120,
        required=False,
        help_text="5 fields, or Keeper's 6-field form with seconds and ?",
    )
    length = forms.IntegerField(label="Length", min_value=8, max_value=128, initial=32)
    min_upper = forms.IntegerField(
        label="Minimum upper-case", min_value=0, max_value=128, initial=5
    )
    min_lower = forms.IntegerField(
        label="Minimum lower-case", min_value=0, max_value=128, initial=5
    )
    min_digits = forms.IntegerField(label="Minimum digits", min_value=0, max_value=128, initial=5)
    min_symbols = forms.IntegerField(label="Minimum symbols", min_value=0, max_value=128, initial=5)
    symbols = forms.CharField(
        label="Symbol set", max_length=100, required=False, strip=False, initial=AWS_SYMBOLS
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)

    def __init__(self, *args, record: PamUser, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.record = record
        self.user = user
        # Only configurations whose folder the person may edit: view-only never suffices.
        self.fields["configuration"].queryset = configurations_usable_by(user).select_related(
            "gateway__application", "folder"
        )
        self.fields["tz"].choices = _time_zones()
        # Used or not depending on the schedule type: not labelled "(optional)".
        for name in SCHEDULE_DETAIL_FIELDS:
            self.fields[name].conditional = True
        self.schedule: dict | None = None
        self.complexity: Complexity | None = None
        self._policies: dict[int, KnownPolicy | None] = {}

    # --- what the AWS account requires (its configuration's last Test connection) ----------

    def _known_policy(self, config: PamConfiguration) -> KnownPolicy | None:
        if config.pk not in self._policies:
            self._policies[config.pk] = known_policy(config)
        return self._policies[config.pk]

    def policy_configuration(self) -> PamConfiguration | None:
        """The configuration the page speaks of: the one chosen (submitted, or saved), among
        those the person may choose."""
        if self.is_bound:
            uid = self.data.get("configuration")
        else:
            uid = self.initial.get("configuration")
        if not uid or not isinstance(uid, str) or "\x00" in uid:
            return None
        return self.fields["configuration"].queryset.filter(uid=uid).first()

    def account_policy_note(self) -> str:
        """What the chosen configuration's AWS account requires of a password, in words."""
        config = self.policy_configuration()
        if config is None:
            return ""
        known = self._known_policy(config)
        if known is None:
            return (
                f"What the AWS account of “{config.title}” requires is not known yet: run "
                "Test connection on that configuration to see it here. Every password meets "
                "the account's policy anyway: the gateway raises the length and minimums to it."
            )
        return (
            f"The AWS account of “{config.title}” requires: {known.text} (its Test connection "
            f"of {known.tested_at:%Y-%m-%d %H:%M} UTC). Every password meets both that and "
            "the settings below."
        )

    @classmethod
    def initial_for(cls, rs: RotationSettings | None) -> dict:
        if rs is None:
            return {"method": "iam_user", "schedule_type": "ON_DEMAND", "tz": "UTC"}
        schedule = rs.schedule or {"type": "ON_DEMAND"}
        return {
            "method": rs.method,
            "configuration": rs.configuration.uid,
            "schedule_type": CONFIG_DEFAULT if rs.use_configuration_schedule else schedule["type"],
            "time": schedule.get("time", "00:00")[:5],
            "tz": schedule.get("tz", "UTC"),
            "interval_count": schedule.get("intervalCount", 1),
            "weekday": schedule.get("weekday", "MONDAY"),
            "month_day": schedule.get("monthDay", 1),
            "occurrence": schedule.get("occurrence", "FIRST"),
            "month": schedule.get("month", "JANUARY"),
            "cron": schedule.get("cron", ""),
            "length": rs.length,
            "min_upper": rs.min_upper,
            "min_lower": rs.min_lower,
            "min_digits": rs.min_digits,
            "min_symbols": rs.min_symbols,
            "symbols": rs.symbols,
            "enabled": rs.enabled,
        }

    def clean_configuration(self) -> PamConfiguration:
        config = self.cleaned_data["configuration"]
        problem = may_use_configuration(self.user, config, self.record)
        if problem:
            raise forms.ValidationError(problem)
        return config

    def _schedule_data(self) -> dict:
        data = self.cleaned_data
        kind = data.get("schedule_type")
        raw: dict = {"type": kind, "tz": data.get("tz") or "UTC"}
        if data.get("time"):
            raw["time"] = data["time"].strftime("%H:%M")
        extra = {
            "DAILY": {"intervalCount": data.get("interval_count") or 1},
            "WEEKLY": {
                "weekday": data.get("weekday") or "MONDAY",
                "intervalCount": data.get("interval_count") or 1,
            },
            "MONTHLY_BY_DAY": {"monthDay": data.get("month_day") or 1},
            "MONTHLY_BY_WEEKDAY": {
                "weekday": data.get("weekday") or "MONDAY",
                "occurrence": data.get("occurrence") or "FIRST",
            },
            "YEARLY": {
                "month": data.get("month") or "JANUARY",
                "monthDay": data.get("month_day") or 1,
            },
            "CRON": {"cron": data.get("cron", "")},
        }.get(kind, {})
        raw.update(extra)
        return raw

    def _clean_schedule(self) -> None:
        kind = self.cleaned_data.get("schedule_type")
        if kind is None:
            return  # the field error already says what is wrong
        used = SCHEDULE_FIELDS[kind]
        # Fields this type does not read are hidden on the page: their errors would be invisible.
        for name in ALL_SCHEDULE_FIELDS:
            if name not in used:
                self.errors.pop(name, None)
        if any(name in self.errors for name in used):
            return  # one message per problem: the field error already says it
        if kind == CONFIG_DEFAULT:
            config = self.cleaned_data.get("configuration")
            if config is not None:
                try:
                    normalize_schedule(config.default_rotation_schedule or {"type": "ON_DEMAND"})
                except ScheduleError as exc:
                    self.add_error(
                        "schedule_type", f"The configuration's default schedule is invalid: {exc}"
                    )
            return
        if kind == "CRON" and not self.cleaned_data.get("cron"):
            self.add_error("cron", "Enter a cron expression for a cron schedule.")
            return
        try:
            self.schedule = normalize_schedule(self._schedule_data())
        except ScheduleError as exc:
            field = SCHEDULE_KEY_FIELDS.get(exc.field or "", "schedule_type")
            self.add_error(field if field in used else "schedule_type", str(exc))

    def _clean_complexity(self) -> None:
        data = self.cleaned_data
        names = ("length", "min_upper", "min_lower", "min_digits", "min_symbols")
        if any(data.get(n) is None for n in names):
            return  # the field errors already say what is wrong
        complexity = Complexity(symbols=data.get("symbols", ""), **{n: data[n] for n in names})
        try:
            validate_complexity(complexity)
        except ComplexityError as exc:
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, str(exc))
            return
        if not self._meets_known_policy(complexity):
            return
        self.complexity = complexity

    def _meets_known_policy(self, complexity: Complexity) -> bool:
        """A length below what the AWS account requires would be saved and shown, while every
        password is generated longer: refused, saying what the account requires."""
        config = self.cleaned_data.get("configuration")
        known = self._known_policy(config) if config is not None else None
        if known is None:
            return True
        minimum = known.policy.minimum_length
        when = f"{known.tested_at:%Y-%m-%d %H:%M} UTC"
        if complexity.length < minimum:
            self.add_error(
                "length",
                f"The AWS account of “{config.title}” requires at least {minimum} characters "
                f"(its Test connection of {when}): make the length {minimum} or more. If the "
                "account's policy has changed since, run Test connection again.",
            )
            return False
        try:
            effective_complexity(complexity, known.policy)
        except ComplexityError as exc:
            self.add_error("length", str(exc))
            return False
        return True

    def clean(self) -> dict:
        super().clean()
        self._clean_schedule()
        self._clean_complexity()
        return self.cleaned_data

    def schedule_has_errors(self) -> bool:
        """Whether the schedule itself could not be read (its fields, or for the configuration's
        default the configuration); errors elsewhere leave its next runs known."""
        kind = self.cleaned_data.get("schedule_type")
        if kind is None or "schedule_type" in self.errors:
            return True
        if any(name in self.errors for name in SCHEDULE_FIELDS[kind]):
            return True
        if kind == CONFIG_DEFAULT:
            return "configuration" in self.errors
        return self.schedule is None

    def effective_schedule(self) -> dict:
        if self.cleaned_data.get("schedule_type") == CONFIG_DEFAULT:
            config = self.cleaned_data["configuration"]
            return config.default_rotation_schedule or {"type": "ON_DEMAND"}
        return self.schedule or {"type": "ON_DEMAND"}

    def upcoming_runs(self, now: datetime | None = None) -> list[datetime]:
        try:
            return next_runs(self.effective_schedule(), now or timezone.now(), 5)
        except ScheduleError:
            return []
