"""Retiring the access keys that rotations replaced, on each gateway's tick.

A rotation of the "IAM User access key" method leaves the replaced key active for the record's
first grace period (RotationSettings.key_deactivate_after_hours: applications may still use
it), then this pass deactivates it, and deletes it after the second period
(key_delete_after_hours). Each change is written to its KeyRetirement row when AWS confirms it,
so a restarted gateway does only what is left, and doing a step twice is harmless.

The same pass owes one more thing to access-key rotations that ended after a CreateAccessKey
went unanswered: a key that request made (its secret never known) is deleted once AWS can be
asked and no request of the rotation can still arrive (methods/iam_access_key.py).

The gateway checks its authority again, from the database, before it acts, as for rotations.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from rotation import aws
from rotation.methods.base import StepFailed
from rotation.methods.iam_access_key import CREATE, orphans_clean
from rotation.methods.iam_user import check_path_scope
from rotation.models import KeyRetirement, Rotation
from vault import access
from vault.audit import audit_record
from vault.models import Gateway

logger = logging.getLogger(__name__)

BATCH = 200


def _due(gateway_name: str, now: datetime):
    deactivate = Q(deactivated_at__isnull=True, deactivate_at__lte=now)
    delete = Q(deactivated_at__isnull=False, delete_at__lte=now)
    return (
        KeyRetirement.objects.filter(deactivate | delete, deleted_at__isnull=True)
        .filter(configuration__gateway__name=gateway_name)
        .select_related("pam_user__folder", "configuration__folder", "configuration__gateway")
        .order_by("deactivate_at", "id")[:BATCH]
    )


def keys_retire_due(*, gateway_name: str, now: datetime | None = None) -> dict:
    """Deactivate and delete the replaced keys that are due, and clean up after failed
    rotations' lost answers, for the configurations this gateway serves. Returns counts."""
    now = now or timezone.now()
    counts = {"deactivated": 0, "deleted": 0, "failed": 0, "orphans_checked": 0}
    gateway = Gateway.objects.select_related("application").filter(name=gateway_name).first()
    if gateway is None:
        return counts
    memo: dict = {}
    for retirement in _due(gateway_name, now):
        try:
            done = _retire_step(retirement, gateway, now, memo)
        except aws.AwsError as exc:
            _note_failure(retirement, exc.message)
            counts["failed"] += 1
            continue
        if done:
            counts[done] += 1
    counts["orphans_checked"] = _clean_owed_orphans(gateway, memo)
    return counts


def _retire_step(retirement: KeyRetirement, gateway: Gateway, now: datetime, memo: dict) -> str:
    record, config = retirement.pam_user, retirement.configuration
    if retirement.access_key_id == record.access_key_id:
        # A person adopted it again (resolved a failed rotation with it): not ours to retire.
        retirement.delete()
        return ""
    problem = access.rotation_problem(config, record, gateway, folder_memo=memo)
    if problem:
        _note_failure(retirement, problem)
        return "failed"
    key_id, login = retirement.access_key_id, retirement.login or record.login
    if retirement.deactivated_at is None:
        try:
            aws.set_access_key_status(config, login=login, key_id=key_id, active=False)
        except aws.AwsRefused as exc:
            if exc.code != "NoSuchAccessKey":  # e.g. the user is gone: say so, keep trying
                raise
            return _gone(retirement, now)  # the user is there, the key deleted by someone else
        retirement.deactivated_at, retirement.last_error = now, ""
        retirement.save(update_fields=["deactivated_at", "last_error"])
        _audit(retirement, "rotation.key.deactivated")
        return "deactivated"
    aws.delete_access_key(config, login=login, key_id=key_id)
    return _gone(retirement, now)


def _gone(retirement: KeyRetirement, now: datetime) -> str:
    retirement.deactivated_at = retirement.deactivated_at or now
    retirement.deleted_at, retirement.last_error = now, ""
    retirement.save(update_fields=["deactivated_at", "deleted_at", "last_error"])
    _audit(retirement, "rotation.key.deleted")
    return "deleted"


def _note_failure(retirement: KeyRetirement, message: str) -> None:
    KeyRetirement.objects.filter(pk=retirement.pk).update(
        attempts=retirement.attempts + 1, last_error=message[:2000]
    )
    logger.info("retiring key %s: %s", retirement.access_key_id, message)


def _audit(retirement: KeyRetirement, action: str) -> None:
    audit_record(
        action,
        actor_kind="system",
        obj=retirement.pam_user,
        details={
            "access_key_id": retirement.access_key_id,
            "rotation": retirement.rotation.uid if retirement.rotation_id else None,
            "why": "replaced by a rotation; its grace period ended",
        },
    )


def _clean_owed_orphans(gateway: Gateway, memo: dict) -> int:
    """Rotations that ended after a CreateAccessKey may have gone unanswered, once no request
    of theirs can still reach AWS: the key such a request made is deleted (and the step
    forgotten), by a gateway that may still act on the record, inside the target scope."""
    owed = (
        Rotation.objects.filter(
            gateway_name=gateway.name,
            status__in=Rotation.ENDED,
            step=CREATE,
            configuration__isnull=False,
        )
        .exclude(unanswered_until__gt=timezone.now())
        .select_related("pam_user__folder", "configuration__folder", "configuration__gateway")[
            :BATCH
        ]
    )
    checked = 0
    for rotation in owed:
        record, config = rotation.pam_user, rotation.configuration
        problem = access.rotation_problem(config, record, gateway, folder_memo=memo)
        try:
            if problem:
                raise aws.AwsRefused(problem, "NotAuthorized")
            check_path_scope(config, record)
            checked += orphans_clean(rotation)
        except (aws.AwsError, StepFailed) as exc:
            logger.info("rotation %s: orphan check still owed (%s)", rotation.uid, exc)
    return checked
