"""The rotation state machine: request, claim, write ahead, change, finish, fail, recover.

The one promise: the vault always holds every password that may be live in AWS. So the new
password is committed (encrypted, as the rotation's pending secret) before AWS is called, and it
is thrown away only when AWS's answer proves the old password is still in place.

    queued --claim--> running --AWS ok--> succeeded
                         |--refused (proof nothing changed)--> failed (pending discarded,
                         |                                     unless an earlier attempt was
                         |                                     ambiguous: then kept, "may be live")
                         |--transient--> retried in the task with the same pending password,
                         |               then failed with pending kept if any attempt may have applied
                         '--worker killed--> lease runs out --recover--> queued (same pending)
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.http import HttpRequest
from django.utils import timezone

from rotation import aws, dispatch
from rotation.models import Rotation, RotationSettings
from rotation.passwords import Complexity, ComplexityError, generate_password
from rotation.schedules import ScheduleError, next_run
from vault.audit import audit_record
from vault.models import ApplicationFolder, Gateway, PamConfiguration, PamUser
from vault.services import pam_user_set_password

logger = logging.getLogger(__name__)

TRIGGER_AUDIT = {"on_demand": "on_demand", "cli": "on_demand", "scheduled": "scheduled"}


class RotationRequestError(Exception):
    """A rotation could not be requested; the message tells the person why."""


class RotationInProgress(RotationRequestError):
    def __init__(self, rotation: Rotation):
        self.rotation = rotation
        super().__init__("A rotation of this record is already in progress.")


# --- request -----------------------------------------------------------------------------


def _lease_deadline(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) + timedelta(seconds=settings.ROTATION_LEASE_SECONDS)


def sharing_problem(config: PamConfiguration, record: PamUser) -> str | None:
    """Why `config` cannot rotate `record`, or None: its gateway's application must have the
    record's folder shared to it, editable."""
    gateway, folder = config.gateway, record.folder
    app = gateway.application
    if app is None:
        return (
            f'The gateway "{gateway.name}" of this configuration belongs to no application: '
            f'tie it to an application and share the folder "{folder.name}" to that application.'
        )
    share = ApplicationFolder.objects.filter(application=app, folder=folder).first()
    if share is None:
        return (
            f'The folder "{folder.name}" is not shared to the application "{app.name}" that owns '
            f'the gateway "{gateway.name}": share the folder to that application first.'
        )
    if not share.editable:
        return (
            f'The folder "{folder.name}" is shared read-only to the application "{app.name}": '
            "share it editable so rotations can save new passwords."
        )
    return None


def rotation_check_requestable(*, record: PamUser) -> RotationSettings:
    """The settings a rotation of `record` would use, or RotationRequestError saying why not."""
    rs = (
        RotationSettings.objects.filter(pam_user=record)
        .select_related("configuration__gateway")
        .first()
    )
    if rs is None:
        raise RotationRequestError(
            "Password rotation is not set up for this record: open Password Rotation Settings first."
        )
    if not rs.enabled:
        raise RotationRequestError(
            "Password rotation is disabled for this record: enable it in Password Rotation Settings."
        )
    problem = sharing_problem(rs.configuration, record)
    if problem:
        raise RotationRequestError(problem)
    return rs


def rotation_request(
    *,
    record: PamUser,
    trigger: str,
    requested_by=None,
    request: HttpRequest | None = None,
) -> Rotation:
    """Queue one rotation of `record`; the worker is told once the transaction commits."""
    rs = rotation_check_requestable(record=record)
    try:
        with transaction.atomic():
            rotation = Rotation.objects.create(
                pam_user=record,
                configuration=rs.configuration,
                gateway_name=rs.configuration.gateway.name,
                trigger=trigger,
                requested_by=requested_by if getattr(requested_by, "pk", None) else None,
                lease_expires_at=_lease_deadline(),
            )
            transaction.on_commit(lambda: dispatch.enqueue_rotation(rotation))
    except IntegrityError:
        active = Rotation.objects.filter(pam_user=record, status__in=Rotation.ACTIVE).first()
        if active is None:  # it finished between our insert and this read
            raise RotationRequestError("Please try again: a rotation just finished.") from None
        raise RotationInProgress(active) from None
    return rotation


