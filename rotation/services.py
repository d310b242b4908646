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
import time
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, DateTimeField, Exists, F, OuterRef, Q, Value, When
from django.http import HttpRequest
from django.utils import timezone

from rotation import aws, dispatch
from rotation.models import Rotation, RotationSettings
from rotation.passwords import Complexity, ComplexityError, generate_password
from rotation.schedules import ScheduleError, next_run
from vault import access
from vault.audit import audit_record
from vault.models import Gateway, PamConfiguration, PamUser
from vault.services import pam_user_set_password, pam_users_set_passwords

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
    """Why `config`'s gateway may not rotate `record`, or None (vault/access.py decides)."""
    return access.rotation_problem(config, record, config.gateway)


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
            "configuration__gateway__application", "configuration__folder"
        )
    }
    # Records of a folder share a few configurations: one authority check per pair.
    folder_problems: dict[tuple[int, int], str | None] = {}
    problems: dict[str, str] = {}
    wanted: list[tuple[PamUser, RotationSettings]] = []
    for record in records:
        rs = all_settings.get(record.pk)
        try:
            if rs is None or not rs.enabled:
                rotation_check_requestable(record=record)  # raises with the message
            config = rs.configuration
            key = (config.pk, record.folder_id)
            if key not in folder_problems:
                folder_problems[key] = access.folder_problem(config, record.folder, config.gateway)
            problem = folder_problems[key] or access.scope_name_problem(config, record.login)
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


RUN_RELATED = (
    "pam_user__rotation_settings",
    "pam_user__folder",
    "configuration__folder",
    "configuration__gateway",
)


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


def _claimable():
    """Queued rotations, read with what running them needs."""
    return (
        Rotation.objects.select_related(*RUN_RELATED)
        .filter(status=Rotation.QUEUED)
        .annotate(has_possibly_live=Exists(_possibly_live(OuterRef("pam_user_id"))))
    )


def _prepare_claim(rotation: Rotation):
    """The conditional UPDATE that claims a queued rotation read earlier, and writes its new
    pending password in the same statement (unless it has one): rotation_claim and
    rotation_write_ahead in one write.

    Conditional on the attempt count read, so a claim made by anyone since the read wins and
    this one does nothing. When the password cannot be made now (the account's policy
    unreachable, impossible complexity), the claim goes ahead without it and the run's
    write-ahead step reports the problem.
    """
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
    # The gateway's authority check comes before any AWS call, the policy read included.
    rotation.authority_refusal = _authority_refusal(rotation)
    if not rotation.has_secret("pending_password") and not rotation.authority_refusal:
        try:
            policy = aws.account_password_policy(rotation.configuration)
            complexity = settings_complexity(rotation.pam_user.rotation_settings)
            rotation.set_secret("pending_password", generate_password(complexity, policy))
        except (aws.AwsError, ComplexityError):
            pass
        else:
            claim = claim.filter(pending_password_enc="")
            changes["pending_password_enc"] = rotation.pending_password_enc
    return claim, changes


def _claimed(rotation: Rotation, changes: dict) -> Rotation:
    rotation.status, rotation.started_at = Rotation.RUNNING, changes["started_at"]
    rotation.lease_expires_at = changes["lease_expires_at"]
    rotation.attempts += 1
    return rotation


def _claim_with_pending(rotation_id: int) -> Rotation | None:
    """Claim one queued rotation with its pending password; None when someone else has it."""
    rotation = _claimable().filter(pk=rotation_id).first()
    if rotation is None:
        return None
    claim, changes = _prepare_claim(rotation)
    if not claim.update(**changes):
        return None
    return _claimed(rotation, changes)


def _claim_batch(gateway_name: str) -> list[Rotation] | None:
    """Claim up to DRAIN_BATCH of the gateway's oldest queued rotations, each with its pending
    password committed, in one read and one transaction. None when none is queued; an empty
    list when another drain claimed them first."""
    rows = list(
        _claimable().filter(gateway_name=gateway_name).order_by("created_at", "id")[:DRAIN_BATCH]
    )
    if not rows:
        return None
    prepared = [(rotation, *_prepare_claim(rotation)) for rotation in rows]
    claimed = []
    with transaction.atomic():  # one turn of the write lock for the whole batch
        for rotation, claim, changes in prepared:
            if claim.update(**changes):
                claimed.append(_claimed(rotation, changes))
    return claimed


