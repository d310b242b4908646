"""Password Rotation Settings: the form a person with edit rights fills in on a PAM User."""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.utils import timezone

from rotation.connection import KnownPolicy, known_policy, policy_problem
from rotation.models import RotationSettings
from rotation.passwords import (
    AWS_SYMBOLS,
    Complexity,
    ComplexityError,
    validate_complexity,
)
from rotation.rotation_settings import ACCESS_KEY, MAX_GRACE_HOURS, settings_complexity
from rotation.schedules import ScheduleError, next_runs, normalize_schedule, schedule_problem
from vault.access import configurations_usable_by, may_use_configuration
from vault.forms import ObjectChoiceField
from vault.models import PamConfiguration, PamUser
from vault.schedule_widget import ScheduleFields, schedule_initial

CONFIG_DEFAULT = "CONFIG_DEFAULT"
UNREADABLE = "— the stored schedule is invalid: choose one —"


def _checked(raw: dict) -> dict:
    """normalize_schedule, its error as the widget reads it (the key at fault as the code)."""
    try:
        return normalize_schedule(raw)
    except ScheduleError as exc:
        raise forms.ValidationError(str(exc), code=exc.field or "schedule") from None


class RotationSettingsForm(ScheduleFields):
    # The schedule fields are the vault's schedule widget, which the PAM Configuration form
    # shares; this form adds the choice of the configuration's default.
    extra_types = {CONFIG_DEFAULT: ()}
    method = forms.ChoiceField(
        label="Rotation method",
        choices=RotationSettings.METHODS,
        help_text="IAM User: the console password, set anew on each rotation. IAM User "
        "access key: a new access key pair is created and proven to work, then the previous "
        "key is retired (see below).",
    )
    configuration = ObjectChoiceField(
        label="PAM Configuration", queryset=PamConfiguration.objects.none(), to_field_name="uid"
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
    # Access keys only (rotation/retirement.py retires the replaced key by these).
    key_deactivate_after_hours = forms.IntegerField(
        label="Deactivate the replaced key after (hours)",
        min_value=0,
        max_value=MAX_GRACE_HOURS,
        initial=24,
        required=False,
        help_text="The previous access key stays active this long after a rotation, for the "
        "applications still using it; then it is deactivated. 0: at once.",
    )
    key_delete_after_hours = forms.IntegerField(
        label="Delete it after a further (hours)",
        min_value=0,
        max_value=MAX_GRACE_HOURS,
        initial=168,
        required=False,
        help_text="Counted from the deactivation: the inactive key can still be re-activated "
        "in AWS until it is deleted. 0: delete it when it is deactivated.",
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)

    max_grace_hours = MAX_GRACE_HOURS
    COMPLEXITY_FIELDS = ("length", "min_upper", "min_lower", "min_digits", "min_symbols")
    GRACE_FIELDS = ("key_deactivate_after_hours", "key_delete_after_hours")

    def __init__(self, *args, record: PamUser, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.record = record
        self.user = user
        # An access key's secret is made by AWS: the password complexity does not apply, and
        # a submission without it keeps the stored one. The grace periods are for keys only.
        if self.is_bound and self.data.get("method") == ACCESS_KEY:
            for name in self.COMPLEXITY_FIELDS:
                self.fields[name].required = False
        # Only configurations whose folder the person may edit: view-only never suffices.
        self.fields["configuration"].queryset = configurations_usable_by(user).select_related(
            "gateway__application", "folder"
        )
        self.fields["schedule_type"].choices = [
            *self.fields["schedule_type"].choices,
            (CONFIG_DEFAULT, "Use the configuration's default schedule"),
        ]
        self.fields["symbols"].conditional = True
        for name in self.GRACE_FIELDS:
            self.fields[name].conditional = True  # required with the access-key method
        self.current = RotationSettings.objects.filter(pam_user=record).first()
        # A stored schedule that no longer reads: the page says so, and it must be chosen again.
        self.stored_problem = (
            schedule_problem(self.current.effective_schedule) if self.current else ""
        )
        if self.stored_problem and self.initial.get("schedule_type") not in self.schedule_uses:
            self.schedule_type_unknown(UNREADABLE)
            self.initial["schedule_type"] = ""
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
        initial = schedule_initial(rs.schedule or {"type": "ON_DEMAND"})
        if rs.use_configuration_schedule:
            initial["schedule_type"] = CONFIG_DEFAULT
        return {
            **initial,
            "method": rs.method,
            "configuration": rs.configuration.uid,
            "length": rs.length,
            "min_upper": rs.min_upper,
            "min_lower": rs.min_lower,
            "min_digits": rs.min_digits,
            "min_symbols": rs.min_symbols,
            "symbols": rs.symbols,
            "key_deactivate_after_hours": rs.key_deactivate_after_hours,
            "key_delete_after_hours": rs.key_delete_after_hours,
            "enabled": rs.enabled,
        }

    def clean_configuration(self) -> PamConfiguration:
        config = self.cleaned_data["configuration"]
        problem = may_use_configuration(self.user, config, self.record)
        if problem:
            raise forms.ValidationError(problem)
        return config

    def _clean_schedule(self) -> None:
        kind = self.cleaned_data.get("schedule_type")
        # The record's own schedule as stored: a RUN_ONCE already run may be saved unchanged.
        stored = None
        if self.current is not None and not self.current.use_configuration_schedule:
            stored = self.current.schedule
        self.schedule = self.clean_schedule_fields(_checked, stored)
        if kind == CONFIG_DEFAULT and not self.errors.get("schedule_type"):
            config = self.cleaned_data.get("configuration")
            if config is not None:
                try:
                    normalize_schedule(config.default_rotation_schedule or {"type": "ON_DEMAND"})
                except ScheduleError as exc:
                    self.add_error(
                        "schedule_type", f"The configuration's default schedule is invalid: {exc}"
                    )

    @property
    def is_access_key(self) -> bool:
        return self.cleaned_data.get("method") == ACCESS_KEY

    def _clean_grace(self) -> None:
        """The grace periods: required for the access-key method (a blank field is a mistake,
        not a wish for the default); for the console password, what is stored stays."""
        for name in self.GRACE_FIELDS:
            if name in self.errors:
                continue
            if self.cleaned_data.get(name) is None:
                if self.is_access_key:
                    self.add_error(
                        name,
                        f"Give a number of hours from 0 to {MAX_GRACE_HOURS} (0: at once).",
                    )
                else:
                    stored = getattr(self.current, name) if self.current else None
                    default = RotationSettings._meta.get_field(name).default
                    self.cleaned_data[name] = stored if stored is not None else default

    def _clean_complexity(self) -> None:
        data = self.cleaned_data
        names = self.COMPLEXITY_FIELDS
        if self.is_access_key and any(data.get(n) is None for n in names):
            if not any(n in self.errors for n in names):
                # Left out for an access key: the stored complexity (for a later switch back).
                stored = self.current
                self.complexity = settings_complexity(stored) if stored else Complexity()
                return
        if any(data.get(n) is None for n in names):
            return  # the field errors already say what is wrong
        complexity = Complexity(symbols=data.get("symbols", ""), **{n: data[n] for n in names})
        try:
            validate_complexity(complexity)
        except ComplexityError as exc:
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, str(exc))
            return
        # The account's password policy binds passwords only; switching back checks it again.
        if not self.is_access_key and not self._meets_known_policy(complexity):
            return
        self.complexity = complexity

    def _meets_known_policy(self, complexity: Complexity) -> bool:
        config = self.cleaned_data.get("configuration")
        known = self._known_policy(config) if config is not None else None
        problem = policy_problem(config, complexity, known)
        if problem:
            self.add_error("length", problem)
        return problem is None

    def clean(self) -> dict:
        super().clean()
        self._clean_schedule()
        self._clean_complexity()
        self._clean_grace()
        return self.cleaned_data

    def schedule_has_errors(self) -> bool:
        """Whether the schedule itself could not be read (its fields, or for the configuration's
        default the configuration); errors elsewhere leave its next runs known."""
        kind = self.cleaned_data.get("schedule_type")
        if kind is None or "schedule_type" in self.errors:
            return True
        if any(name in self.errors for name in self.schedule_uses[kind]):
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
