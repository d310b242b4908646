"""The rotation engine: request, claim with a lease, write ahead, attempts with backoff,
ambiguous outcomes, finish, fail, cancel, a waiting rotation following saved settings, recovery
of expired leases, and resolving "may be live".

The one promise: the vault always holds every credential that may be live in AWS. So the new
secret is committed (encrypted, as the rotation's pending secret) before anything acts with it,
and it is thrown away only when a failure proves the target still holds the old one.

What is rotated, and how, is the rotation's method (rotation/methods): the engine runs the
method's write-ahead step, commits what it makes, runs its applying steps with it, and acts on
the kind of failure a step reports. The engine never calls AWS.

    queued --claim--> running --steps ok--> succeeded
      |                  |--Refused (proof nothing changed)--> failed (pending discarded,
                         |                                     unless an earlier attempt was
                         |                                     ambiguous: then kept, "may be live")
                         |--Transient / Ambiguous--> retried in the task with the same pending
                         |               secret, then failed with pending kept if any attempt
                         |               was Ambiguous
                         '--worker killed--> lease runs out --recover--> queued (same pending)
      |--cancel (a person; or settings saved that cannot run it)--> failed ("Cancelled by ...";
      |              a pending secret committed by an earlier attempt is kept, "may be live")
      '--settings saved with another configuration--> queued, on the new configuration's
                     gateway (only while it holds no committed secret)

A request that went unanswered (a read timeout, a connection closed after sending, a killed
worker) may still reach AWS later, with this rotation's secret. Until
``Rotation.unanswered_until`` no other rotation of the record is claimed, so such a request can
never overwrite a newer secret; a succeeded rotation keeps its secret as a candidate meanwhile,
retired afterwards unless the record changed in between (docs/architecture.md).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import (
    Case,
    DateTimeField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.constants import OnConflict
from django.http import HttpRequest
from django.utils import timezone

from rotation import dispatch, methods
from rotation.methods.base import Applied, Made, Refused, RotationMethod, StepFailed, WriteAhead
from rotation.models import KeyRetirement, Rotation, RotationSettings
from rotation.passwords import Complexity
from rotation.rotation_settings import rotation_settings_save
from rotation.schedules import next_run_or_none
from vault import access
from vault.audit import audit_event, audit_events_bulk, audit_record
from vault.models import AuditEvent, Gateway, PamConfiguration, PamUser, new_uid
from vault.prepared import PreparedQuery
from vault.rowvalues import Sql, rows_sources, update_from_rows
from vault.services import (
    pam_user_set_password,
    pam_users_set_access_keys,
    pam_users_set_passwords,
)

logger = logging.getLogger(__name__)

TRIGGER_AUDIT = {"on_demand": "on_demand", "cli": "on_demand", "scheduled": "scheduled"}
NOT_SET_UP = (
    "Password rotation is not set up for this record: open Password Rotation Settings first."
)
DISABLED = "Password rotation is disabled for this record: enable it in Password Rotation Settings."
NOT_MANAGED = (
    "This record is not managed by the vault: it is never rotated. Mark it managed (Edit) to "
    "rotate it."
)
JUST_FINISHED = "Please try again: a rotation just finished."

# finish(rotation, secret) -> status: records a success (a drain defers them to finish several
# in one transaction).
Finish = Callable[[Rotation, str], str]


class RotationRequestError(Exception):
    """A rotation could not be requested; the message tells the person why."""


class RotationInProgress(RotationRequestError):
    def __init__(self, rotation: Rotation):
        self.rotation = rotation
        super().__init__("A rotation of this record is already in progress.")


class LeaseLost(Exception):
    """Another worker (or the recovery pass) owns this rotation now: stop touching it."""


# --- the lease ---------------------------------------------------------------------------------


def lease_deadline(now: datetime | None = None) -> datetime:
    """When a lease taken now runs out, and recovery may give the rotation to another worker."""
    return (now or timezone.now()) + timedelta(seconds=settings.ROTATION_LEASE_SECONDS)


def _lease_is_fresh(rotation: Rotation) -> bool:
    """Most of the lease is left: the steps end well before anyone may take over."""
    left = (rotation.lease_expires_at - timezone.now()).total_seconds()
    return left > 0.8 * settings.ROTATION_LEASE_SECONDS


def _mine(rotation: Rotation) -> QuerySet[Rotation]:
    """The rotation's row, as long as this worker's claim on it is still the current one."""
    return Rotation.objects.filter(
        pk=rotation.pk, status=Rotation.RUNNING, attempts=rotation.attempts
    )


def _renew_lease(rotation: Rotation, row: QuerySet[Rotation], **changes: object) -> None:
    """A fresh lease (and ``changes``) on ``row``; LeaseLost when the row is not ours."""
    lease = lease_deadline()
    if not row.update(lease_expires_at=lease, **changes):
        raise LeaseLost
    rotation.lease_expires_at = lease


# --- request -----------------------------------------------------------------------------------


def sharing_problem(
    config: PamConfiguration, record: PamUser, *, memo: dict | None = None
) -> str | None:
    """Why `config`'s gateway may not rotate `record`, or None (vault/access.py decides).
    ``memo``: one dict across many records, so each folder is checked once per configuration."""
    return access.rotation_problem(config, record, config.gateway, folder_memo=memo)


def rotation_request_problem(
    *, record: PamUser, rs: RotationSettings | None, memo: dict | None = None
) -> str | None:
    """Why a rotation of `record` with its settings `rs` may not be requested, or None.

    The one answer for a single request and for many at once (pass the same ``memo``).
    """
    if not record.managed:
        return NOT_MANAGED
    if rs is None:
        return NOT_SET_UP
    if not rs.enabled:
        return DISABLED
    return sharing_problem(rs.configuration, record, memo=memo)


def rotation_check_requestable(*, record: PamUser) -> RotationSettings:
    """The settings a rotation of `record` would use, or RotationRequestError saying why not."""
    rs = (
        RotationSettings.objects.filter(pam_user=record)
        .select_related("configuration__gateway")
        .first()
    )
    problem = rotation_request_problem(record=record, rs=rs)
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
                lease_expires_at=lease_deadline(),
            )
            transaction.on_commit(lambda: dispatch.enqueue_rotation(rotation))
    except IntegrityError:
        active = Rotation.objects.filter(pam_user=record, status__in=Rotation.ACTIVE).first()
        if active is None:  # it finished between our insert and this read
            raise RotationRequestError(JUST_FINISHED) from None
        raise RotationInProgress(active) from None
    return rotation


# Records a batch request queues per transaction (rotation_request_many).
REQUEST_CHUNK = 500


def rotation_request_many(
    *, records: list[PamUser], trigger: str, requested_by=None
) -> tuple[dict[str, Rotation], dict[str, str]]:
    """Queue one rotation for each record that has none active, REQUEST_CHUNK records to a
    transaction.

    Returns ({record uid: its active rotation (new, or the one already in progress)},
    {record uid: why it cannot be rotated}). The work goes to each gateway as a few drain
    tasks rather than one task per record: a task costs the queue far more than a rotation
    costs the database, so a folder of hundreds rotates at the speed of AWS. Each chunk's
    drains start when it commits, so the gateways rotate the first records while the next
    are being queued (5,000 records in one transaction took 1 to 1.3 s before the first claim,
    a twentieth of the whole run: issue 10).
    """
    records = list(records)
    actor = requested_by if getattr(requested_by, "pk", None) else None
    # Shared by the chunks: the configurations read, and the checks made of each.
    configurations: dict[int, PamConfiguration] = {}
    memo: dict = {}
    active: dict[str, Rotation] = {}
    problems: dict[str, str] = {}
    for start in range(0, len(records), REQUEST_CHUNK):
        chunk = records[start : start + REQUEST_CHUNK]
        wanted = _requestable(chunk, configurations, memo, problems)
        active.update(_queue_many(wanted, trigger, actor))
        for record, _ in wanted:
            if record.uid not in active:  # finished between our insert and the read
                problems[record.uid] = JUST_FINISHED
    return active, problems


def _requestable(
    records: list[PamUser],
    configurations: dict[int, PamConfiguration],
    memo: dict,
    problems: dict[str, str],
) -> list[tuple[PamUser, RotationSettings]]:
    """The records that may be rotated now, each with its settings; why not for the others,
    added to ``problems``."""
    all_settings = {
        rs.pam_user_id: rs for rs in RotationSettings.objects.filter(pam_user__in=records)
    }
    # Records share a few configurations: each is read (with its gateway, application and
    # folder) once, not once per record.
    missing = {rs.configuration_id for rs in all_settings.values()} - configurations.keys()
    configurations.update(
        PamConfiguration.objects.select_related("gateway__application", "folder").in_bulk(missing)
    )
    for rs in all_settings.values():
        rs.configuration = configurations[rs.configuration_id]
    wanted: list[tuple[PamUser, RotationSettings]] = []
    for record in records:
        rs = all_settings.get(record.pk)
        problem = rotation_request_problem(record=record, rs=rs, memo=memo)
        if problem:
            problems[record.uid] = problem
        else:
            wanted.append((record, rs))
    return wanted


def _queue_many(
    wanted: list[tuple[PamUser, RotationSettings]], trigger: str, actor
) -> dict[str, Rotation]:
    """Insert the rotations of rotation_request_many and hand the new ones to their gateways.
    Returns {record uid: its active rotation}."""
    by_record = {record.pk: record for record, _ in wanted}
    now = timezone.now()
    with transaction.atomic():
        busy = set(
            Rotation.objects.filter(
                pam_user_id__in=list(by_record), status__in=Rotation.ACTIVE
            ).values_list("pam_user_id", flat=True)
        )
        # In record order, as the scheduler inserts (see rotations_insert_queued).
        new = sorted(
            (
                (new_uid(), record.pk, rs.configuration_id, rs.configuration.gateway.name)
                for record, rs in wanted
                if record.pk not in busy
            ),
            key=lambda row: row[1],
        )
        per_gateway: dict[str, list[int]] = defaultdict(list)
        for pk, gateway_name in rotations_insert_queued(
            new, now=now, trigger=trigger, requested_by=actor
        ):
            per_gateway[gateway_name].append(pk)
        # What callers show of each (the CLI prints its uid and status, and waits on its id).
        active = {
            by_record[rotation.pam_user_id].uid: rotation
            for rotation in Rotation.objects.filter(
                pam_user_id__in=list(by_record), status__in=Rotation.ACTIVE
            ).only("pk", "uid", "status", "pam_user_id", "gateway_name")
        }
        transaction.on_commit(lambda: dispatch.enqueue_requested(per_gateway))
    return active


# The columns that differ from one queued rotation to the next, in a row of
# rotations_insert_queued; every other column is the same in every row.
_QUEUED_VARYING = ("uid", "pam_user", "configuration", "gateway_name")


def rotations_insert_queued(
    rows: list[tuple], *, now: datetime, trigger: str, requested_by=None
) -> list[tuple[int, str]]:
    """Insert queued rotations, a row (uid, record id, configuration id, gateway name) each,
    skipping those the one-active-rotation constraint refuses (a record already rotating,
    or one a racing request won). Returns (id, gateway name) of each rotation inserted.

    What bulk_create(ignore_conflicts=True) does, without a model instance per row and with
    the rows it inserted: ``INSERT ... SELECT v.*, <the other columns' values, sent once>
    FROM <the rows> AS v ... RETURNING id, gateway_name`` (vault/rowvalues.py), so a thousand
    rotations cost Python a tuple each and the database one statement (one call of the count
    triggers; on SQLite, one per 999 parameters). The other columns come from the model: a
    field added to Rotation gets its default here too. Callers insert in record order: two
    inserts waiting for each other's rows in the constraint's index in opposite orders would
    deadlock."""
    if not rows:
        return []
    template = Rotation(
        trigger=trigger,
        requested_by=requested_by,
        lease_expires_at=lease_deadline(now),
        created_at=now,
    )
    varying = [Rotation._meta.get_field(name) for name in _QUEUED_VARYING]
    fixed, fixed_values = [], []
    for field in Rotation._meta.concrete_fields:
        if field.primary_key or field in varying:
            continue
        value = field.get_db_prep_save(field.pre_save(template, add=True), db_connection)
        if value is None and field.null:
            continue  # the column's own default
        fixed.append(field)
        fixed_values.append(value)
    ops = db_connection.ops
    columns = ", ".join(ops.quote_name(f.column) for f in varying + fixed)
    sources = rows_sources(
        Rotation, _QUEUED_VARYING, rows, db_connection.alias, other_params=len(fixed)
    )
    inserted: list[tuple[int, str]] = []
    with db_connection.cursor() as cursor:
        for source, params in sources:
            cursor.execute(
                f"{ops.insert_statement(on_conflict=OnConflict.IGNORE)} "
                f"{ops.quote_name(Rotation._meta.db_table)} ({columns}) "
                f"SELECT v.*, {', '.join(['%s'] * len(fixed))} FROM {source} "
                f"{ops.on_conflict_suffix_sql(fixed, OnConflict.IGNORE, None, None)} "
                f"RETURNING {ops.quote_name('id')}, {ops.quote_name('gateway_name')}",
                fixed_values + params,
            )
            inserted += [(pk, gateway_name) for pk, gateway_name in cursor.fetchall()]
    return inserted


# --- claim -------------------------------------------------------------------------------------

RUN_RELATED = (
    "pam_user__rotation_settings",
    "pam_user__folder",
    "configuration__folder",
    "configuration__gateway",
)


def _method_of(rotation: Rotation) -> RotationMethod:
    return methods.method_named(rotation.pam_user.rotation_settings.method)


def _claimable(now: datetime | None = None) -> QuerySet[Rotation]:
    """Queued rotations, read with what running them needs, except those of records where an
    earlier rotation's unanswered request may still reach AWS (at `now`)."""
    waiting = Rotation.objects.filter(
        pam_user_id=OuterRef("pam_user_id"), unanswered_until__gt=now or timezone.now()
    ).exclude(pk=OuterRef("pk"))
    # What a success makes obsolete, read at the claim (see _promote_passwords).
    return (
        Rotation.objects.select_related(*RUN_RELATED)
        .filter(status=Rotation.QUEUED)
        .exclude(Exists(waiting))
        .annotate(
            has_possibly_live=Exists(_possibly_live(OuterRef("pam_user_id"))),
            has_unanswered_kept=Exists(_unanswered_kept(OuterRef("pam_user_id"))),
        )
    )


