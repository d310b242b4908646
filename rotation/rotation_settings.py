"""Rotation settings of a PAM User: saving them (method, configuration, schedule, complexity,
enabled) with their next run and an audit event, and reading back the complexity they ask for.

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
    actor=None,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> RotationSettings:
    """Create or update a record's rotation settings and compute its next scheduled run."""
    rs = RotationSettings.objects.filter(pam_user=record).first()
    creating = rs is None
    was_enabled = bool(rs and rs.enabled)
    rs = rs or RotationSettings(pam_user=record)
    rs.method = "iam_user"  # the one method registered in rotation/methods
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
            "configuration": configuration.uid,
            **_audited_schedule(rs),
            "complexity": rs.complexity_text,
            "enabled": enabled,
        },
    )
    return rs


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