def rotation_request_many(
    *, records: list[PamUser], trigger: str, requested_by=None
) -> tuple[dict[str, Rotation], dict[str, str]]:
    """Queue one rotation for each record that has none active, in one transaction.

    Returns ({record uid: its active rotation (new, or the one already in progress)},
    {record uid: why it cannot be rotated}). The work goes to each gateway as a few drain
    tasks rather than one task per record: a task costs the queue far more than a rotation
    costs the database, so a folder of hundreds rotates at the speed of AWS.
    """
    all_settings = {
        rs.pam_user_id: rs
        for rs in RotationSettings.objects.filter(pam_user__in=records).select_related(
            "configuration__gateway__application"
        )
    }
    shares = {
        (share.application_id, share.folder_id): share
        for share in ApplicationFolder.objects.filter(folder__in={r.folder_id for r in records})
    }
    problems: dict[str, str] = {}
    wanted: list[tuple[PamUser, RotationSettings]] = []
    for record in records:
        rs = all_settings.get(record.pk)
        try:
            if rs is None or not rs.enabled:
                rotation_check_requestable(record=record)  # raises with the message
            gateway = rs.configuration.gateway
            share = shares.get((gateway.application_id, record.folder_id))
            if gateway.application_id is None or share is None or not share.editable:
                problem = sharing_problem(rs.configuration, record)
                if problem:
                    raise RotationRequestError(problem)
        except RotationRequestError as exc:
            problems[record.uid] = str(exc)
            continue
        wanted.append((record, rs))
    by_record = {record.pk: record for record, _ in wanted}
    actor = requested_by if getattr(requested_by, "pk", None) else None
    now = timezone.now()
    with transaction.atomic():
        busy = set(
            Rotation.objects.filter(
                pam_user_id__in=list(by_record), status__in=Rotation.ACTIVE
            ).values_list("pam_user_id", flat=True)
        )
        new = [
            Rotation(
                pam_user_id=record.pk,
                configuration_id=rs.configuration_id,
                gateway_name=rs.configuration.gateway.name,
                trigger=trigger,
                requested_by=actor,
                lease_expires_at=_lease_deadline(now),
                created_at=now,
            )
            for record, rs in wanted
            if record.pk not in busy
        ]
        # A request racing ours may win a record; the constraint keeps it to one rotation.
        Rotation.objects.bulk_create(new, ignore_conflicts=True)
        per_gateway: dict[str, list[int]] = defaultdict(list)
        active: dict[str, Rotation] = {}
        for rotation in Rotation.objects.filter(
            pam_user_id__in=list(by_record), status__in=Rotation.ACTIVE
        ):
            active[by_record[rotation.pam_user_id].uid] = rotation
            if rotation.pam_user_id not in busy:
                per_gateway[rotation.gateway_name].append(rotation.pk)
        transaction.on_commit(lambda: dispatch.enqueue_requested(per_gateway))
    for record, _ in wanted:
        if record.uid not in active:  # finished between our insert and the read
            problems[record.uid] = "Please try again: a rotation just finished."
    return active, problems


# --- run ---------------------------------------------------------------------------------


class LeaseLost(Exception):
    """Another worker (or the recovery pass) owns this rotation now: stop touching it."""


RUN_RELATED = ("pam_user__rotation_settings", "pam_user__folder", "configuration__gateway")


