"""Settings that the rotation's safety depends on, checked by `manage.py check` (and at every
`migrate`, `runserver` and `qcluster` start)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from rotation.aws import UNMODIFIABLE_DELAYS

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
