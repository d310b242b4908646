"""Rotation settings of a PAM User: saving them (method, configuration, schedule, complexity,
the access-key method's grace periods, enabled) with their next run and an audit event, and
reading back the complexity they ask for.

The web form, `pam rotation edit` and `pam import` all save through rotation_settings_save.
"""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from rotation.models import RotationSettings
from rotation.passwords import Complexity
from rotation.schedules import ScheduleError, describe_schedule, next_run, normalize_schedule
from vault.audit import audit_record
from vault.models import PamConfiguration, PamUser

# How the audit details and the pages name a schedule that follows the configuration's default.
CONFIGURATION_DEFAULT = "configuration default"

METHOD_NAMES = tuple(name for name, _ in RotationSettings.METHODS)
ACCESS_KEY = "iam_access_key"
# The grace periods of the access-key method, in hours: a replaced key stays active up to a year
# (applications still using it), and is deleted up to a year after it was deactivated. Longer
# is a typo more often than a wish, and a key left in AWS that long defeats the rotation.
MAX_GRACE_HOURS = 8760


class SettingsError(ValueError):
    """A method or grace period the settings cannot hold; `field` names the setting."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def grace_hours_problem(value) -> str | None:
    """Why `value` is not a grace period (whole hours from 0 to MAX_GRACE_HOURS), or None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be a whole number of hours"
    if value < 0 or value > MAX_GRACE_HOURS:
        return f"must be from 0 to {MAX_GRACE_HOURS} hours (a year)"
    return None


def grace_text(rs: RotationSettings) -> str:
    """The access-key method's grace periods in words."""
    return (
        f"the replaced key is deactivated {rs.key_deactivate_after_hours} h after a rotation, "
        f"and deleted {rs.key_delete_after_hours} h after that"
    )


def schedule_text(rs: RotationSettings) -> str:
    """The schedule in words. One that follows the configuration's default says so, and what
    that default is now (it changes with the configuration)."""
    text = describe_schedule(rs.effective_schedule)
    if rs.use_configuration_schedule:
        return f"Follows the configuration’s default, which is now: {text}"
    return text


def _audited_schedule(rs: RotationSettings) -> dict:
    """The schedule keys of the audit details: the record's own schedule, or the fact that it
    follows the configuration's default with that default's value at the time."""
    if not rs.use_configuration_schedule:
        return {"schedule": rs.effective_schedule}
    try:
        now = normalize_schedule(rs.effective_schedule)
    except ScheduleError:
        now = rs.effective_schedule
    return {"schedule": CONFIGURATION_DEFAULT, "configuration_default": now}


def settings_complexity(rs: RotationSettings) -> Complexity:
    """The password complexity the settings ask for."""
    return Complexity(
        length=rs.length,
        min_upper=rs.min_upper,
        min_lower=rs.min_lower,
        min_digits=rs.min_digits,
        min_symbols=rs.min_symbols,
        symbols=rs.symbols,
    )


@transaction.atomic
def rotation_settings_save(
    *,
    record: PamUser,
    configuration: PamConfiguration,
    schedule: dict | None,
    use_configuration_schedule: bool,
    complexity: Complexity,
    enabled: bool,
    method: str | None = None,
    key_deactivate_after_hours: int | None = None,
    key_delete_after_hours: int | None = None,
    actor=None,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> RotationSettings:
    """Create or update a record's rotation settings and compute its next scheduled run.

    `method` and the grace periods None keep what is stored (new settings: the console
    password, 24 h and 168 h). A method or grace period out of range raises SettingsError
    before anything is written."""
    for field, hours in (
        ("key_deactivate_after_hours", key_deactivate_after_hours),
        ("key_delete_after_hours", key_delete_after_hours),
    ):
        problem = None if hours is None else grace_hours_problem(hours)
        if problem:
            raise SettingsError(field, f"{field}: {problem}")
    if method is not None and method not in METHOD_NAMES:
        raise SettingsError("method", f"method: must be one of {', '.join(METHOD_NAMES)}")
    rs = RotationSettings.objects.filter(pam_user=record).first()
    creating = rs is None
    was_enabled = bool(rs and rs.enabled)
    rs = rs or RotationSettings(pam_user=record)
    if method is not None:
        rs.method = method
    if key_deactivate_after_hours is not None:
        rs.key_deactivate_after_hours = key_deactivate_after_hours
    if key_delete_after_hours is not None:
        rs.key_delete_after_hours = key_delete_after_hours
    rs.configuration = configuration
    rs.schedule = schedule or {"type": "ON_DEMAND"}
    rs.use_configuration_schedule = use_configuration_schedule
    _set_complexity(rs, complexity)
    rs.enabled = enabled
    rs.next_run_at = next_run(rs.effective_schedule, timezone.now()) if enabled else None
    rs.save()
    audit_record(
        _audit_action(creating=creating, was_enabled=was_enabled, enabled=enabled),
        actor=actor,
        actor_kind=actor_kind,
        obj=record,
        request=request,
        details={
            "method": rs.method,
            "configuration": configuration.uid,
            **_audited_schedule(rs),
            "complexity": rs.complexity_text,
            **_audited_grace(rs),
            "enabled": enabled,
        },
    )
    return rs


def _audited_grace(rs: RotationSettings) -> dict:
    """The grace periods, for the method that uses them."""
    if rs.method != ACCESS_KEY:
        return {}
    return {
        "key_deactivate_after_hours": rs.key_deactivate_after_hours,
        "key_delete_after_hours": rs.key_delete_after_hours,
    }


def _set_complexity(rs: RotationSettings, complexity: Complexity) -> None:
    rs.length, rs.min_upper, rs.min_lower = (
        complexity.length,
        complexity.min_upper,
        complexity.min_lower,
    )
    rs.min_digits, rs.min_symbols, rs.symbols = (
        complexity.min_digits,
        complexity.min_symbols,
        complexity.symbols,
    )


def _audit_action(*, creating: bool, was_enabled: bool, enabled: bool) -> str:
    if creating:
        return "rotation_settings.created"
    if was_enabled and not enabled:
        return "rotation_settings.disabled"
    return "rotation_settings.updated"