def _prepare_claim(rotation: Rotation, memo: dict | None = None) -> tuple:
    """The row of the conditional UPDATE that claims a queued rotation read earlier
    (_CLAIM_FIELDS): its id, the attempt count, gateway and configuration it was read with,
    and the new pending secret (encrypted) that the same statement writes, or None when it
    writes none (the rotation has one, or its method makes it only in the attempt): the claim
    and the write-ahead in one write.

    Conditional on the attempt count read, so a claim made by anyone since the read wins and
    this one does nothing; and on the gateway and configuration read, so a rotation that
    saved settings moved to another gateway since (rotation_follow_settings) is not run
    here with the old ones. When the secret cannot be made now (the account's policy
    unreachable, impossible complexity), the claim goes ahead without it and the run's
    write-ahead step reports the problem.
    """
    # The gateway's authority check comes before any AWS call, the write-ahead's included.
    rotation.authority_refusal = _authority_refusal(rotation, memo)
    # A write-ahead step that changes the target runs only in the attempt, never at a claim.
    writes_ahead_here = not _method_of(rotation).write_ahead.changes_target
    pending_enc = None
    if (
        writes_ahead_here
        and not rotation.has_secret("pending_password")
        and not rotation.authority_refusal
    ):
        secret = _secret_if_possible(rotation)
        if secret is not None:
            rotation.set_secret("pending_password", secret)
            pending_enc = rotation.pending_password_enc
    return (
        rotation.pk,
        rotation.attempts,
        rotation.gateway_name,
        rotation.configuration_id,
        pending_enc,
    )


