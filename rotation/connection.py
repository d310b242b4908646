"""Test connection: requested on the web, run on the configuration's gateway.

The web process records a ConnectionTest and hands its id to the configuration's gateway
(rotation/dispatch.py); it never talks to AWS, so a slow or hostile endpoint cannot hold a web
worker. The gateway checks its authority from the database (vault/access.py), calls AWS through
rotation/aws.py and records the outcome, which the configuration page polls for.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from rotation import dispatch
from rotation.models import ConnectionTest
from rotation.passwords import AccountPolicy, Complexity, ComplexityError, effective_complexity
from vault import access
from vault.audit import audit_record
from vault.models import Gateway, PamConfiguration

logger = logging.getLogger(__name__)


def connection_test_request(*, config: PamConfiguration, requested_by) -> ConnectionTest:
    """Record a Test connection and hand it to the configuration's gateway after commit."""
    with transaction.atomic():
        test = ConnectionTest.objects.create(
            configuration=config,
            gateway_name=config.gateway.name,
            requested_by=requested_by if getattr(requested_by, "is_authenticated", False) else None,
        )
        transaction.on_commit(lambda: _hand_over(test))
    return test


def _hand_over(test: ConnectionTest) -> None:
    """Give the test to its gateway; if the broker refuses it (logged in dispatch), end it
    saying so rather than leave the page waiting for a task that will never come."""
    if dispatch.enqueue_connection_test(test):
        return
    message = (
        f"The test could not be handed to the gateway “{test.gateway_name}”: its task queue "
        "did not take it. Try again in a moment."
    )
    ConnectionTest.objects.filter(pk=test.pk, status=ConnectionTest.QUEUED).update(
        status=ConnectionTest.FAILED, finished_at=timezone.now(), message=message
    )
    test.status, test.message = ConnectionTest.FAILED, message


