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
created after the attempt started (Rotation.step_started_at, less ORPHAN_WINDOW for the
difference between AWS's clock and ours); it is deleted, and audited.
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

if TYPE_CHECKING:
    from rotation.models import Rotation
    from vault.models import PamUser

logger = logging.getLogger(__name__)

CREATE = "create"
# AWS's CreateDate against the gateway's clock: a key made this long before an attempt was
# recorded as starting still counts as made by it.
ORPHAN_WINDOW = timedelta(minutes=2)
MAX_KEYS = 2
ENDED = ("succeeded", "failed")
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


def _attempts_started(rotation: Rotation) -> datetime | None:
    """When the earliest attempt of the record's key creation whose answer may have been lost
    started: this rotation's, or a failed one's whose cleanup is still owed."""
    from rotation.models import Rotation

    owed = Rotation.objects.filter(
        pam_user_id=rotation.pam_user_id,
        status__in=(Rotation.FAILED, Rotation.SUCCEEDED),
        step=CREATE,
        step_started_at__isnull=False,
    ).exclude(pk=rotation.pk)
    times = list(owed.values_list("step_started_at", flat=True))
    if rotation.step == CREATE and rotation.step_started_at:
        times.append(rotation.step_started_at)
    return min(times, default=None)


def _delete_orphans(
    rotation: Rotation, keys: list[aws.AccessKey], since: datetime
) -> list[aws.AccessKey]:
    """Delete the keys that an attempt whose answer was lost made; the others are returned."""
    record, config = rotation.pam_user, rotation.configuration
    held = held_key_ids(record)
    kept = []
    for key in keys:
        made_then = key.created is None or key.created >= since - ORPHAN_WINDOW
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


def orphans_clean(rotation: Rotation) -> None:
    """For a rotation that ended after an attempt whose answer was lost: delete the key that
    attempt left, then forget the attempt (Rotation.step), unless a request of it may still
    reach AWS (Rotation.unanswered_until): then once more after that. Raises aws.AwsError
    when AWS cannot be asked now."""
    from rotation.models import Rotation

    record = rotation.pam_user
    keys = aws.list_access_keys(rotation.configuration, login=record.login)
    since = _attempts_started(rotation) or rotation.step_started_at
    if since is not None:
        _delete_orphans(rotation, keys, since)
    settled = Rotation.objects.filter(pk=rotation.pk, step=CREATE, status__in=ENDED)
    settled.exclude(unanswered_until__gt=timezone.now()).update(step="")


# --- making room ---------------------------------------------------------------------------


def _make_room(rotation: Rotation, keys: list[aws.AccessKey]) -> None:
    """Delete one key the vault replaced (retired, or due to be) or a failed rotation's
    never-current pending key; refuse, naming them, when every key is one to keep."""
    from rotation.models import KeyRetirement, Rotation

    record, config = rotation.pam_user, rotation.configuration
    now = timezone.now()
    on_aws = {key.key_id: key for key in keys}
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
            _delete_retired(rotation, retirement, now)
            return
    for key_id, failed in abandoned.items():
        if key_id != record.access_key_id:
            aws.delete_access_key(config, login=record.login, key_id=key_id)
            Rotation.objects.filter(pk=failed.pk).update(resolved_at=now, pending_password_enc="")
            _audit_room(rotation, key_id, f"the pending key of failed rotation {failed.uid}")
            return
    raise Refused(_no_room_message(record, keys, retiring))


def _delete_retired(rotation: Rotation, retirement, now: datetime) -> None:
    record = rotation.pam_user
    aws.delete_access_key(
        rotation.configuration, login=record.login, key_id=retirement.access_key_id
    )
    retirement.deactivated_at = retirement.deactivated_at or now
    retirement.deleted_at = now
    retirement.save(update_fields=["deactivated_at", "deleted_at"])
    _audit_room(rotation, retirement.access_key_id, "the key this record's rotation replaced")


def _audit_room(rotation: Rotation, key_id: str, what: str) -> None:
    audit_record(
        "rotation.key.deleted",
        actor_kind="system",
        obj=rotation.pam_user,
        details={"rotation": rotation.uid, "access_key_id": key_id, "why": f"room: {what}"},
    )


def _no_room_message(record: PamUser, keys: list[aws.AccessKey], retiring: dict) -> str:
    reasons = []
    for key in keys:
        if key.key_id == record.access_key_id:
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
    keys = aws.list_access_keys(config, login=record.login)
    since = _attempts_started(rotation)
    if since is not None:
        keys = _delete_orphans(rotation, keys, since)
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

    rows = []
    for rotation in rotations:
        record, rs = rotation.pam_user, rotation.pam_user.rotation_settings
        old = record.access_key_id
        if not old or old == rotation.pending_access_key_id:
            continue
        deactivate_at = now + timedelta(hours=rs.key_deactivate_after_hours)
        rows.append(
            KeyRetirement(
                pam_user=record,
                configuration=rotation.configuration,
                rotation=rotation,
                access_key_id=old,
                deactivate_at=deactivate_at,
                delete_at=deactivate_at + timedelta(hours=rs.key_delete_after_hours),
            )
        )
    KeyRetirement.objects.bulk_create(rows, ignore_conflicts=True)


def clean_after_failure(rotation: Rotation) -> None:
    """Best effort at once; the retirement pass tries again while it is owed."""
    if rotation.step != CREATE:
        return
    try:
        orphans_clean(rotation)
    except aws.AwsError as exc:
        logger.info("rotation %s: orphan check owed (%s)", rotation.uid, exc.message)


IAM_ACCESS_KEY = RotationMethod(
    name="iam_access_key",
    label="IAM User access key",
    kind="access_key",
    steps=(
        WriteAhead(CREATE, create_key, changes_target=True, prepare=prepare),
        Apply("verify", verify_key),
    ),
    after_success=schedule_retirements,
    after_failure=clean_after_failure,
)