def _secret_if_possible(rotation: Rotation) -> str | None:
    try:
        return _method_of(rotation).write_ahead.make(rotation)
    except StepFailed:
        return None


def _claimed(rotation: Rotation, now: datetime) -> Rotation:
    rotation.status, rotation.started_at = Rotation.RUNNING, now
    rotation.lease_expires_at = lease_deadline(now)
    rotation.attempts += 1
    return rotation


def rotation_claim_with_pending(*, rotation_id: int) -> Rotation | None:
    """queued -> running for exactly one worker, with the pending secret written ahead in the
    same UPDATE when it can be made now. None when someone else has it."""
    rotation = _claimable().filter(pk=rotation_id).first()
    if rotation is None:
        return None
    claim = _prepare_claim(rotation)
    now = timezone.now()
    if not _claim_all([claim], now):
        return None
    return _claimed(rotation, now)


def rotations_claim_batch(*, gateway_name: str, limit: int) -> list[Rotation] | None:
    """Claim up to ``limit`` of the gateway's oldest queued rotations, each with its pending
    secret committed, in one read and one UPDATE. None when none is queued; an empty list
    when another worker claimed them first.

    On PostgreSQL the read locks the rows it returns and skips those another worker's claim
    holds, until this claim commits: two workers reading the oldest queued rotations at once
    would otherwise read the same ones, and one of them would prepare its whole batch (the
    authority check, a new password for each) for nothing. Measured with two workers and
    batches of 20 to 100: 28 % of the rows read were lost that way (issue 10). SQLite has one
    writer and no row locks; there the conditional UPDATE alone settles it."""
    with transaction.atomic() if _claims_skip_locked() else nullcontext():
        rows = _oldest_claimable(limit).run(gateway_name=gateway_name, now=timezone.now())
        if not rows:
            return None
        # One authority check per gateway, configuration and folder for the whole batch, read
        # at this claim: the batch's rotations share a few of each.
        memo: dict = {}
        claims = [_prepare_claim(rotation, memo) for rotation in rows]
        # The leases start when the claim is written, not before the batch was prepared
        # (which may have asked AWS for a password policy).
        now = timezone.now()
        won = _claim_all(claims, now)
    return [_claimed(rotation, now) for rotation in rows if rotation.pk in won]


def _claims_skip_locked() -> bool:
    return db_connection.features.has_select_for_update_skip_locked


def rotations_queued_count(*, gateway_name: str, cap: int) -> int:
    """How many of the gateway's rotations are queued, counted up to ``cap``."""
    return Rotation.objects.filter(gateway_name=gateway_name, status=Rotation.QUEUED)[:cap].count()


# A drain's read of its batch, compiled once per process and batch size (vault/prepared.py):
# building and compiling it cost a worker a tenth of its CPU (issue 10's profile).
_OLDEST_CLAIMABLE: dict[int, PreparedQuery] = {}


def _oldest_claimable(limit: int) -> PreparedQuery:
    if limit not in _OLDEST_CLAIMABLE:
        _OLDEST_CLAIMABLE[limit] = PreparedQuery(
            lambda gateway_name, now: (
                _claimable(now)
                .filter(gateway_name=gateway_name)
                .select_for_update(skip_locked=True, of=("self",))  # no effect on SQLite
                .order_by("created_at", "id")[:limit]
            ),
            gateway_name=str,
            now=datetime,
        )
    return _OLDEST_CLAIMABLE[limit]


# The columns of a claim's row (_prepare_claim), as Rotation's fields.
_CLAIM_FIELDS = ("id", "attempts", "gateway_name", "configuration", "pending_password_enc")
# Each row is claimed only as it was read: still queued, with the same attempt count, gateway
# and configuration (ids are positive: 0 stands for none), and a new pending secret is written
# only where none is committed.
_CLAIM_WHERE = Sql(
    '{t}."status" = %s AND {t}."attempts" = v."attempts" '
    'AND {t}."gateway_name" = v."gateway_name" '
    'AND COALESCE({t}."configuration_id", 0) = COALESCE(v."configuration_id", 0) '
    'AND (v."pending_password_enc" IS NULL OR {t}."pending_password_enc" = %s)',
    (("status", Rotation.QUEUED), ("pending_password_enc", "")),
)


def _claim_all(claims: list[tuple], now: datetime) -> set[int]:
    """Every claim of a batch in one UPDATE: each row under its own conditions, each new
    pending secret by its row; the ids it changed come back with RETURNING (a follow-up
    SELECT could mistake another worker's claim for its own). The rows travel as data
    (vault/rowvalues.py): building one condition per row cost the gateway more CPU than
    running the statement (issue 10's profile)."""
    won = update_from_rows(
        Rotation,
        fields=_CLAIM_FIELDS,
        rows=claims,
        set_values={
            "status": Rotation.RUNNING,
            "started_at": now,
            "lease_expires_at": lease_deadline(now),
        },
        set_sql={
            "attempts": '{t}."attempts" + 1',
            "pending_password_enc": 'COALESCE(v."pending_password_enc", {t}."pending_password_enc")',
        },
        where=_CLAIM_WHERE,
        returning=True,
    )
    return set(won)


# --- run ---------------------------------------------------------------------------------------