def _lease_is_fresh(rotation: Rotation) -> bool:
    """Most of the lease is left: the AWS call ends well before anyone may take over."""
    left = (rotation.lease_expires_at - timezone.now()).total_seconds()
    return left > 0.8 * settings.ROTATION_LEASE_SECONDS


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
        lease = _lease_deadline()
        if not _mine(rotation).update(lease_expires_at=lease):
            raise LeaseLost
        rotation.lease_expires_at = lease
        return rotation.get_secret("pending_password")
    policy = aws.account_password_policy(rotation.configuration)
    password = generate_password(settings_complexity(rotation.pam_user.rotation_settings), policy)
    rotation.set_secret("pending_password", password)
    # Autocommit: this row is durable before the next line talks to AWS.
    lease = _lease_deadline()
    unwritten = _mine(rotation).filter(pending_password_enc="")
    if not unwritten.update(
        pending_password_enc=rotation.pending_password_enc, lease_expires_at=lease
    ):
        raise LeaseLost
    rotation.lease_expires_at = lease
    return password


def rotation_run(*, rotation_id: int) -> str:
    """Run one rotation to the end. Returns the final status (or "skipped"), never a secret."""
    rotation = _claim_with_pending(rotation_id)
    if rotation is None:
        return "skipped"
    return _run_claimed(rotation)


def _run_claimed(rotation: Rotation, *, finish=None, before_failure=None) -> str:
    """Attempt the claimed rotation until it ends. ``finish(rotation, password)`` records a
    success (default: rotation_finish); ``before_failure()`` runs before any failure is
    handled (a drain finishes the successes it holds first, while their leases are fresh)."""
    record, config = rotation.pam_user, rotation.configuration
    # Checked at the claim, just now, when the rotation came through _prepare_claim.
    checked = "authority_refusal" in vars(rotation)
    refusal = rotation.authority_refusal if checked else _authority_refusal(rotation)
    if refusal:
        if before_failure:
            before_failure()
        return rotation_fail(rotation=rotation, error=refusal)
    while True:
        try:
            if rotation.has_secret("pending_password") and _lease_is_fresh(rotation):
                # Committed, and the claim (or _next_attempt) renewed the lease just now.
                password = rotation.get_secret("pending_password")
            else:
                try:
                    password = rotation_write_ahead(rotation=rotation)
                except LeaseLost:
                    return "skipped"
            aws.check_account(config, arn=record.distinguished_name, login=record.login)
            _check_path_scope(config, record)
            aws.set_console_password(config, login=record.login, password=password)
        except (ComplexityError, ScheduleError) as exc:
            if before_failure:
                before_failure()
            return rotation_fail(rotation=rotation, error=str(exc))
        except aws.AwsRefused as exc:
            if before_failure:
                before_failure()
            return rotation_fail(rotation=rotation, error=exc.message)
        except aws.AwsTransient as exc:
            if before_failure:
                before_failure()
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
        if finish is not None:
            return finish(rotation, password)
        return rotation_finish(rotation=rotation, password=password)


def _authority_refusal(rotation: Rotation) -> str | None:
    """The gateway's own check, from the database, before any AWS call: this gateway may act
    with this configuration on this record (vault/access.py). The web checked when the
    rotation was requested; shares, scopes and gateways may have changed since."""
    config = rotation.configuration
    if config is None:
        return "The configuration of this rotation was deleted: choose another one."
    gateway = Gateway.objects.select_related("application").filter(name=rotation.gateway_name)
    gateway = gateway.first()
    if gateway is None:
        return f"The gateway “{rotation.gateway_name}” no longer exists."
    return access.rotation_problem(config, rotation.pam_user, gateway)