def connection_test_run(*, test_id: int) -> str:
    """Run one Test connection on the gateway. Returns its final status (or "skipped")."""
    claimed = ConnectionTest.objects.filter(pk=test_id, status=ConnectionTest.QUEUED).update(
        status=ConnectionTest.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return "skipped"  # already run (a redelivered task), or its configuration was deleted
    test = ConnectionTest.objects.select_related(
        "configuration__folder", "configuration__gateway", "requested_by"
    ).get(pk=test_id)
    config = test.configuration
    gateway = Gateway.objects.select_related("application").filter(name=test.gateway_name).first()
    if gateway is None:
        problem = f"The gateway “{test.gateway_name}” no longer exists."
    else:
        # Before any AWS call: shares, gateways and the configuration may have changed since
        # the web recorded the request.
        problem = access.configuration_problem(config, gateway)
    if problem:
        return _finish(test, ConnectionTest.FAILED, message=problem)
    # Only the gateway loads the AWS client for a test; the web never reaches this line.
    from rotation import aws

    try:
        report = aws.test_connection(config)
    except aws.AwsError as exc:
        return _finish(test, ConnectionTest.FAILED, message=exc.message)
    except Exception as exc:  # noqa: BLE001 - a test must end with an outcome, never stay running
        logger.exception("Test connection %s failed unexpectedly", test.uid)
        return _finish(
            test,
            ConnectionTest.FAILED,
            message=f"The gateway could not run the test ({type(exc).__name__}); see its log.",
        )
    return _finish(
        test,
        ConnectionTest.SUCCEEDED,
        account_id=report.account_id,
        arn=report.arn,
        policy=policy_text(report.policy),
    )


def _finish(test: ConnectionTest, status: str, **outcome: str) -> str:
    now = timezone.now()
    with transaction.atomic():
        updated = ConnectionTest.objects.filter(pk=test.pk, status=ConnectionTest.RUNNING).update(
            status=status, finished_at=now, **outcome
        )
        if not updated:
            return "skipped"
        details = {"test": test.uid, "gateway": test.gateway_name, "outcome": status}
        if status == ConnectionTest.SUCCEEDED:
            details["account_id"] = outcome["account_id"]
        else:
            details["error"] = outcome["message"]
        config = test.configuration
        audit_record(
            "configuration.tested",
            actor=test.requested_by,
            obj=config,
            folder=config.folder,
            details=details,
        )
    return status


NO_POLICY = "no custom password policy"
# The character classes a policy may require, as policy_text names them.
_REQUIRED_CLASSES = (
    ("upper-case", "require_upper"),
    ("lower-case", "require_lower"),
    ("digits", "require_digits"),
    ("symbols", "require_symbols"),
)
_POLICY_TEXT_RE = re.compile(r"minimum length (\d{1,3})(?:; requires ([a-z-]+(?:, [a-z-]+)*))?")


def policy_text(policy) -> str:
    """The account password policy in words, as Test connection shows it (and keeps it:
    policy_from_text reads it back)."""
    if policy is None:
        return NO_POLICY
    needs = [name for name, flag in _REQUIRED_CLASSES if getattr(policy, flag)]
    text = f"minimum length {policy.minimum_length}"
    return text + (f"; requires {', '.join(needs)}" if needs else "")


def policy_from_text(text: str) -> AccountPolicy | None:
    """The policy a Test connection recorded in words (policy_text), or None when the text is
    not one: an account without a custom policy asks nothing (AccountPolicy())."""
    if text == NO_POLICY:
        return AccountPolicy()
    match = _POLICY_TEXT_RE.fullmatch(text or "")
    if match is None:
        return None
    names = match[2].split(", ") if match[2] else []
    flags = dict(_REQUIRED_CLASSES)
    if any(name not in flags for name in names):
        return None
    return AccountPolicy(minimum_length=int(match[1]), **{flags[name]: True for name in names})


@dataclass(frozen=True)
class KnownPolicy:
    """What a configuration's AWS account requires of a password, as its latest successful
    Test connection saw it. The gateway reads the policy again for every rotation: this is
    what the pages can say before one runs."""

    policy: AccountPolicy
    text: str
    tested_at: datetime


def known_policy(config: PamConfiguration) -> KnownPolicy | None:
    """The account password policy from `config`'s latest successful Test connection, or None
    when no test has succeeded (a failed test says nothing about the policy). One query."""
    test = (
        ConnectionTest.objects.filter(configuration=config, status=ConnectionTest.SUCCEEDED)
        .only("policy", "finished_at", "created_at")
        .first()
    )
    if test is None:
        return None
    policy = policy_from_text(test.policy)
    if policy is None:
        return None
    return KnownPolicy(
        policy=policy, text=test.policy, tested_at=test.finished_at or test.created_at
    )


def policy_problem(
    config: PamConfiguration, complexity: Complexity, known: KnownPolicy | None
) -> str | None:
    """Why `complexity` cannot be saved for `config`, given its account's `known` policy (see
    known_policy), in the words the settings page and the CLI both show; None when it can (or
    nothing is known yet). A length below what the account requires would be saved and shown
    while every password is generated longer."""
    if known is None:
        return None
    minimum = known.policy.minimum_length
    if complexity.length < minimum:
        return (
            f"The AWS account of “{config.title}” requires at least {minimum} characters "
            f"(its Test connection of {known.tested_at:%Y-%m-%d %H:%M} UTC): make the length "
            f"{minimum} or more. If the account's policy has changed since, run Test connection "
            "again."
        )
    try:
        effective_complexity(complexity, known.policy)
    except ComplexityError as exc:
        return str(exc)
    return None


def connection_test_state(config: PamConfiguration) -> dict:
    """What the configuration page shows about Test connection: the latest test and, while it
    waits, whether its gateway is online, offline or was never seen. A test left running longer
    than a rotation's lease lost its worker: it is shown as such and no longer followed."""
    latest = (
        ConnectionTest.objects.filter(configuration=config).select_related("requested_by").first()
    )
    gateway = None
    waiting = ""
    active = bool(latest and latest.is_active)
    if active and latest.status == ConnectionTest.RUNNING:
        lease = timedelta(seconds=settings.ROTATION_LEASE_SECONDS)
        if latest.started_at and timezone.now() - latest.started_at > lease:
            waiting, active = "lost", False
    if active:
        gateway = Gateway.objects.filter(name=latest.gateway_name).first()
        if gateway is None or gateway.last_seen_at is None:
            waiting = "never_seen"
        elif not gateway.is_online:
            waiting = "offline"
    return {
        "test": latest,
        "active": active,
        "waiting": waiting,
        "test_gateway": gateway,
        "test_gateway_name": latest.gateway_name if latest else "",
    }