def rotation_write_ahead(*, rotation: Rotation) -> str:
    """The pending secret, made by the method's write-ahead step and committed before any
    step acts with it (once per rotation).

    Also renews the lease, and raises LeaseLost when the claim is no longer ours: a worker
    that outlived its lease must not act, nor replace a pending secret that another worker
    may already have sent.
    """
    if rotation.has_secret("pending_password"):
        _renew_lease(rotation, _mine(rotation))
        return rotation.get_secret("pending_password")
    step = _method_of(rotation).write_ahead
    if step.changes_target:
        return _write_ahead_in_target(rotation, step)
    made = step.make(rotation)
    secret = made.secret if isinstance(made, Made) else made
    rotation.set_secret("pending_password", secret)
    # Autocommit: this row is durable before the next step acts.
    unwritten = _mine(rotation).filter(pending_password_enc="")
    _renew_lease(rotation, unwritten, pending_password_enc=rotation.pending_password_enc)
    return secret


def _write_ahead_in_target(rotation: Rotation, step: WriteAhead) -> str:
    """A write-ahead step that changes the target (CreateAccessKey): the step's start is
    durable before it acts, so that the next attempt finds what a lost answer left behind;
    its answer is committed at once, as may be live."""
    _renew_lease(rotation, _mine(rotation))  # still ours before anything changes in AWS
    if step.prepare is not None:
        step.prepare(rotation)
    started = timezone.now()
    _renew_lease(rotation, _mine(rotation), step=step.name, step_started_at=started)
    rotation.step, rotation.step_started_at = step.name, started
    made = step.make(rotation)
    secret, key_id = (made.secret, made.key_id) if isinstance(made, Made) else (made, "")
    rotation.set_secret("pending_password", secret)
    rotation.pending_access_key_id, rotation.pending_may_be_live = key_id, True
    # If this worker lost its claim meanwhile, LeaseLost: the secret is lost with it, and the
    # next owner deletes the key it belongs to (it knows when this attempt started).
    _renew_lease(
        rotation,
        _mine(rotation).filter(pending_password_enc=""),
        pending_password_enc=rotation.pending_password_enc,
        pending_access_key_id=key_id,
        pending_may_be_live=True,
    )
    return secret


def rotation_run(*, rotation_id: int) -> str:
    """Run one rotation to the end. Returns the final status (or "skipped"), never a secret."""
    rotation = rotation_claim_with_pending(rotation_id=rotation_id)
    if rotation is None:
        return "skipped"
    with released_on_database_error([rotation]):
        return rotation_run_claimed(rotation=rotation)


# How often a worker whose database failed tries to hand its rotations back.
RELEASE_RETRY_SECONDS = 2.0


@contextmanager
def released_on_database_error(rotations: list[Rotation]) -> Iterator[None]:
    """Run the block; if the database fails in it (a lost connection, a read timeout), hand
    the claimed rotations back (rotations_release) before the error goes on, so they run again
    as soon as the database answers rather than when their leases run out."""
    try:
        yield
    except DatabaseError:
        logger.warning("database error during rotations: handing them back", exc_info=True)
        rotations_release(rotations=rotations)
        raise


def rotations_release(*, rotations: list[Rotation]) -> int:
    """running -> queued, at once, for the rotations this worker still holds, retrying while
    the database does not answer and until their leases would run out anyway (then recovery
    takes them). Conditional on the claim (_mine), and keeping any committed secret as the
    recovery pass does: it may be live (a success not yet recorded), and a request of it may
    be unanswered. Returns how many were handed back; their gateways get drains."""
    now = timezone.now()
    deadline = min((r.lease_expires_at for r in rotations if r.lease_expires_at), default=now)
    while True:
        try:
            released = [r for r in rotations if _hand_back(r, timezone.now())]
            break
        except DatabaseError:
            db_connection.close()  # broken: the next query opens a new one
            if timezone.now() >= deadline:
                return 0
            time.sleep(RELEASE_RETRY_SECONDS)
    per_gateway: dict[str, int] = defaultdict(int)
    for rotation in released:
        per_gateway[rotation.gateway_name] += 1
    if per_gateway:
        dispatch.enqueue_drains(dict(per_gateway))
    return len(released)


def _hand_back(rotation: Rotation, now: datetime) -> bool:
    return bool(
        _mine(rotation).update(
            status=Rotation.QUEUED,
            lease_expires_at=lease_deadline(now),
            pending_may_be_live=_MAY_BE_LIVE_NOW,
            unanswered_until=_unanswered_now(now),
        )
    )


def rotation_run_claimed(
    *,
    rotation: Rotation,
    finish: Finish | None = None,
    before_failure: Callable[[], None] | None = None,
    applied: Callable[[], bool | None] | None = None,
) -> str:
    """Attempt the claimed rotation until it ends. ``finish(rotation, secret)`` records a
    success (default: rotation_finish); ``before_failure()`` runs before any failure is
    handled (a drain finishes the successes it holds first, while their leases are fresh).
    ``applied()``: the first attempt's applying steps, already run on a drain's AWS lane
    (rotation_apply); it gives their outcome, or raises their failure."""
    # Checked at the claim, just now, when the rotation came through _prepare_claim.
    checked = "authority_refusal" in vars(rotation)
    refusal = rotation.authority_refusal if checked else _authority_refusal(rotation)
    if refusal:
        if before_failure:
            before_failure()
        return rotation_fail(rotation=rotation, error=refusal)
    while True:
        try:
            secret = _attempt(rotation, applied)
        except LeaseLost:
            return "skipped"
        except StepFailed as failure:
            if before_failure:
                before_failure()
            ended = _after_failed_attempt(rotation, failure)
            if ended is None:
                applied = None  # the next attempt runs here
                continue
            return ended
        if finish is not None:
            return finish(rotation, secret)
        return rotation_finish(rotation=rotation, password=secret)


def _attempt(rotation: Rotation, applied: Callable[[], bool | None] | None = None) -> str:
    """One attempt: the committed pending secret, then the method's applying steps with it
    (or what they gave on the AWS lane, unless the lane found the lease too old to run them)."""
    unanswered = applied() if applied is not None else None
    if unanswered is not None:
        secret = rotation.get_secret("pending_password")
    else:
        if rotation.has_secret("pending_password") and _lease_is_fresh(rotation):
            # Committed, and the claim (or _next_attempt) renewed the lease just now.
            secret = rotation.get_secret("pending_password")
        else:
            secret = rotation_write_ahead(rotation=rotation)
        unanswered = _apply(rotation, secret)
    if unanswered:
        _note_unanswered(rotation)
    return secret


def _apply(rotation: Rotation, secret: str) -> bool:
    """The method's applying steps with the secret; True when an earlier request of one went
    unanswered (it may still reach AWS)."""
    unanswered = False
    for step in _method_of(rotation).applying:
        report = step.act(rotation, secret)
        unanswered = unanswered or (isinstance(report, Applied) and report.unanswered)
    return unanswered


_UNCHECKED = object()  # a rotation that did not come through _prepare_claim


def rotations_lane_secrets(rotations: list[Rotation]) -> dict[int, str] | None:
    """For a claimed batch, {rotation id: its committed secret} for each rotation whose first
    attempt may run on a drain's AWS lane: it passed the claim's authority check, its method
    applies through AWS only, and the claim committed its pending secret. A refused rotation
    calls nothing and is left out. None when some rotation must be attempted in the worker's
    thread: then the whole batch is, so that its AWS calls never overlap the lane's."""
    secrets = {}
    for rotation in rotations:
        refusal = vars(rotation).get("authority_refusal", _UNCHECKED)
        if refusal is _UNCHECKED:
            return None
        if refusal:
            continue
        if not (
            _method_of(rotation).applies_through_aws_only
            and rotation.has_secret("pending_password")
            and _lease_is_fresh(rotation)
        ):
            return None
        secrets[rotation.pk] = rotation.get_secret("pending_password")
    return secrets