def rotation_claim(*, rotation_id: int) -> Rotation | None:
    """queued -> running, for exactly one worker. None when someone else has it."""
    now = timezone.now()
    claimed = Rotation.objects.filter(pk=rotation_id, status=Rotation.QUEUED).update(
        status=Rotation.RUNNING,
        started_at=now,
        lease_expires_at=_lease_deadline(now),
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    return Rotation.objects.select_related(*RUN_RELATED).get(pk=rotation_id)


def _claim_with_pending(rotation_id: int) -> Rotation | None:
    """rotation_claim and rotation_write_ahead in one UPDATE: read the queued rotation, make
    its pending password (unless it has one), then claim it and commit the password together.

    Same guarantees, one write instead of two. Conditional on the attempt count read, so a
    claim made by anyone since the read wins and this one does nothing. When the password
    cannot be made now (the account's policy unreachable, impossible complexity), the claim
    goes ahead without it and the run's write-ahead step reports the problem.
    """
    rotation = (
        Rotation.objects.select_related(*RUN_RELATED)
        .filter(pk=rotation_id, status=Rotation.QUEUED)
        .first()
    )
    if rotation is None:
        return None
    now = timezone.now()
    claim = Rotation.objects.filter(
        pk=rotation.pk, status=Rotation.QUEUED, attempts=rotation.attempts
    )
    changes = {
        "status": Rotation.RUNNING,
        "started_at": now,
        "lease_expires_at": _lease_deadline(now),
        "attempts": F("attempts") + 1,
    }
    if not rotation.has_secret("pending_password"):
        try:
            policy = aws.account_password_policy(rotation.configuration)
            complexity = settings_complexity(rotation.pam_user.rotation_settings)
            rotation.set_secret("pending_password", generate_password(complexity, policy))
        except (aws.AwsError, ComplexityError):
            pass
        else:
            claim = claim.filter(pending_password_enc="")
            changes["pending_password_enc"] = rotation.pending_password_enc
    if not claim.update(**changes):
        return None
    rotation.status, rotation.started_at = Rotation.RUNNING, now
    rotation.lease_expires_at = changes["lease_expires_at"]
    rotation.attempts += 1
    return rotation


def settings_complexity(rs: RotationSettings) -> Complexity:
    return Complexity(
        length=rs.length,
        min_upper=rs.min_upper,
        min_lower=rs.min_lower,
        min_digits=rs.min_digits,
        min_symbols=rs.min_symbols,
        symbols=rs.symbols,
    )


def _mine(rotation: Rotation):
    """The rotation's row, as long as this worker's claim on it is still the current one."""
    return Rotation.objects.filter(
        pk=rotation.pk, status=Rotation.RUNNING, attempts=rotation.attempts
    )


def rotation_write_ahead(*, rotation: Rotation) -> str:
    """The pending password, generated and committed before AWS is called (once per rotation).

    Also renews the lease, and raises LeaseLost when the claim is no longer ours: a worker
    that outlived its lease must not call AWS, nor replace a pending password that another
    worker may already have sent.
    """
    if rotation.has_secret("pending_password"):
        if not _mine(rotation).update(lease_expires_at=_lease_deadline()):
            raise LeaseLost
        return rotation.get_secret("pending_password")
    policy = aws.account_password_policy(rotation.configuration)
    password = generate_password(settings_complexity(rotation.pam_user.rotation_settings), policy)
    rotation.set_secret("pending_password", password)
    # Autocommit: this row is durable before the next line talks to AWS.
    unwritten = _mine(rotation).filter(pending_password_enc="")
    if not unwritten.update(
        pending_password_enc=rotation.pending_password_enc, lease_expires_at=_lease_deadline()
    ):
        raise LeaseLost
    return password


def rotation_run(*, rotation_id: int) -> str:
    """Run one rotation to the end. Returns the final status (or "skipped"), never a secret."""
    rotation = _claim_with_pending(rotation_id)
    if rotation is None:
        return "skipped"
    return _run_claimed(rotation)


def _run_claimed(rotation: Rotation) -> str:
    record, config = rotation.pam_user, rotation.configuration
    while True:
        try:
            if rotation.has_secret("pending_password"):
                # Committed, and the claim (or _next_attempt) renewed the lease just now.
                password = rotation.get_secret("pending_password")
            else:
                try:
                    password = rotation_write_ahead(rotation=rotation)
                except LeaseLost:
                    return "skipped"
            aws.check_account(config, arn=record.distinguished_name, login=record.login)
            aws.set_console_password(config, login=record.login, password=password)
        except (ComplexityError, ScheduleError) as exc:
            return rotation_fail(rotation=rotation, error=str(exc))
        except aws.AwsRefused as exc:
            return rotation_fail(rotation=rotation, error=exc.message)
        except aws.AwsTransient as exc:
            if exc.may_have_applied:
                _mark_may_be_live(rotation)
            if rotation.attempts >= settings.ROTATION_MAX_ATTEMPTS:
                return rotation_fail(
                    rotation=rotation,
                    error=f"{exc.message} (gave up after {rotation.attempts} attempts)",
                )
            if not _next_attempt(rotation, exc.message):
                return "skipped"
            continue
        return rotation_finish(rotation=rotation, password=password)


def _mark_may_be_live(rotation: Rotation) -> None:
    rotation.pending_may_be_live = True
    Rotation.objects.filter(pk=rotation.pk).update(pending_may_be_live=True)


def _next_attempt(rotation: Rotation, reason: str) -> bool:
    """Back off, then take the next attempt under a fresh lease (False if we lost the lease)."""
    time.sleep(min(2 ** (rotation.attempts - 1), 8) * settings.ROTATION_RETRY_BACKOFF_SCALE)
    updated = _mine(rotation).update(
        attempts=F("attempts") + 1,
        lease_expires_at=_lease_deadline(),
        error=f"Retrying: {reason}",
    )
    if updated:
        rotation.attempts += 1
    return bool(updated)


def _next_run_for(rs: RotationSettings, now: datetime) -> datetime | None:
    try:
        return next_run(rs.effective_schedule, now)
    except ScheduleError:
        logger.warning("rotation settings %s have an invalid schedule", rs.pk)
        return None


def rotation_finish(*, rotation: Rotation, password: str) -> str:
    """AWS holds the pending password: make it the record's password, in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        mine = _mine(rotation).update(
            status=Rotation.SUCCEEDED,
            finished_at=now,
            pending_password_enc="",
            pending_may_be_live=False,
            error="",
        )
        if not mine:  # a recovered copy of this rotation owns it now; it holds the same password
            return "skipped"
        # The record's row is written with one UPDATE of the password columns (a row lock
        # like select_for_update's, without reading the row again); the ciphertext depends
        # only on the record's uid, which never changes.
        record = rotation.pam_user
        pam_user_set_password(
            record=record,
            password=password,
            set_by=rotation.requested_by,
            source="rotation",
            reason=f"{rotation.get_trigger_display()} rotation {rotation.uid}",
        )
        record.updated_at = now
        PamUser.objects.filter(pk=record.pk).update(
            password_enc=record.password_enc, updated_at=now
        )
        # Older possibly-live passwords are no longer live: AWS now holds this one.
        Rotation.objects.filter(
            pam_user_id=record.pk,
            status=Rotation.FAILED,
            pending_may_be_live=True,
            resolved_at__isnull=True,
        ).update(resolved_at=now, pending_password_enc="")
        _settings_after_success(rotation, now)
        audit_record(
            f"rotation.{TRIGGER_AUDIT[rotation.trigger]}.ok",
            actor=rotation.requested_by,
            obj=record,
            details={"rotation": rotation.uid, "attempts": rotation.attempts},
        )
    return Rotation.SUCCEEDED


def _settings_after_success(rotation: Rotation, now: datetime) -> None:
    """Last rotated, last status and the next run, from the settings read at the claim.

    The next run is written only if the settings are unchanged since then (an edit saves the
    whole row and so moves ``updated_at``); an edit computed its own next run from the new
    schedule, and that one stands.
    """
    rs = rotation.pam_user.rotation_settings
    if rs.configuration_id == rotation.configuration_id:
        rs.configuration = rotation.configuration  # already loaded: no query
    next_run_at = _next_run_for(rs, now)
    RotationSettings.objects.filter(pk=rs.pk).update(
        last_rotated_at=now,
        last_status=Rotation.SUCCEEDED,
        next_run_at=Case(
            When(updated_at=rs.updated_at, then=Value(next_run_at)),
            default=F("next_run_at"),
            output_field=DateTimeField(),
        ),
    )


def rotation_fail(*, rotation: Rotation, error: str) -> str:
    """End the rotation as failed. The pending password survives if it may be live in AWS."""
    now = timezone.now()
    keep = rotation.pending_may_be_live
    with transaction.atomic():
        changes = {"status": Rotation.FAILED, "finished_at": now, "error": error}
        if not keep:
            changes["pending_password_enc"] = ""
        if not _mine(rotation).update(**changes):
            return "skipped"
        _after_failure(rotation, error=error, keep=keep, now=now)
    logger.info("rotation %s failed: %s", rotation.uid, error)
    return Rotation.FAILED


def _after_failure(rotation: Rotation, *, error: str, keep: bool, now: datetime) -> None:
    """The settings' last status and next run, and the audit event, of a failed rotation."""
    rs = (
        RotationSettings.objects.select_related("configuration")
        .filter(pam_user_id=rotation.pam_user_id)
        .first()
    )
    if rs is not None:
        rs.last_status = Rotation.FAILED
        rs.next_run_at = _next_run_for(rs, now)
        rs.save(update_fields=["last_status", "next_run_at"])
    audit_record(
        f"rotation.{TRIGGER_AUDIT[rotation.trigger]}.fail",
        actor=rotation.requested_by,
        obj=rotation.pam_user,
        details={"rotation": rotation.uid, "error": error, "may_be_live": keep},
    )


# --- a person resolves a possibly-live password ---------------------------------------------


def rotation_resolve(
    *, rotation: Rotation, use_pending: bool, actor=None, request: HttpRequest | None = None
) -> None:
    """Settle a failed rotation's possibly-live password: adopt it, or keep the current one."""
    with transaction.atomic():
        locked = Rotation.objects.select_for_update().get(pk=rotation.pk)
        if not locked.holds_possibly_live_password:
            raise RotationRequestError("This rotation has nothing left to resolve.")
        record = PamUser.objects.select_for_update().get(pk=locked.pam_user_id)
        if use_pending:
            pam_user_set_password(
                record=record,
                password=locked.get_secret("pending_password"),
                set_by=actor,
                source="resolution",
                reason=f"adopted the possibly-live password of rotation {locked.uid}",
            )
            record.save(update_fields=["password_enc", "updated_at"])
        locked.resolved_at, locked.resolved_by = timezone.now(), actor
        locked.pending_password_enc = ""
        locked.save(update_fields=["resolved_at", "resolved_by", "pending_password_enc"])
        audit_record(
            "rotation.resolved",
            actor=actor,
            obj=record,
            request=request,
            details={"rotation": locked.uid, "kept": "pending" if use_pending else "current"},
        )


def possibly_live_rotations(record: PamUser):
    return Rotation.objects.filter(
        pam_user=record,
        status=Rotation.FAILED,
        pending_may_be_live=True,
        resolved_at__isnull=True,
    ).exclude(pending_password_enc="")


# --- recovery, scheduler and gateways ----------------------------------------------------------


def rotation_recover(*, gateway_name: str | None = None, now: datetime | None = None) -> int:
    """Re-queue rotations whose lease ran out (worker killed, task lost). Returns how many."""
    now = now or timezone.now()
    expired = Rotation.objects.filter(status__in=Rotation.ACTIVE, lease_expires_at__lt=now)
    if gateway_name is not None:
        expired = expired.filter(gateway_name=gateway_name)
    recovered = 0
    for rotation in expired.select_related("pam_user__folder"):
        # Conditional on the lease we saw: a worker that renewed it in the meantime is alive.
        taken = Rotation.objects.filter(
            pk=rotation.pk, status=rotation.status, lease_expires_at=rotation.lease_expires_at
        )
        if (
            rotation.status == Rotation.RUNNING
            and rotation.attempts >= settings.ROTATION_MAX_ATTEMPTS
        ):
            _recover_exhausted(rotation, taken, now)
            continue
        moved = taken.update(
            status=Rotation.QUEUED,
            lease_expires_at=_lease_deadline(now),
            pending_may_be_live=_MAY_BE_LIVE_NOW,
        )
        if moved:
            recovered += 1
            transaction.on_commit(lambda r=rotation: dispatch.enqueue_rotation(r))
    return recovered


# A killed worker may have called AWS once its pending password was committed. Decided by the
# database in the same UPDATE that takes the rotation away from the worker, never from a copy
# read earlier: the worker may have committed its pending password since that read.
_MAY_BE_LIVE_NOW = Case(
    When(Q(status=Rotation.RUNNING) & ~Q(pending_password_enc=""), then=Value(True)),
    default=F("pending_may_be_live"),
)


def _recover_exhausted(rotation: Rotation, taken, now: datetime) -> None:
    error = f"The gateway stopped during the rotation {rotation.attempts} times; giving up."
    with transaction.atomic():
        # Fail it without discarding anything: a pending password that exists may be live.
        if not taken.update(
            status=Rotation.FAILED,
            finished_at=now,
            error=error,
            pending_may_be_live=_MAY_BE_LIVE_NOW,
        ):
            return
        keep = Rotation.objects.filter(pk=rotation.pk, pending_may_be_live=True).exists()
        _after_failure(rotation, error=error, keep=keep, now=now)
    logger.info("rotation %s failed: %s", rotation.uid, error)


def _schedule_key(schedule: dict) -> str:
    return repr(sorted(schedule.items()))


def rotation_schedule_due(*, now: datetime | None = None, batch_size: int = 1000) -> int:
    """Request a rotation for every enabled record whose next run is due. Returns how many.

    One pass costs a fixed number of queries per batch. A record due many times over (the
    system was down) is rotated once, and its next run is computed from now.
    """
    now = now or timezone.now()
    requested = 0
    while True:
        count, more = _schedule_batch(now, batch_size)
        requested += count
        if not more:
            return requested


def _schedule_batch(now: datetime, batch_size: int) -> tuple[int, bool]:
    with transaction.atomic():
        due = (
            RotationSettings.objects.filter(enabled=True, next_run_at__lte=now)
            .select_related("configuration__gateway")
            .order_by("next_run_at")
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        batch = list(due[:batch_size])
        if not batch:
            return 0, False
        busy = set(
            Rotation.objects.filter(
                pam_user_id__in=[rs.pam_user_id for rs in batch], status__in=Rotation.ACTIVE
            ).values_list("pam_user_id", flat=True)
        )
        lease = _lease_deadline(now)
        new = [
            Rotation(
                pam_user_id=rs.pam_user_id,
                configuration_id=rs.configuration_id,
                gateway_name=rs.configuration.gateway.name,
                trigger="scheduled",
                lease_expires_at=lease,
                created_at=now,
            )
            for rs in batch
            if rs.pam_user_id not in busy
        ]
        Rotation.objects.bulk_create(new, ignore_conflicts=True)
        cache: dict[str, datetime | None] = {}
        for rs in batch:
            key = _schedule_key(rs.effective_schedule)
            if key not in cache:
                cache[key] = _next_run_for(rs, now)
            rs.next_run_at = cache[key]
        RotationSettings.objects.bulk_update(batch, ["next_run_at"], batch_size=batch_size)
        per_gateway: dict[str, int] = {}
        for rotation in new:
            per_gateway[rotation.gateway_name] = per_gateway.get(rotation.gateway_name, 0) + 1
        transaction.on_commit(lambda: dispatch.enqueue_drains(per_gateway))
    return len(new), len(batch) == batch_size


def rotation_drain(*, gateway_name: str, budget_seconds: float = 60.0) -> int:
    """Run queued rotations of one gateway until none are left or the time budget is spent."""
    started, ran = time.monotonic(), 0
    while time.monotonic() - started < budget_seconds:
        # A random one of the oldest few: drains running side by side rarely pick the same
        # rotation, so few claims are wasted (a claim is a write, and writes queue up).
        candidates = list(
            Rotation.objects.filter(gateway_name=gateway_name, status=Rotation.QUEUED)
            .order_by("created_at", "id")
            .values_list("pk", flat=True)[:DRAIN_LOOKAHEAD]
        )
        if not candidates:
            return ran
        if rotation_run(rotation_id=random.choice(candidates)) != "skipped":
            ran += 1
    dispatch.enqueue_drains({gateway_name: 1})  # more work left: hand it to the next task
    return ran


DRAIN_LOOKAHEAD = 20


def drain_task_count(queued: int, workers: int) -> int:
    return max(1, min(workers, math.ceil(queued / 10)))


def gateway_heartbeat(*, gateway_name: str, now: datetime | None = None) -> Gateway | None:
    now = now or timezone.now()
    gateway = Gateway.objects.filter(name=gateway_name).first()
    if gateway is None:
        return None
    Gateway.objects.filter(pk=gateway.pk).update(last_seen_at=now, reported_online=True)
    if not gateway.reported_online:
        audit_record("gateway.online", actor_kind="system", obj=gateway)
    return gateway


def gateways_report_offline(*, now: datetime | None = None) -> int:
    """Write one audit event for each gateway that stopped sending heartbeats."""
    now = now or timezone.now()
    limit = now - timedelta(seconds=settings.GATEWAY_OFFLINE_SECONDS)
    stale = list(Gateway.objects.filter(reported_online=True, last_seen_at__lt=limit))
    for gateway in stale:
        if Gateway.objects.filter(pk=gateway.pk, reported_online=True).update(
            reported_online=False
        ):
            audit_record(
                "gateway.offline",
                actor_kind="system",
                obj=gateway,
                details={"last_seen_at": gateway.last_seen_at.isoformat()},
            )
    return len(stale)


def gateway_tick(*, gateway_name: str) -> dict:
    """What a gateway does every minute and at start: heartbeat, recovery, scheduling."""
    dispatch.ensure_gateway_schedule(gateway_name)
    gateway_heartbeat(gateway_name=gateway_name)
    gateways_report_offline()
    recovered = rotation_recover(gateway_name=gateway_name)
    requested = rotation_schedule_due()
    return {"recovered": recovered, "requested": requested}


# --- settings ----------------------------------------------------------------------------------


@transaction.atomic
def rotation_settings_save(
    *,
    record: PamUser,
    configuration,
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
    rs.method = "iam_user"
    rs.configuration = configuration
    rs.schedule = schedule or {"type": "ON_DEMAND"}
    rs.use_configuration_schedule = use_configuration_schedule
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
    rs.enabled = enabled
    rs.next_run_at = next_run(rs.effective_schedule, timezone.now()) if enabled else None
    rs.save()
    if creating:
        action = "rotation_settings.created"
    elif was_enabled and not enabled:
        action = "rotation_settings.disabled"
    else:
        action = "rotation_settings.updated"
    audit_record(
        action,
        actor=actor,
        actor_kind=actor_kind,
        obj=record,
        request=request,
        details={
            "configuration": configuration.uid,
            "schedule": rs.effective_schedule,
            "complexity": rs.complexity_text,
            "enabled": enabled,
        },
    )
    return rs
