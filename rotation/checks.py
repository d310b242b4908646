"""Settings that the rotation's safety depends on, checked by `manage.py check` (and at every
`migrate`, `runserver` and `qcluster` start); and stored schedules that no longer read, a
database check (`migrate`, `manage.py check --database default`)."""

from __future__ import annotations

import json

from django.conf import settings
from django.core import checks
from django.db import DatabaseError
from django.db.models import TextField
from django.db.models.functions import Cast

from rotation.aws import UNMODIFIABLE_DELAYS
from rotation.schedules import schedule_problem

# botocore's standard retry mode waits at most min(2**n, 20) seconds before retry n.
MAX_BACKOFF = 20
# A worker skips renewing its lease when more than this share of it is left (engine.py).
FRESH_SHARE = 0.8
# AWS refuses a SigV4-signed request that reaches it more than this long after it was signed.
SIGNATURE_VALIDITY_SECONDS = 300


def longest_attempt_seconds() -> float:
    """The longest one rotation attempt can talk to AWS: GetCallerIdentity (when not cached)
    and UpdateLoginProfile, each with every retry timing out, plus the unmodifiable waits."""
    tries = settings.AWS_MAX_ATTEMPTS
    per_try = settings.AWS_CONNECT_TIMEOUT + settings.AWS_READ_TIMEOUT
    backoff = sum(min(2**n, MAX_BACKOFF) for n in range(1, tries))
    return 2 * (tries * per_try + backoff) + sum(UNMODIFIABLE_DELAYS)


@checks.register()
def check_rotation_timing(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    problems = []
    attempt = longest_attempt_seconds()
    lease = settings.ROTATION_LEASE_SECONDS
    if attempt >= FRESH_SHARE * lease:
        # Otherwise a worker could still be talking to AWS after its lease ran out and another
        # worker (or a person resolving a possibly-live password) took the rotation over.
        # A warning, not an error: tests and soak runs use short leases on purpose.
        problems.append(
            checks.Warning(
                f"ROTATION_LEASE_SECONDS={lease} is too short: one attempt may talk to AWS for "
                f"{attempt:.0f} s (AWS_MAX_ATTEMPTS x (AWS_CONNECT_TIMEOUT + AWS_READ_TIMEOUT) "
                f"with retries); the lease must be over {attempt / FRESH_SHARE:.0f} s.",
                id="rotation.W001",
            )
        )
    window = settings.ROTATION_UNANSWERED_WINDOW_SECONDS
    if window < SIGNATURE_VALIDITY_SECONDS:
        # A warning: tests and soak runs against an emulator use a short window on purpose.
        problems.append(
            checks.Warning(
                f"ROTATION_UNANSWERED_WINDOW_SECONDS={window} is shorter than the "
                f"{SIGNATURE_VALIDITY_SECONDS} s during which AWS still applies a signed "
                "request: a request that went unanswered could land after the next rotation "
                "and overwrite its password.",
                id="rotation.W002",
            )
        )
    q = settings.Q_CLUSTER
    if q.get("timeout", 0) >= q.get("retry", 0):
        problems.append(
            checks.Error(
                f"Q_TIMEOUT ({q.get('timeout')}) must be below Q_RETRY ({q.get('retry')}), or "
                "the broker hands a running rotation task to a second worker.",
                id="rotation.E002",
            )
        )
    return problems


# How many uids a warning about stored schedules names (the count says how many there are).
NAMED_UIDS = 5


def _unreadable(schedule_text: str | None) -> bool:
    try:
        schedule = json.loads(schedule_text) if schedule_text else None
    except ValueError:
        return True
    return bool(schedule_problem(schedule))


@checks.register(checks.Tags.database)
def check_stored_schedules(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Stored schedules that no longer read: saved under older rules (6/7-field cron that the
    croniter path accepted and Quartz refuses, rotation/quartz.py). They are data at rest:
    their records get no further scheduled runs and their pages ask for a new schedule.

    A database check (run by `migrate` and `manage.py check --database default`): it reads
    each distinct schedule once, however many records share it."""
    if not databases:
        return []
    from rotation.models import RotationSettings
    from vault.models import PamConfiguration

    problems = []
    try:
        own = RotationSettings.objects.filter(use_configuration_schedule=False).annotate(
            text=Cast("schedule", TextField())
        )
        bad = [t for t in own.values_list("text", flat=True).distinct() if _unreadable(t)]
        if bad:
            rows = own.filter(text__in=bad).order_by("pk")
            uids = list(rows.values_list("pam_user__uid", flat=True)[:NAMED_UIDS])
            problems.append(_stored_warning(rows.count(), "record", uids, "rotation.W003"))
        configs = PamConfiguration.objects.order_by("pk").values_list(
            "uid", "default_rotation_schedule"
        )
        bad_configs = [
            uid for uid, schedule in configs.iterator() if _unreadable(json.dumps(schedule))
        ]
        if bad_configs:
            problems.append(
                _stored_warning(
                    len(bad_configs), "configuration", bad_configs[:NAMED_UIDS], "rotation.W004"
                )
            )
    except DatabaseError:
        return []  # no tables yet (before the first migrate): nothing is stored
    return problems


def _stored_warning(count: int, noun: str, uids: list[str], check_id: str) -> checks.Warning:
    whose = "rotation settings schedule" if noun == "record" else "default schedule"
    where = (
        "Password Rotation Settings (or `pam rotation edit --schedulejson`)"
        if noun == "record"
        else "the configuration's Edit page (or `pam config edit`)"
    )
    more = f", and {count - len(uids)} more" if count > len(uids) else ""
    return checks.Warning(
        f"{count} {noun}{'s' if count != 1 else ''} ha{'ve' if count != 1 else 's'} a stored "
        f"{whose} that no longer reads (saved under older rules, such as a 6- or "
        f"7-field cron that Quartz refuses): {', '.join(uids)}{more}.",
        hint=f"Choose the schedule again in {where}. Until then no further runs are "
        "scheduled from it, and its page says the stored schedule is invalid.",
        id=check_id,
    )