def rotation_apply(rotation: Rotation, secret: str) -> bool | None:
    """On a drain's AWS lane: the applying steps of the rotation's first attempt, which call
    AWS only (rotations_lane_secrets). None, and nothing sent, when the lease is no longer
    fresh by the time the lane reaches it (the worker's thread renews it and runs them);
    else whether a request went unanswered. Raises the steps' StepFailed."""
    if not _lease_is_fresh(rotation):
        return None
    return _apply(rotation, secret)


def _after_failed_attempt(rotation: Rotation, failure: StepFailed) -> str | None:
    """The rotation's final status after a failed attempt, or None: take the next attempt."""
    if isinstance(failure, Refused):
        return rotation_fail(rotation=rotation, error=failure.message)
    if failure.may_have_applied:
        _mark_may_be_live(rotation)
    if rotation.attempts >= settings.ROTATION_MAX_ATTEMPTS:
        return rotation_fail(
            rotation=rotation,
            error=f"{failure.message} (gave up after {rotation.attempts} attempts)",
        )
    if not _next_attempt(rotation, failure.message):
        return "skipped"
    return None


def _authority_refusal(rotation: Rotation, memo: dict | None = None) -> str | None:
    """The gateway's own check, from the database, before any AWS call: this gateway may act
    with this configuration on this record (vault/access.py). The web checked when the
    rotation was requested; shares, scopes and gateways may have changed since. `memo`
    shares the reads among the rotations of one claim."""
    if not rotation.pam_user.managed:  # it became unmanaged while the rotation waited
        return NOT_MANAGED
    config = rotation.configuration
    if config is None:
        return "The configuration of this rotation was deleted: choose another one."
    memo = {} if memo is None else memo
    key = ("gateway", rotation.gateway_name)
    if key not in memo:
        found = Gateway.objects.select_related("application").filter(name=rotation.gateway_name)
        memo[key] = found.first()
    gateway = memo[key]
    if gateway is None:
        return f"The gateway “{rotation.gateway_name}” no longer exists."
    folders = memo.setdefault("folders", {})
    return access.rotation_problem(config, rotation.pam_user, gateway, folder_memo=folders)


def _mark_may_be_live(rotation: Rotation) -> None:
    """An attempt ended without an answer that proves anything: its request may have been
    applied, or may still be (so it is also unanswered)."""
    until = unanswered_deadline()
    rotation.pending_may_be_live, rotation.unanswered_until = True, until
    Rotation.objects.filter(pk=rotation.pk).update(pending_may_be_live=True, unanswered_until=until)


def unanswered_deadline(now: datetime | None = None) -> datetime:
    """Until when a request sent before ``now`` that went unanswered may still reach AWS."""
    window = timedelta(seconds=settings.ROTATION_UNANSWERED_WINDOW_SECONDS)
    return (now or timezone.now()) + window


def _note_unanswered(rotation: Rotation) -> None:
    """A step succeeded after an earlier request of it went unanswered."""
    rotation.unanswered_until = unanswered_deadline()
    Rotation.objects.filter(pk=rotation.pk).update(unanswered_until=rotation.unanswered_until)


def _next_attempt(rotation: Rotation, reason: str) -> bool:
    """Back off, then take the next attempt under a fresh lease (False if we lost the lease)."""
    time.sleep(min(2 ** (rotation.attempts - 1), 8) * settings.ROTATION_RETRY_BACKOFF_SCALE)
    lease = lease_deadline()
    updated = _mine(rotation).update(
        attempts=F("attempts") + 1, lease_expires_at=lease, error=f"Retrying: {reason}"
    )
    if updated:
        rotation.attempts += 1
        rotation.lease_expires_at = lease
    return bool(updated)


# --- finish ------------------------------------------------------------------------------------


def _next_run_for(rs: RotationSettings, now: datetime) -> datetime | None:
    return next_run_or_none(rs.effective_schedule, now, settings_pk=rs.pk)


def rotation_finish(*, rotation: Rotation, password: str) -> str:
    """The target holds the pending secret: make it the record's password, in one transaction."""
    return rotations_finish(done=[(rotation, password)])[0]


class _NotAllMine(Exception):
    """Some rotation of a batch was taken over: roll back and finish them one by one."""


def rotations_finish(*, done: list[tuple[Rotation, str]]) -> list[str]:
    """rotation_finish for one or more rotations, in one transaction with a few statements
    whatever their number: each record's new password and its history entry, each rotation
    succeeded, the settings' last run and next run, the audit events. Returns each status."""
    now = timezone.now()
    # Work that needs no lock is done before the transaction, which holds the write lock.
    next_runs = [_next_run_for(_settings_of(rotation), now) for rotation, _ in done]
    try:
        with transaction.atomic():
            _hold_settings_first([rotation.pam_user_id for rotation, _ in done])
            _succeed_all(done, now)
            _after_success_by_method(done, now)
            _promote_passwords(done, now)
            _settings_after_success([r for r, _ in done], now, next_runs)
            # One INSERT for the batch's events (and one for their outbox rows).
            audit_events_bulk(
                [
                    event
                    for rotation, _ in done
                    for event in _rotation_events(
                        f"rotation.{TRIGGER_AUDIT[rotation.trigger]}.ok",
                        rotation,
                        details={"rotation": rotation.uid, "attempts": rotation.attempts},
                    )
                ]
            )
    except _NotAllMine:
        if len(done) == 1:
            return ["skipped"]
        return [rotations_finish(done=[item])[0] for item in done]
    return [Rotation.SUCCEEDED] * len(done)


def _hold_settings_first(pam_user_ids: list[int]) -> None:
    """Lock the records' rotation settings before an ending rotation's row changes, in the
    order a scheduler pass takes them (settings FOR UPDATE, then the new rotations, whose
    one-active check waits on an active rotation changed by an open transaction). The other
    order deadlocks with a pass that finds the record due meanwhile; this way the pass skips
    it (SKIP LOCKED) or finishes first. Nothing to do where writers take turns (SQLite)."""
    if db_connection.features.has_select_for_update:
        held = RotationSettings.objects.select_for_update().filter(pam_user_id__in=pam_user_ids)
        list(held.order_by("pk").values_list("pk", flat=True))


def _kept_while_unanswered(column: str, now: datetime) -> Sql:
    """The column's value while an unanswered request of the rotation may still arrive, else
    empty."""
    return Sql(
        f'CASE WHEN {{t}}."unanswered_until" > %s THEN {{t}}."{column}" ELSE \'\' END',
        (("unanswered_until", now),),
    )


def _succeed_all(done: list[tuple[Rotation, str]], now: datetime) -> None:
    # Kept while an unanswered request of it may still arrive: the pending secret stays a
    # candidate until then, and a step that changed the target stays recorded, so that what
    # such a request makes is cleaned up after (rotation/retirement.py).
    mine = update_from_rows(
        Rotation,
        fields=["id", "attempts"],
        rows=[(rotation.pk, rotation.attempts) for rotation, _ in done],
        set_values={
            "status": Rotation.SUCCEEDED,
            "finished_at": now,
            "pending_may_be_live": False,
            "error": "",
        },
        set_sql={
            column: _kept_while_unanswered(column, now)
            for column in ("pending_password_enc", "step")
        },
        where=Sql(
            '{t}."attempts" = v."attempts" AND {t}."status" = %s',
            (("status", Rotation.RUNNING),),
        ),
    )
    if mine != len(done):
        # A recovered copy of a rotation owns it now (it holds the same secret).
        raise _NotAllMine