def _check_path_scope(config: PamConfiguration, record: PamUser) -> None:
    """The configuration's IAM path prefix, against the path AWS gives the user (the ARN on
    the record is typed by a person and proves nothing)."""
    if not config.scope_path_prefix:
        return
    path = aws.user_path(config, login=record.login)
    if not access.scope_allows_path(config, path):
        raise aws.AwsRefused(
            f"The IAM user “{record.login}” has the path {path}, outside the target scope of the "
            f"configuration “{config.title}” (paths under {config.scope_path_prefix}): widen "
            "the scope or choose another configuration.",
            "OutOfScope",
        )


def _mark_may_be_live(rotation: Rotation) -> None:
    rotation.pending_may_be_live = True
    Rotation.objects.filter(pk=rotation.pk).update(pending_may_be_live=True)


def _next_attempt(rotation: Rotation, reason: str) -> bool:
    """Back off, then take the next attempt under a fresh lease (False if we lost the lease)."""
    time.sleep(min(2 ** (rotation.attempts - 1), 8) * settings.ROTATION_RETRY_BACKOFF_SCALE)
    lease = _lease_deadline()
    updated = _mine(rotation).update(
        attempts=F("attempts") + 1, lease_expires_at=lease, error=f"Retrying: {reason}"
    )
    if updated:
        rotation.attempts += 1
        rotation.lease_expires_at = lease
    return bool(updated)


def _next_run_for(rs: RotationSettings, now: datetime) -> datetime | None:
    return _next_run_of(rs.effective_schedule, now, rs.pk)


def rotation_finish(*, rotation: Rotation, password: str) -> str:
    """AWS holds the pending password: make it the record's password, in one transaction."""
    return _finish([(rotation, password)])[0]


class _NotAllMine(Exception):
    """Some rotation of a batch was taken over: roll back and finish them one by one."""


def _finish(done: list[tuple[Rotation, str]]) -> list[str]:
    """rotation_finish for one or more rotations, in one transaction with a few statements
    whatever their number: each record's new password and its history entry, each rotation
    succeeded, the settings' last run and next run, the audit events. Returns each status."""
    now = timezone.now()
    # Work that needs no lock is done before the transaction, which holds the write lock.
    next_runs = [_next_run_for(_settings_of(rotation), now) for rotation, _ in done]
    try:
        with transaction.atomic():
            owned = Q()
            for rotation, _ in done:
                owned |= Q(pk=rotation.pk, attempts=rotation.attempts)
            mine = Rotation.objects.filter(owned, status=Rotation.RUNNING).update(
                status=Rotation.SUCCEEDED,
                finished_at=now,
                pending_password_enc="",
                pending_may_be_live=False,
                error="",
            )
            if mine != len(done):
                # A recovered copy of a rotation owns it now (it holds the same password).
                raise _NotAllMine
            # The records' rows get one UPDATE of the password columns (a row lock like
            # select_for_update's, without reading the rows again); the ciphertext depends
            # only on the record's uid, which never changes.
            records = [rotation.pam_user for rotation, _ in done]
            pam_users_set_passwords(
                changes=[
                    (
                        rotation.pam_user,
                        password,
                        rotation.requested_by if rotation.requested_by_id else None,
                        f"{rotation.get_trigger_display()} rotation {rotation.uid}",
                    )
                    for rotation, password in done
                ],
                source="rotation",
            )
            for record in records:
                record.updated_at = now
            PamUser.objects.bulk_update(records, ["password_enc", "updated_at"])
            # Older possibly-live passwords are no longer live: AWS now holds the new one.
            # (None can appear while a rotation is active, so the claim's answer holds.)
            live = [r.pam_user_id for r, _ in done if getattr(r, "has_possibly_live", True)]
            if live:
                _possibly_live(live).update(resolved_at=now, pending_password_enc="")
            _settings_after_success([r for r, _ in done], now, next_runs)
            for rotation, _ in done:
                audit_rotation(
                    f"rotation.{TRIGGER_AUDIT[rotation.trigger]}.ok",
                    rotation,
                    details={"rotation": rotation.uid, "attempts": rotation.attempts},
                )
    except _NotAllMine:
        if len(done) == 1:
            return ["skipped"]
        return [_finish([item])[0] for item in done]
    return [Rotation.SUCCEEDED] * len(done)


