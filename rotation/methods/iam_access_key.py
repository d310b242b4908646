"""The "IAM User access key" method: an IAM user's access key pair, replaced without ever
leaving AWS holding a key the vault lacks, or a user needing three keys.

Its durable steps, in the order AWS's own guidance gives:

1. ``create`` (a write-ahead step that changes AWS): first ``prepare``: the ARN's account is
   the configuration's and the user's path is in its scope; a key that an earlier attempt of
   this record made but whose answer was lost is deleted (see below); and room is made, for
   a user holds at most two keys: a key the vault replaced earlier and has retired may be
   deleted, a key the vault does not hold never is (the rotation fails and names it). Then
   the engine records that the step starts, and when; then CreateAccessKey, whose answer the
   engine commits at once as the rotation's pending key (may be live from that moment).
2. ``verify``: sts:GetCallerIdentity signed with the new key names the record's user, retried
   while the new key reaches every AWS endpoint (ROTATION_KEY_VERIFY_SECONDS).
3. the engine makes the new key current (its finish), and ``after_success`` schedules the
   replaced key's retirement: deactivated after the record's first grace period, deleted
   after the second (rotation/retirement.py, on the gateways' tick).

The ambiguous case: CreateAccessKey's answer can be lost after AWS made the key, whose secret
is then unknowable. Such a key is recognised on the next attempt (or by the retirement pass,
when the rotation ended failed) as a key of the user that the vault does not hold and that AWS
created while a request of that attempt could reach AWS (from Rotation.step_started_at until
the rotation's unanswered window ends, widened by ROTATION_KEY_CLOCK_SKEW_SECONDS for the
difference between AWS's clock and ours); it is deleted, and audited. Outside that window a key
the vault does not hold is never touched, and neither is one without a creation date.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone

from rotation import aws
from rotation.methods.base import Apply, Made, Refused, RotationMethod, Transient, WriteAhead
from rotation.methods.iam_user import check_path_scope, classified
from vault.audit import audit_record
from vault.models import PamUser

if TYPE_CHECKING:
    from rotation.models import Rotation

logger = logging.getLogger(__name__)

CREATE = "create"
MAX_KEYS = 2
_sleep = time.sleep  # tests replace it


# --- what the vault holds ------------------------------------------------------------------


def held_key_ids(record: PamUser) -> set[str]:
    """Every key id of the record that the vault holds or is retiring: the current key, the
    keys replaced and not yet deleted, and pending keys of rotations that may be live."""
    from rotation.models import KeyRetirement, Rotation

    held = {record.access_key_id} - {""}
    retiring = KeyRetirement.objects.filter(pam_user=record, deleted_at__isnull=True)
    held |= set(retiring.values_list("access_key_id", flat=True))
    pending = Rotation.objects.filter(pam_user=record).exclude(pending_password_enc="")
    held |= set(
        pending.exclude(pending_access_key_id="").values_list("pending_access_key_id", flat=True)
    )
    return held


def _skew() -> timedelta:
    return timedelta(seconds=settings.ROTATION_KEY_CLOCK_SKEW_SECONDS)


def _ended_at(rotation: Rotation) -> datetime:
    """When no request of an ended rotation can reach AWS any more."""
    ends = [t for t in (rotation.finished_at, rotation.unanswered_until) if t is not None]
    return max(ends, default=timezone.now())


def _orphan_windows(rotation: Rotation) -> list[tuple[datetime, datetime]]:
    """When a key made by a request whose answer was lost may have been created, by AWS's
    clock: from an attempt's recorded start until no request of it can arrive, each widened by
    ROTATION_KEY_CLOCK_SKEW_SECONDS. This rotation's earlier attempt (it is running, and no
    other rotation of the record can be), and ended rotations whose check is still owed."""
    from rotation.models import Rotation

    skew, windows = _skew(), []
    if rotation.step == CREATE and rotation.step_started_at and rotation.status == Rotation.RUNNING:
        windows.append((rotation.step_started_at - skew, timezone.now() + skew))
    owed = Rotation.objects.filter(
        pam_user_id=rotation.pam_user_id,
        status__in=Rotation.ENDED,
        step=CREATE,
        step_started_at__isnull=False,
    ).exclude(pk=rotation.pk)
    if rotation.status in Rotation.ENDED and rotation.step == CREATE and rotation.step_started_at:
        owed = [rotation, *owed]
    for ended in owed:
        windows.append((ended.step_started_at - skew, _ended_at(ended) + skew))
    return windows


def _delete_orphans(rotation: Rotation, keys: list[aws.AccessKey]) -> list[aws.AccessKey]:
    """Delete the keys that an attempt whose answer was lost made (a key the vault does not
    hold, created inside one of the windows); the others are returned. A key without a
    creation date is kept: nothing proves it was ours."""
    windows = _orphan_windows(rotation)
    if not windows:
        return keys
    record, config = rotation.pam_user, rotation.configuration
    held = held_key_ids(record)
    kept = []
    for key in keys:
        made_then = key.created is not None and any(a <= key.created <= b for a, b in windows)
        if key.key_id in held or not made_then:
            kept.append(key)
            continue
        aws.delete_access_key(config, login=record.login, key_id=key.key_id)
        audit_record(
            "rotation.key.orphan_deleted",
            actor_kind="system",
            obj=record,
            details={
                "rotation": rotation.uid,
                "access_key_id": key.key_id,
                "why": "made by an attempt whose answer was lost; its secret was never known",
            },
        )
        logger.info("rotation %s deleted orphan key %s", rotation.uid, key.key_id)
    return kept


def orphans_clean(rotation: Rotation) -> bool:
    """For a rotation that ended after an attempt whose answer may have been lost: once no
    request of it can reach AWS (and the clocks' skew has passed), and while no other
    rotation of the record runs, delete the key such a request made, then forget the attempt
    (Rotation.step). False when it is not time yet; raises aws.AwsError when AWS cannot be
    asked now. The caller checked the gateway's authority and the target scope."""
    from rotation.models import Rotation

    if rotation.status not in Rotation.ENDED or timezone.now() <= _ended_at(rotation) + _skew():
        return False
    others = Rotation.objects.filter(pam_user_id=rotation.pam_user_id, status__in=Rotation.ACTIVE)
    if others.exists():
        return False  # its own prepare checks this window before it creates anything
    record = rotation.pam_user
    _delete_orphans(rotation, aws.list_access_keys(rotation.configuration, login=record.login))
    Rotation.objects.filter(pk=rotation.pk, step=CREATE).update(step="")
    return True


# --- making room ---------------------------------------------------------------------------


def _make_room(rotation: Rotation, keys: list[aws.AccessKey]) -> None:
    """Delete one key the vault replaced (retired, or due to be) or a failed rotation's
    never-current pending key; refuse, naming them, when every key is one to keep."""
    from rotation.models import KeyRetirement, Rotation

    record, config = rotation.pam_user, rotation.configuration
    now = timezone.now()
    # Read now, not at the claim: a person may have edited the key, or adopted a pending one.
    current = PamUser.objects.filter(pk=record.pk).values_list("access_key_id", flat=True)
    current_key = current.first() or ""
    on_aws = {key.key_id: key for key in keys if key.key_id != current_key}
    retiring = {
        r.access_key_id: r
        for r in KeyRetirement.objects.filter(
            pam_user=record, deleted_at__isnull=True, access_key_id__in=list(on_aws)
        )
    }
    abandoned = {
        r.pending_access_key_id: r
        for r in Rotation.objects.filter(
            pam_user=record,
            status=Rotation.FAILED,
            resolved_at__isnull=True,
            pending_access_key_id__in=list(on_aws),
        ).exclude(pending_password_enc="")
    }
    for key_id, retirement in retiring.items():
        if on_aws[key_id].status == "Inactive" or retirement.deactivate_at <= now:
            _delete_retired(rotation, retirement, active=on_aws[key_id].status == "Active")
            return
    for key_id, failed in abandoned.items():
        # Conditional: a person resolving it at this moment wins, and nothing is deleted.
        taken = Rotation.objects.filter(pk=failed.pk, resolved_at__isnull=True)
        if taken.update(resolved_at=now, pending_password_enc=""):
            aws.delete_access_key(config, login=record.login, key_id=key_id)
            _audit_room(rotation, key_id, f"the pending key of failed rotation {failed.uid}")
            return
    raise Refused(_no_room_message(record, keys, retiring, current_key))


def _delete_retired(rotation: Rotation, retirement, *, active: bool) -> None:
    """The replaced key, through its retirement's steps: deactivated first if it is still
    active (its grace period is over), then deleted, each written as AWS confirms it."""
    record, key_id = rotation.pam_user, retirement.access_key_id
    login = retirement.login or record.login
    if active:
        aws.set_access_key_status(rotation.configuration, login=login, key_id=key_id, active=False)
        retirement.deactivated_at = timezone.now()
        retirement.save(update_fields=["deactivated_at"])
    aws.delete_access_key(rotation.configuration, login=login, key_id=key_id)
    retirement.deleted_at = timezone.now()
    retirement.save(update_fields=["deleted_at"])
    _audit_room(rotation, key_id, "the key this record's rotation replaced")


def _audit_room(rotation: Rotation, key_id: str, what: str) -> None:
    audit_record(
        "rotation.key.deleted",
        actor_kind="system",
        obj=rotation.pam_user,
        details={"rotation": rotation.uid, "access_key_id": key_id, "why": f"room: {what}"},
    )


def _no_room_message(
    record: PamUser, keys: list[aws.AccessKey], retiring: dict, current_key: str
) -> str:
    reasons = []
    for key in keys:
        if key.key_id == current_key:
            reasons.append(f"{key.key_id} is the record's current key")
        elif key.key_id in retiring:
            until = timezone.localtime(retiring[key.key_id].deactivate_at)
            reasons.append(
                f"{key.key_id} is the key replaced last, still active for the applications "
                f"that use it until {until:%Y-%m-%d %H:%M %Z}"
            )
        else:
            reasons.append(f"{key.key_id} is not held by the vault, which never deletes it")
    return (
        f"The IAM user “{record.login}” already has two access keys and neither may be deleted: "
        + "; ".join(reasons)
        + ". Delete or deactivate the key you no longer need in AWS (or wait for the grace "
        "period to end), then rotate again."
    )


# --- the steps -----------------------------------------------------------------------------


@classified
def prepare(rotation: Rotation) -> None:
    record, config = rotation.pam_user, rotation.configuration
    aws.check_account(config, arn=record.distinguished_name, login=record.login)
    check_path_scope(config, record)
    keys = _delete_orphans(rotation, aws.list_access_keys(config, login=record.login))
    if len(keys) >= MAX_KEYS:
        _make_room(rotation, keys)


@classified
def create_key(rotation: Rotation) -> Made:
    key_id, secret = aws.create_access_key(rotation.configuration, login=rotation.pam_user.login)
    return Made(secret=secret, key_id=key_id)


@classified
def verify_key(rotation: Rotation, secret: str) -> None:
    record, key_id = rotation.pam_user, rotation.pending_access_key_id
    budget = settings.ROTATION_KEY_VERIFY_SECONDS
    deadline = time.monotonic() + budget
    delay = 0.5
    while True:
        try:
            arn = aws.key_identity(rotation.configuration, key_id=key_id, secret=secret)
            break
        except aws.AwsRefused as exc:
            if exc.code not in aws.BAD_CREDENTIAL_CODES:
                raise
            if time.monotonic() + delay > deadline:
                raise Transient(
                    f"AWS did not accept the new access key {key_id} within {budget:g} s "
                    "(a new key takes a few seconds to reach every AWS endpoint); the vault "
                    "keeps it and checks it again."
                ) from None
            _sleep(delay)
            delay = min(delay * 2, 4.0)
    try:
        owner = aws.parse_arn(arn)[2]
    except ValueError:
        owner = ""
    if owner != record.login:
        raise Refused(
            f"The new access key {key_id} authenticates as {arn or 'nobody'}, not as the IAM "
            f"user “{record.login}”: check the record's login and ARN."
        )


def schedule_retirements(rotations: list[Rotation], now: datetime) -> None:
    """The keys these rotations replaced: active for the first grace period, then deactivated,
    then deleted after the second (rotation/retirement.py does each when due)."""
    from rotation.models import KeyRetirement

    # The records' keys as they are now, in the finishing transaction: a person may have
    # edited one since the claim, and that key is the one replaced.
    current = dict(
        PamUser.objects.filter(pk__in=[r.pam_user_id for r in rotations]).values_list(
            "pk", "access_key_id"
        )
    )
    rows = []
    for rotation in rotations:
        record, rs = rotation.pam_user, rotation.pam_user.rotation_settings
        old = current.get(record.pk, "")
        if not old or old == rotation.pending_access_key_id:
            continue
        deactivate_at = now + timedelta(hours=rs.key_deactivate_after_hours)
        rows.append(
            KeyRetirement(
                pam_user=record,
                configuration=rotation.configuration,
                rotation=rotation,
                access_key_id=old,
                login=record.login,
                deactivate_at=deactivate_at,
                delete_at=deactivate_at + timedelta(hours=rs.key_delete_after_hours),
            )
        )
    KeyRetirement.objects.bulk_create(rows, ignore_conflicts=True)


IAM_ACCESS_KEY = RotationMethod(
    name="iam_access_key",
    label="IAM User access key",
    kind="access_key",
    steps=(
        WriteAhead(CREATE, create_key, changes_target=True, prepare=prepare),
        Apply("verify", verify_key),
    ),
    after_success=schedule_retirements,
)