def _after_success_by_method(done: list[tuple[Rotation, str]], now: datetime) -> None:
    """Each method's own work in the finishing transaction, before the records change."""
    by_method: dict[str, list[Rotation]] = defaultdict(list)
    for rotation, _ in done:
        by_method[_method_of(rotation).name].append(rotation)
    for name, rotations in by_method.items():
        hook = methods.method_named(name).after_success
        if hook is not None:
            hook(rotations, now)


def _promote_passwords(done: list[tuple[Rotation, str]], now: datetime) -> None:
    """Each record's new secret with its history entry; older possibly-live ones resolved."""
    keys = [(r, secret) for r, secret in done if _method_of(r).kind == "access_key"]
    passwords = [(r, secret) for r, secret in done if _method_of(r).kind != "access_key"]
    pam_users_set_passwords(
        changes=[_history_change(r, secret) for r, secret in passwords], source="rotation"
    )
    pam_users_set_access_keys(
        changes=[(*_history_change(r, secret), r.pending_access_key_id) for r, secret in keys],
        source="rotation",
    )
    # The records' rows get one UPDATE of the columns their method changed (a row lock like
    # select_for_update's, without reading the rows again); the ciphertext depends only on
    # the record's uid, which never changes. The other secret's column is not written back
    # from the copy read at the claim: a person may have changed it since.
    for group, fields in (
        (passwords, ["password_enc"]),
        (keys, ["access_key_id", "access_secret_key_enc"]),
    ):
        records = [r.pam_user for r, _ in group]
        for record in records:
            record.updated_at = now
        update_from_rows(
            PamUser,
            fields=["id", *fields],
            rows=[(record.pk, *(getattr(record, name) for name in fields)) for record in records],
            set_values={"updated_at": now},
            set_sql={name: f'v."{name}"' for name in fields},
        )
    # Older possibly-live passwords are no longer live: AWS now holds the new one, and none of
    # their requests can still arrive (the claim waited for that). None can appear while a
    # rotation is active, so the claim's answer holds. (A failed access-key rotation's pending
    # key is still a key in AWS: it stays, until a person resolves it or a rotation makes room.)
    live = [r.pam_user_id for r, _ in passwords if getattr(r, "has_possibly_live", True)]
    if live:
        _possibly_live(live).update(resolved_at=now, pending_password_enc="")
    kept = [r.pam_user_id for r, _ in passwords if getattr(r, "has_unanswered_kept", True)]
    if kept:
        ours = [r.pk for r, _ in passwords]
        _unanswered_kept(kept).exclude(pk__in=ours).update(resolved_at=now, pending_password_enc="")


def _history_change(rotation: Rotation, secret: str) -> tuple:
    """(record, secret, set by, reason): a rotation's entry in the record's history."""
    requester = rotation.requested_by if rotation.requested_by_id else None
    reason = f"{rotation.get_trigger_display()} rotation {rotation.uid}"
    return (rotation.pam_user, secret, requester, reason)


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
    update_from_rows(
        RotationSettings,
        fields=["id", "updated_at", "next_run_at"],
        rows=[
            (rs.pk, rs.updated_at, next_run_at)
            for rs, next_run_at in zip(settings_rows, next_runs, strict=True)
        ],
        set_values={"last_rotated_at": now, "last_status": Rotation.SUCCEEDED},
        set_sql={
            "next_run_at": 'CASE WHEN {t}."updated_at" = v."updated_at" '
            'THEN v."next_run_at" ELSE {t}."next_run_at" END'
        },
    )


# --- fail --------------------------------------------------------------------------------------


def rotation_fail(*, rotation: Rotation, error: str) -> str:
    """End the rotation as failed. The pending secret survives if it may be live."""
    now = timezone.now()
    keep = rotation.pending_may_be_live
    with transaction.atomic():
        _hold_settings_first([rotation.pam_user_id])
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


_REQUESTER = object()


def audit_rotation(action: str, rotation: Rotation, **what) -> None:
    """Write a rotation's audit events (_rotation_events says which, and what `what` takes)."""
    for event in _rotation_events(action, rotation, **what):
        event.save(force_insert=True)