def _settings_of(rotation: Rotation) -> RotationSettings:
    rs = rotation.pam_user.rotation_settings
    if rs.configuration_id == rotation.configuration_id:
        rs.configuration = rotation.configuration  # already loaded: no query
    return rs


def _settings_after_success(
    rotations: list[Rotation], now: datetime, next_runs: list[datetime | None]
) -> None:
    """Last rotated, last status and the next run, from the settings read at the claim.

    A next run is written only if its settings are unchanged since then (an edit saves the
    whole row and so moves ``updated_at``); an edit computed its own next run from the new
    schedule, and that one stands.
    """
    settings_rows = [rotation.pam_user.rotation_settings for rotation in rotations]
    RotationSettings.objects.filter(pk__in=[rs.pk for rs in settings_rows]).update(
        last_rotated_at=now,
        last_status=Rotation.SUCCEEDED,
        next_run_at=Case(
            *[
                When(pk=rs.pk, updated_at=rs.updated_at, then=Value(next_run_at))
                for rs, next_run_at in zip(settings_rows, next_runs, strict=True)
            ],
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
    audit_rotation(
        f"rotation.{TRIGGER_AUDIT[rotation.trigger]}.fail",
        rotation,
        details={"rotation": rotation.uid, "error": error, "may_be_live": keep},
    )


def audit_rotation(action: str, rotation: Rotation, *, details: dict) -> None:
    """Audit a rotation where each party looks: the record's folder, and the folder of the
    configuration whose credentials it used (its managers must see every use)."""
    actor = rotation.requested_by if rotation.requested_by_id else None
    record = rotation.pam_user
    audit_record(action, actor=actor, obj=record, details=details)
    config = rotation.configuration
    if config is not None and config.folder_id != record.folder_id:
        audit_record(
            action,
            actor=actor,
            obj=config,
            details={**details, "record": record.uid, "login": record.login},
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


def _possibly_live(pam_user_ids):
    """Failed rotations of these records (an id, a list, or an OuterRef) whose pending
    password may be live and is not resolved yet."""
    lookup = "pam_user_id__in" if isinstance(pam_user_ids, list) else "pam_user_id"
    return Rotation.objects.filter(
        **{lookup: pam_user_ids},
        status=Rotation.FAILED,
        pending_may_be_live=True,
        resolved_at__isnull=True,
    )


def possibly_live_rotations(record: PamUser):
    return _possibly_live(record.pk).exclude(pending_password_enc="")


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

    One pass costs a fixed number of queries per batch (five), whatever the number of
    records, and a few drain tasks per gateway. A record due many times over (the system was
    down) is rotated once, and its next run is computed from now.
    """
    now = now or timezone.now()
    requested = 0
    started: set[str] = set()  # gateways whose drains were started in this pass
    waiting: dict[str, int] = defaultdict(int)  # rotations queued for them since
    while True:
        per_gateway, more = _schedule_batch(now, batch_size)
        for gateway_name, count in per_gateway.items():
            requested += count
            waiting[gateway_name] += count
        # Start each gateway's drains as soon as it has work; the pass may run for a while.
        first = {g: n for g, n in waiting.items() if g not in started}
        if first:
            transaction.on_commit(lambda first=first: dispatch.enqueue_drains(first))
            started.update(first)
            for gateway_name in first:
                waiting[gateway_name] = 0
        if not more:
            break
    # Drains may have emptied the queue and stopped while later batches were queued.
    later = {g: n for g, n in waiting.items() if n}
    if later:
        transaction.on_commit(lambda: dispatch.enqueue_drains(later))
    return requested


def _schedule_batch(now: datetime, batch_size: int) -> tuple[dict[str, int], bool]:
    """One batch of due settings: their rotations queued and next runs moved, in one
    transaction. Returns ({gateway name: rotations queued}, whether more may be due)."""
    with transaction.atomic():
        due = RotationSettings.objects.filter(enabled=True, next_run_at__lte=now).order_by(
            "next_run_at"
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        # Plain values, not model instances: a batch is thousands of rows.
        rows = list(
            due.values_list(
                "pk",
                "pam_user_id",
                "configuration_id",
                "schedule",
                "use_configuration_schedule",
                "configuration__default_rotation_schedule",
                "configuration__gateway__name",
            )[:batch_size]
        )
        if not rows:
            return {}, False
        busy = set(
            Rotation.objects.filter(
                pam_user_id__in=[row[1] for row in rows], status__in=Rotation.ACTIVE
            ).values_list("pam_user_id", flat=True)
        )
        lease = _lease_deadline(now)
        new = [
            Rotation(
                pam_user_id=pam_user_id,
                configuration_id=configuration_id,
                gateway_name=gateway_name,
                trigger="scheduled",
                lease_expires_at=lease,
                created_at=now,
            )
            for _, pam_user_id, configuration_id, *_, gateway_name in rows
            if pam_user_id not in busy
        ]
        Rotation.objects.bulk_create(new, ignore_conflicts=True)
        # Records share a handful of schedules: compute each next run once, and write each
        # distinct value to all its rows at once (one UPDATE, a CASE over the groups).
        next_by_schedule: dict[str, datetime | None] = {}
        ids_by_next: dict[datetime | None, list[int]] = defaultdict(list)
        for pk, _, _, schedule, use_config, config_schedule, _ in rows:
            effective = (config_schedule if use_config else schedule) or {"type": "ON_DEMAND"}
            key = _schedule_key(effective)
            if key not in next_by_schedule:
                next_by_schedule[key] = _next_run_of(effective, now, pk)
            ids_by_next[next_by_schedule[key]].append(pk)
        moved = RotationSettings.objects.filter(pk__in=[row[0] for row in rows])
        if len(ids_by_next) == 1:
            moved.update(next_run_at=next(iter(ids_by_next)))
        else:
            moved.update(
                next_run_at=Case(
                    *[When(pk__in=ids, then=Value(value)) for value, ids in ids_by_next.items()],
                    output_field=DateTimeField(),
                )
            )
        per_gateway: dict[str, int] = defaultdict(int)
        for rotation in new:
            per_gateway[rotation.gateway_name] += 1
    return dict(per_gateway), len(rows) == batch_size


def _next_run_of(schedule: dict, now: datetime, settings_pk: int) -> datetime | None:
    try:
        return next_run(schedule, now)
    except ScheduleError:
        logger.warning("rotation settings %s have an invalid schedule", settings_pk)
        return None


def rotation_drain(*, gateway_name: str, budget_seconds: float = 60.0) -> int:
    """Run queued rotations of one gateway until none are left or the time budget is spent."""
    # Successes are finished together, at the end of each batch or before a failure is
    # handled: one write transaction for several rotations.
    done: list[tuple[Rotation, str]] = []

    def defer(rotation: Rotation, password: str) -> str:
        done.append((rotation, password))
        return Rotation.SUCCEEDED

    def flush() -> None:
        if done:
            _finish(done)
            done.clear()

    started, ran = time.monotonic(), 0
    while time.monotonic() - started < budget_seconds:
        batch = _claim_batch(gateway_name)
        if batch is None:
            return ran
        try:
            for rotation in batch:
                _run_claimed(rotation, finish=defer, before_failure=flush)
                ran += 1
        finally:
            flush()
    dispatch.enqueue_drains({gateway_name: 1})  # more work left: hand it to the next task
    return ran


# Rotations a drain claims at once: one read and one write transaction for all of them.
DRAIN_BATCH = 20


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
    gateway_heartbeat(gateway_name=gateway_name)  # first: whatever fails below, it is alive
    dispatch.ensure_gateway_schedule(gateway_name)
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