def _rotation_events(
    action: str,
    rotation: Rotation,
    *,
    details: dict,
    actor=_REQUESTER,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> list[AuditEvent]:
    """A rotation's audit events, unsaved: one where each party looks, the record's folder and
    the folder of the configuration whose credentials it used (its managers must see every
    use). The actor is whoever requested the rotation unless another is given (a person
    cancelling it)."""
    if actor is _REQUESTER:
        actor = rotation.requested_by if rotation.requested_by_id else None
    record = rotation.pam_user
    who = {"actor": actor, "actor_kind": actor_kind, "request": request}
    events = [audit_event(action, obj=record, details=details, **who)]
    config = rotation.configuration
    if config is not None and config.folder_id != record.folder_id:
        events.append(
            audit_event(
                action,
                obj=config,
                details={**details, "record": record.uid, "login": record.login},
                **who,
            )
        )
    return events


# --- cancel a rotation that has not started -----------------------------------------------------

# A committed pending secret: an earlier attempt may have sent it (a recovered lease).
_HOLDS_PENDING = ~Q(pending_password_enc="")
CANCEL_KEPT = (
    " An earlier attempt had saved a new password that AWS may already hold: it is kept as "
    "may be live until a person chooses which password to keep."
)


def _cancelled_by(actor, actor_kind: str) -> str:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return f"Cancelled by {actor.get_username()}"
    if actor_kind == "cli":
        return "Cancelled from the command line"
    return "Cancelled by the system"


def _why_not_cancelled(rotation: Rotation) -> str:
    now = Rotation.objects.filter(pk=rotation.pk).values_list("status", "gateway_name").first()
    if now is None:
        return "This rotation no longer exists."
    status, gateway_name = now
    if status == Rotation.RUNNING:
        return (
            f"This rotation has started on the gateway “{gateway_name}” and can no longer be "
            "cancelled: it ends by itself."
        )
    return f"This rotation has already ended ({status}): there is nothing to cancel."


def rotation_cancel(
    *,
    rotation: Rotation,
    actor=None,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
    reason: str = "",
) -> Rotation:
    """queued -> failed, for a rotation no worker holds: one conditional UPDATE, so a claim
    and a cancel never both win. Returns the cancelled rotation; RotationRequestError saying
    why when it is no longer queued.

    A pending secret an earlier attempt committed (the rotation was queued again after a
    recovered lease) may have reached AWS: it is kept and marked "may be live", decided in the
    same UPDATE from the row itself, exactly as a failure keeps it; its unanswered window
    stays too. Audited as `rotation.cancelled` in the record's folder and the configuration's.
    """
    now = timezone.now()
    error = _cancelled_by(actor, actor_kind) + " before it started"
    error += f": {reason.rstrip('.')}." if reason else "."
    with transaction.atomic():
        cancelled = Rotation.objects.filter(pk=rotation.pk, status=Rotation.QUEUED).update(
            status=Rotation.FAILED,
            finished_at=now,
            error=Case(
                When(_HOLDS_PENDING, then=Value(error + CANCEL_KEPT)),
                default=Value(error),
                output_field=TextField(),
            ),
            pending_may_be_live=Case(
                When(_HOLDS_PENDING, then=Value(True)), default=F("pending_may_be_live")
            ),
        )
        if not cancelled:
            raise RotationRequestError(_why_not_cancelled(rotation))
        done = Rotation.objects.select_related(
            "pam_user__folder", "configuration__folder", "requested_by"
        ).get(pk=rotation.pk)
        kept = done.pending_may_be_live and done.has_secret("pending_password")
        RotationSettings.objects.filter(pam_user_id=done.pam_user_id).update(
            last_status=Rotation.FAILED
        )
        audit_rotation(
            "rotation.cancelled",
            done,
            actor=actor,
            actor_kind=actor_kind,
            request=request,
            details={
                "rotation": done.uid,
                "gateway": done.gateway_name,
                "reason": reason,
                "may_be_live": kept,
            },
        )
    logger.info("rotation %s cancelled: %s", done.uid, error)
    return done


# --- rotation settings saved while a rotation waits ---------------------------------------------


@dataclass(frozen=True)
class SettingsFollowUp:
    """What saving rotation settings did to the record's active rotation: ``outcome`` is
    "rerouted" (it goes with the new settings), "cancelled" (they cannot run it) or "kept" (it
    started: it ends where it is); ``message`` tells the person."""

    rotation: Rotation
    outcome: str
    message: str


def _kept(rotation: Rotation) -> SettingsFollowUp:
    gateway = rotation.gateway_name
    if rotation.status == Rotation.RUNNING:
        text = (
            f"The rotation already running on the gateway “{gateway}” finishes with the "
            "configuration it started with; these settings apply from the next rotation."
        )
    else:
        text = (
            f"The waiting rotation stays with the gateway “{gateway}” and the configuration "
            "it started with: an earlier attempt saved a new password that AWS may already "
            "hold. If that gateway will not come back, cancel it on the record's page (Cancel "
            "rotation); the password is then kept as may be live."
        )
    return SettingsFollowUp(rotation=rotation, outcome="kept", message=text)


def rotation_follow_settings(
    *,
    record: PamUser,
    rs: RotationSettings,
    actor=None,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> SettingsFollowUp | None:
    """After `rs` was saved: the record's active rotation follows them if it has not started.

    Nothing to do (None) without an active rotation, or when it already uses the settings'
    configuration and gateway. A rotation that is running, or queued again holding a committed
    secret (it may have reached AWS through its configuration), is kept where it is. Otherwise,
    when the new settings may be requested (rotation_request_problem), the rotation takes their
    configuration and gateway in one UPDATE conditional on it still being queued without a
    secret, and is handed to the new gateway; when they may not, it is cancelled, saying why.
    """
    active = (
        Rotation.objects.filter(pam_user=record, status__in=Rotation.ACTIVE)
        .select_related("configuration")
        .first()
    )
    if active is None:
        return None
    config = rs.configuration
    gateway = config.gateway
    if active.configuration_id == config.pk and active.gateway_name == gateway.name:
        return None
    if active.status == Rotation.RUNNING or active.has_secret("pending_password"):
        return _kept(active)
    old_gateway = active.gateway_name
    problem = rotation_request_problem(record=record, rs=rs)
    if problem:
        if not rs.enabled:
            problem = "rotation is now disabled for this record."
        try:
            rotation_cancel(
                rotation=active,
                actor=actor,
                actor_kind=actor_kind,
                request=request,
                reason=f"the rotation settings were saved with the configuration "
                f"“{config.title}”, which cannot run it: {problem}",
            )
        except RotationRequestError:
            return _kept(Rotation.objects.get(pk=active.pk))  # it started meanwhile
        return SettingsFollowUp(
            rotation=active,
            outcome="cancelled",
            message=f"The rotation waiting for the gateway “{old_gateway}” was cancelled: "
            f"{problem}",
        )
    return _reroute(active, config, actor=actor, actor_kind=actor_kind, request=request)


def _reroute(
    rotation: Rotation, config: PamConfiguration, *, actor, actor_kind: str, request
) -> SettingsFollowUp:
    old_gateway, old_config = rotation.gateway_name, rotation.configuration
    gateway = config.gateway
    moved = Rotation.objects.filter(
        pk=rotation.pk, status=Rotation.QUEUED, pending_password_enc=""
    ).update(configuration=config, gateway_name=gateway.name, lease_expires_at=lease_deadline())
    if not moved:
        return _kept(Rotation.objects.get(pk=rotation.pk))  # it started meanwhile
    rotation.configuration, rotation.gateway_name = config, gateway.name
    audit_rotation(
        "rotation.rerouted",
        rotation,
        actor=actor,
        actor_kind=actor_kind,
        request=request,
        details={
            "rotation": rotation.uid,
            "from_gateway": old_gateway,
            "gateway": gateway.name,
            "from_configuration": old_config.uid if old_config else None,
            "configuration": config.uid,
        },
    )
    if gateway.name == old_gateway:
        # Its task is already on that gateway, which claims it with the new configuration.
        text = f"The waiting rotation now uses the configuration “{config.title}”."
    else:
        transaction.on_commit(lambda: dispatch.enqueue_rotation(rotation))
        text = f"The rotation waiting for the gateway “{old_gateway}” now goes to “{gateway.name}”"
        text += (
            "."
            if gateway.is_online
            else ", which is offline too: it runs when that gateway is back."
        )
    return SettingsFollowUp(rotation=rotation, outcome="rerouted", message=text)


def rotation_settings_change(
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
) -> tuple[RotationSettings, SettingsFollowUp | None]:
    """rotation_settings_save, and the record's waiting rotation following the saved settings
    (rotation_follow_settings), in one transaction. The settings page and `pam rotation edit`
    save through here. The method and grace periods None keep what is stored."""
    who = {"actor": actor, "actor_kind": actor_kind, "request": request}
    with transaction.atomic():
        rs = rotation_settings_save(
            record=record,
            configuration=configuration,
            schedule=schedule,
            use_configuration_schedule=use_configuration_schedule,
            complexity=complexity,
            enabled=enabled,
            method=method,
            key_deactivate_after_hours=key_deactivate_after_hours,
            key_delete_after_hours=key_delete_after_hours,
            **who,
        )
        follow_up = rotation_follow_settings(record=record, rs=rs, **who)
    return rs, follow_up


# --- a person resolves a possibly-live secret --------------------------------------------------


def rotation_resolve(
    *,
    rotation: Rotation,
    use_pending: bool,
    actor=None,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> None:
    """Settle a failed rotation's possibly-live password: adopt it, or keep the current one."""
    with transaction.atomic():
        locked = Rotation.objects.select_for_update().get(pk=rotation.pk)
        if not (locked.holds_possibly_live_password or locked.holds_unanswered_password):
            raise RotationRequestError("This rotation has nothing left to resolve.")
        record = PamUser.objects.select_for_update().get(pk=locked.pam_user_id)
        key_id = locked.pending_access_key_id
        running = Rotation.objects.filter(pam_user_id=record.pk, status__in=Rotation.ACTIVE)
        if key_id and running.exists():
            # Its making room may be deleting this very key: settle it after that rotation.
            raise RotationRequestError(
                "A rotation of this record is in progress; settle this key after it ends."
            )
        if key_id:
            resolve_access_key(locked, record, use_pending=use_pending, actor=actor)
        elif use_pending:
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
            actor_kind=actor_kind,
            obj=record,
            request=request,
            details={
                "rotation": locked.uid,
                "kept": "pending" if use_pending else "current",
                **({"access_key_id": key_id} if key_id else {}),
            },
        )


def resolve_access_key(rotation: Rotation, record: PamUser, *, use_pending: bool, actor) -> None:
    """A possibly-live access key is a key in AWS either way: adopted, the record's current
    key is retired in its place; not adopted, it is retired itself (deactivated and deleted
    by the gateway at once: nobody was ever handed it)."""
    now = timezone.now()
    if use_pending:
        replaced = record.access_key_id
        pam_users_set_access_keys(
            changes=[
                (
                    record,
                    rotation.get_secret("pending_password"),
                    actor,
                    f"adopted the possibly-live key of rotation {rotation.uid}",
                    rotation.pending_access_key_id,
                )
            ],
            source="resolution",
        )
        record.save(update_fields=["access_key_id", "access_secret_key_enc", "updated_at"])
        # A record without settings retires on the settings' defaults.
        rs = getattr(record, "rotation_settings", None) or RotationSettings()
        grace = timedelta(hours=rs.key_deactivate_after_hours)
        after = timedelta(hours=rs.key_delete_after_hours)
        retire, deactivate_at = replaced, now + grace
    else:
        retire, deactivate_at, after = rotation.pending_access_key_id, now, timedelta(0)
    if retire:
        KeyRetirement.objects.get_or_create(
            pam_user=record,
            access_key_id=retire,
            defaults={
                "configuration": rotation.configuration,
                "rotation": rotation,
                "deactivate_at": deactivate_at,
                "delete_at": deactivate_at + after,
            },
        )


def _possibly_live(pam_user_ids) -> QuerySet[Rotation]:
    """Failed rotations of these records (an id, a list, or an OuterRef) whose pending
    secret may be live and is not resolved yet."""
    lookup = "pam_user_id__in" if isinstance(pam_user_ids, list) else "pam_user_id"
    return Rotation.objects.filter(
        **{lookup: pam_user_ids},
        status=Rotation.FAILED,
        pending_may_be_live=True,
        resolved_at__isnull=True,
    )


def _unanswered_kept(pam_user_ids) -> QuerySet[Rotation]:
    """Succeeded rotations of these records (an id, a list, or an OuterRef) still keeping their
    password because a request of theirs went unanswered (see rotations_retire_unanswered)."""
    lookup = "pam_user_id__in" if isinstance(pam_user_ids, list) else "pam_user_id"
    return Rotation.objects.filter(
        **{lookup: pam_user_ids},
        status=Rotation.SUCCEEDED,
        unanswered_until__isnull=False,
        resolved_at__isnull=True,
    ).exclude(pending_password_enc="")


def rotation_wait_until(record: PamUser) -> datetime | None:
    """Until when the record's next rotation waits for an earlier one's unanswered request,
    or None."""
    waits = Rotation.objects.filter(pam_user=record, unanswered_until__gt=timezone.now())
    found = waits.exclude(status__in=Rotation.ACTIVE).order_by("-unanswered_until").first()
    return found.unanswered_until if found else None


def rotations_retire_unanswered(*, now: datetime | None = None) -> int:
    """Succeeded rotations whose unanswered request can no longer arrive stop keeping their
    password, when the record still holds it (nothing else happened meanwhile). Otherwise
    the password stays a candidate that a person resolves. Returns how many were retired."""
    now = now or timezone.now()
    retired = 0
    for rotation in Rotation.objects.filter(
        status=Rotation.SUCCEEDED,
        unanswered_until__lt=now,
        resolved_at__isnull=True,
    ).exclude(pending_password_enc=""):
        with transaction.atomic():
            record = PamUser.objects.select_for_update().get(pk=rotation.pam_user_id)
            held = {record.get_secret("password"), record.get_secret("access_secret_key")}
            if rotation.get_secret("pending_password") not in held:
                continue
            retired += Rotation.objects.filter(
                pk=rotation.pk, pending_password_enc=rotation.pending_password_enc
            ).update(pending_password_enc="")
    return retired


def possibly_live_rotations(record: PamUser) -> QuerySet[Rotation]:
    """The record's failed rotations holding a password that may be live, to show or resolve."""
    return _possibly_live(record.pk).exclude(pending_password_enc="")


# --- recovery of expired leases ----------------------------------------------------------------


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
            lease_expires_at=lease_deadline(now),
            pending_may_be_live=_MAY_BE_LIVE_NOW,
            unanswered_until=_unanswered_now(now),
        )
        if moved:
            recovered += 1
            transaction.on_commit(lambda r=rotation: dispatch.enqueue_rotation(r))
    return recovered


# A killed worker may have acted once its pending secret was committed. Decided by the
# database in the same UPDATE that takes the rotation away from the worker, never from a copy
# read earlier: the worker may have committed its pending secret since that read.
_MAY_BE_LIVE_NOW = Case(
    When(Q(status=Rotation.RUNNING) & ~Q(pending_password_enc=""), then=Value(True)),
    default=F("pending_may_be_live"),
)


def _unanswered_now(now: datetime) -> Case:
    """A worker that lost its lease while it held a committed secret, or while it was in a
    step that changes the target (CreateAccessKey: Rotation.step), may have sent a request
    that is still on its way: decided in the same UPDATE as _MAY_BE_LIVE_NOW."""
    return Case(
        When(
            Q(status=Rotation.RUNNING) & (~Q(pending_password_enc="") | ~Q(step="")),
            then=Value(unanswered_deadline(now)),
        ),
        default=F("unanswered_until"),
        output_field=DateTimeField(),
    )


def lease_lost_message(attempts: int) -> str:
    return (
        f"No gateway finished this rotation within its lease ({settings.ROTATION_LEASE_SECONDS} "
        f"s), {attempts} times: a gateway stopped or lost its database, or its calls to AWS "
        "took longer than the lease. Giving up; see the gateways' logs, and raise "
        "ROTATION_LEASE_SECONDS if calls to AWS are that slow."
    )


def _recover_exhausted(rotation: Rotation, taken: QuerySet[Rotation], now: datetime) -> None:
    error = lease_lost_message(rotation.attempts)
    with transaction.atomic():
        _hold_settings_first([rotation.pam_user_id])
        # Fail it without discarding anything: a pending secret that exists may be live.
        if not taken.update(
            status=Rotation.FAILED,
            finished_at=now,
            error=error,
            pending_may_be_live=_MAY_BE_LIVE_NOW,
            unanswered_until=_unanswered_now(now),
        ):
            return
        keep = Rotation.objects.filter(pk=rotation.pk, pending_may_be_live=True).exists()
        _after_failure(rotation, error=error, keep=keep, now=now)
    logger.info("rotation %s failed: %s", rotation.uid, error)
