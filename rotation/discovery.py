"""Discover IAM users: a configuration's account listed on its gateway, and the users a person
picks imported as PAM User records with rotation settings.

- ``discovery_start`` (web or CLI): checks who asks, records a DiscoveryJob (one active per
  configuration, by a database constraint) and hands it to the configuration's gateway after
  commit, as Test connection does. The web never talks to AWS.
- ``discovery_run`` (the gateway's task): checks its authority from the database, reads the IAM
  credential report (about three calls for the whole account, not one per user: console access
  and access keys), then pages through ListUsers saving each page's users, complete, and the
  next marker in one transaction (a restarted gateway resumes from the marker: the job has a
  lease, ``discovery_recover`` re-queues it when the lease runs out). Users outside the
  configuration's target scope are never saved. Throttling and other transient answers hand the job back to be resumed
  later; a job not finished within DISCOVERY_MAX_SECONDS fails.
- ``discovered_users``: the filters of the discovery page and the CLI.
- ``discovery_import``: the chosen users become PAM Users (title "AWS user: NAME", login, ARN,
  no password: the first rotation sets it) with rotation settings on the configuration and its
  default schedule, in one transaction with a bounded number of queries (bulk inserts), never
  duplicating a user the vault already holds; audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from rotation import dispatch
from rotation.models import DiscoveredUser, DiscoveryJob, RotationSettings
from rotation.schedules import ScheduleError, next_run
from vault import access
from vault.audit import audit_events_bulk, audit_record, client_ip
from vault.models import AuditEvent, Gateway, PamConfiguration, PamUser, SharedFolder

logger = logging.getLogger(__name__)

# A job not finished this long after it was requested fails (throttled for an hour, or a
# gateway that keeps dying): a person starts another one.
DISCOVERY_MAX_SECONDS = 3600
# After a transient answer (throttling, 5xx after botocore's retries, a timeout), the job is
# resumed by the gateway's tick once this has passed.
DISCOVERY_RESUME_SECONDS = 30
TITLE_PREFIX = "AWS user: "
LISTING, REPORT = "listing", "report"
# Users per ListUsers call: AWS's largest page (rotation/aws.py).
PAGE_SIZE = 1000


class DiscoveryError(Exception):
    """A discovery cannot be started or imported; the message says why, nothing changed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _lease(now: datetime | None = None, seconds: float | None = None) -> datetime:
    return (now or timezone.now()) + timedelta(
        seconds=settings.ROTATION_LEASE_SECONDS if seconds is None else seconds
    )


# --- start -----------------------------------------------------------------------------------


def active_job(config: PamConfiguration) -> DiscoveryJob | None:
    return DiscoveryJob.objects.filter(configuration=config, status__in=DiscoveryJob.ACTIVE).first()


def latest_job(config: PamConfiguration) -> DiscoveryJob | None:
    return DiscoveryJob.objects.filter(configuration=config).first()


def _already_running(job: DiscoveryJob) -> DiscoveryError:
    return DiscoveryError(
        f"A discovery of “{job.configuration.title}” is already {job.status} (job {job.uid}, "
        f"requested {job.created_at:%Y-%m-%d %H:%M:%S} UTC): wait for it to finish."
    )


def discovery_start(
    *,
    configuration: PamConfiguration,
    actor=None,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> DiscoveryJob:
    """Record a discovery of `configuration`'s account and hand it to its gateway after commit.

    `actor` None is the CLI's operator (actor_kind "cli"). PermissionDenied when the person may
    not; DiscoveryError when the configuration cannot be used now or a discovery is active."""
    config = configuration
    problem = access.discovery_problem(actor, config)
    if problem:
        raise PermissionDenied(problem)
    problem = access.configuration_problem(config, config.gateway)
    if problem:
        raise DiscoveryError(problem)
    running = active_job(config)
    if running is not None:
        raise _already_running(running)
    try:
        with transaction.atomic():
            job = DiscoveryJob.objects.create(
                configuration=config,
                gateway_name=config.gateway.name,
                requested_by=actor if getattr(actor, "is_authenticated", False) else None,
                phase=REPORT,
                lease_expires_at=_lease(),
            )
            audit_record(
                "discovery.started",
                actor=actor,
                actor_kind=actor_kind,
                obj=config,
                folder=config.folder,
                request=request,
                details={"job": job.uid, "gateway": job.gateway_name},
            )
            transaction.on_commit(lambda: _hand_over(job))
    except IntegrityError:
        # Two presses at once: the constraint let one through.
        running = active_job(config)
        if running is None:
            raise
        raise _already_running(running) from None
    return job


def _hand_over(job: DiscoveryJob) -> None:
    if dispatch.enqueue_discovery(job):
        return
    # The broker refused it: the gateway's tick hands it over once its lease runs out.
    logger.warning("discovery %s stays queued for the gateway's tick", job.uid)


# --- run (on the gateway) --------------------------------------------------------------------


class _LeaseLost(Exception):
    """Another worker took the job over; this one stops without writing."""


@dataclass
class _Run:
    job: DiscoveryJob
    lease: datetime
    calls: int = 0


def _claim(job_id: int, now: datetime) -> tuple[int, datetime]:
    lease = _lease(now)
    claimable = Q(status=DiscoveryJob.QUEUED) | Q(
        status=DiscoveryJob.RUNNING, lease_expires_at__lt=now
    )
    claimed = DiscoveryJob.objects.filter(claimable, pk=job_id).update(
        status=DiscoveryJob.RUNNING, lease_expires_at=lease
    )
    if claimed:
        DiscoveryJob.objects.filter(pk=job_id, started_at__isnull=True).update(started_at=now)
    return claimed, lease


def _save(run: _Run, **changes) -> None:
    """Write the job's progress while this worker holds its lease, renewing it."""
    lease = changes.pop("lease_expires_at", _lease())
    updated = DiscoveryJob.objects.filter(
        pk=run.job.pk, status=DiscoveryJob.RUNNING, lease_expires_at=run.lease
    ).update(lease_expires_at=lease, **changes)
    if not updated:
        raise _LeaseLost
    run.lease = lease
    for name, value in changes.items():
        if not hasattr(value, "resolve_expression"):
            setattr(run.job, name, value)


def discovery_run(*, job_id: int) -> str:
    """The gateway's task: list the account's users (resuming at the saved marker), read the
    credential report, finish. Returns the job's status, "waiting" (handed back after a
    transient answer) or "skipped" (another worker has it, or it ended)."""
    now = timezone.now()
    claimed, lease = _claim(job_id, now)
    if not claimed:
        return "skipped"
    job = DiscoveryJob.objects.select_related(
        "configuration__folder", "configuration__gateway", "requested_by"
    ).get(pk=job_id)
    run = _Run(job=job, lease=lease)
    try:
        return _run(run)
    except _LeaseLost:
        return "skipped"


def _run(run: _Run) -> str:
    job = run.job
    config = job.configuration
    if timezone.now() - job.created_at > timedelta(seconds=DISCOVERY_MAX_SECONDS):
        return _fail(run, f"The discovery did not finish within {DISCOVERY_MAX_SECONDS // 60} "
                     "minutes of its request. Start it again.")  # fmt: skip
    gateway = Gateway.objects.select_related("application").filter(name=job.gateway_name).first()
    if gateway is None:
        return _fail(run, f"The gateway “{job.gateway_name}” no longer exists.")
    # Before any AWS call: shares, gateways, the configuration and the requester's rights may
    # have changed since the request.
    problem = access.configuration_problem(config, gateway) or _requester_problem(job)
    if problem:
        return _fail(run, problem)
    from rotation import aws  # only the gateway loads the AWS client

    try:
        report, users_note = _read_report(run, aws)
        _list_users(run, aws, report)
    except aws.AwsTransient as exc:
        return _hand_back(run, exc.message)
    except aws.AwsRefused as exc:
        return _fail(run, exc.message)
    except _LeaseLost:
        raise
    except Exception as exc:  # noqa: BLE001 - a job must end or wait, never stay running
        logger.exception("Discovery %s failed unexpectedly", job.uid)
        return _fail(run, f"The gateway could not run the discovery ({type(exc).__name__}); "
                     "see its log.")  # fmt: skip
    return _succeed(run, users_note)


def _requester_problem(job: DiscoveryJob) -> str | None:
    if job.requested_by is None:
        return None
    return access.discovery_problem(job.requested_by, job.configuration)


def _in_scope(config: PamConfiguration, user: dict) -> bool:
    return access.scope_allows_path(config, user["path"]) and access.scope_allows_name(
        config, user["user_name"]
    )


def _read_report(run: _Run, aws) -> tuple[dict | None, str]:
    """The credential report (console access, access keys) by user name, read before the
    listing so each page's users are saved complete, in one INSERT (no update pass over
    10,000 rows). A resumed job reads it again: AWS keeps a generated report for four hours,
    so that is two calls. (None, note) when AWS refuses the report: the listing goes on and
    those columns stay unknown."""
    if run.job.phase != REPORT:
        _save(run, phase=REPORT)
    count = aws.CallCount()
    try:
        return aws.credential_report(run.job.configuration, count=count), ""
    except aws.AwsRefused as exc:
        return None, (
            "The users are listed, but their console access and access keys are unknown: "
            f"the IAM credential report could not be read. {exc.message}"
        )
    finally:
        run.calls += count.n


def _report_fields(report: dict | None, name: str) -> dict:
    line = report.get(name) if report is not None else None
    if line is None:  # no report, or the user was created after it was generated: unknown
        return {}
    created = [k["created"] for k in line.access_keys if k.get("created")]
    return {
        "console_access": line.console_access,
        "password_last_used": line.password_last_used,
        "access_keys": line.access_keys,
        "oldest_key_created": datetime.fromisoformat(min(created)) if created else None,
    }


def _list_users(run: _Run, aws, report: dict | None) -> None:
    job, config = run.job, run.job.configuration
    while True:
        count = aws.CallCount()
        try:
            page = aws.list_users_page(
                config,
                count=count,
                marker=job.next_marker,
                max_items=PAGE_SIZE,
                path_prefix=config.scope_path_prefix,
            )
        finally:
            run.calls += count.n
        users = [u for u in page.users if _in_scope(config, u)]
        known = _vault_records([(u["user_name"], u["arn"]) for u in users])
        rows = [
            DiscoveredUser(
                job=job,
                user_name=u["user_name"][:64],
                user_id=u["user_id"][:128],
                arn=u["arn"][:2048],
                path=u["path"][:512],
                created_at=u["created_at"],
                record_id=known[u["user_name"]].pk if u["user_name"] in known else None,
                **_report_fields(report, u["user_name"]),
            )
            for u in users
        ]
        with transaction.atomic():
            # ignore_conflicts: a page saved by a worker killed before it wrote the marker.
            DiscoveredUser.objects.bulk_create(rows, ignore_conflicts=True)
            found = DiscoveredUser.objects.filter(job=job).count()
            _save(
                run,
                next_marker=page.next_marker,
                pages_done=job.pages_done + 1,
                users_found=found,
                aws_calls=job.aws_calls + run.calls,
                phase=LISTING,
                error="",
            )
        run.calls = 0
        if not page.next_marker:
            return


def arn_account(arn: str) -> str | None:
    """The AWS account id of an IAM user ARN ("arn:PARTITION:iam::ACCOUNT:user/PATH/NAME"), or
    None for anything else (blank, or typed some other way)."""
    parts = (arn or "").strip().split(":", 5)
    if (
        len(parts) == 6
        and parts[0] == "arn"
        and parts[2] == "iam"
        and parts[4]
        and parts[5].startswith("user/")
    ):
        return parts[4]
    return None


@dataclass(frozen=True)
class _Held:
    pk: int
    uid: str
    folder_id: int


def _vault_records(users: list[tuple[str, str]]) -> dict[str, _Held]:
    """The vault record of each discovered (user name, ARN), by user name, in any folder
    (through the login index); the oldest when several match.

    A record is the IAM user's when its login is the user name and its ARN names the same AWS
    account, whatever its path (a typed ARN often lacks it). A record whose ARN is blank or is
    no IAM user ARN matches on the login alone: it may well be this user, and a second record
    would rotate the same password against the first, whereas a user left out says so and
    is imported once the record's ARN is filled in. Only a record naming another account is
    another user."""
    accounts = {name: arn_account(arn) for name, arn in users}
    names = list(accounts)
    found: dict[str, _Held] = {}
    for start in range(0, len(names), 500):
        rows = PamUser.objects.filter(login__in=names[start : start + 500]).order_by("pk")
        for pk, uid, folder_id, login, arn in rows.values_list(
            "pk", "uid", "folder_id", "login", "distinguished_name"
        ):
            account = arn_account(arn)
            if login not in accounts or login in found:
                continue
            if account is not None and account != accounts[login]:
                continue
            found[login] = _Held(pk, uid, folder_id)
    return found


def _succeed(run: _Run, note: str) -> str:
    job = run.job
    with transaction.atomic():
        _save(
            run,
            status=DiscoveryJob.SUCCEEDED,
            phase="",
            finished_at=timezone.now(),
            aws_calls=job.aws_calls + run.calls,
            lease_expires_at=None,
            error=note,
        )
        _audit_finished(job, note)
    return DiscoveryJob.SUCCEEDED


def _fail(run: _Run, message: str) -> str:
    job = run.job
    with transaction.atomic():
        _save(
            run,
            status=DiscoveryJob.FAILED,
            finished_at=timezone.now(),
            aws_calls=job.aws_calls + run.calls,
            lease_expires_at=None,
            error=message,
        )
        _audit_finished(job, message)
    return DiscoveryJob.FAILED


def _hand_back(run: _Run, message: str) -> str:
    """A transient answer: keep everything saved, let the gateway's tick resume it later."""
    job = run.job
    _save(
        run,
        aws_calls=job.aws_calls + run.calls,
        error=f"Waiting to resume: {message}",
    )
    # The lease now ends at the resume time; the tick re-queues the job after it.
    DiscoveryJob.objects.filter(pk=job.pk, lease_expires_at=run.lease).update(
        lease_expires_at=_lease(seconds=DISCOVERY_RESUME_SECONDS)
    )
    return "waiting"


def _audit_finished(job: DiscoveryJob, error: str) -> None:
    config = job.configuration
    details = {
        "job": job.uid,
        "gateway": job.gateway_name,
        "outcome": job.status,
        "users_found": job.users_found,
        "aws_calls": job.aws_calls,
    }
    if error:
        details["error"] = error
    audit_record(
        "discovery.finished",
        actor=job.requested_by,
        actor_kind="user" if job.requested_by else "system",
        obj=config,
        folder=config.folder,
        details=details,
    )


def discovery_recover(*, gateway_name: str | None = None, now: datetime | None = None) -> int:
    """Re-queue this gateway's discoveries whose lease ran out (a killed worker, a lost task
    message, a job handed back after throttling) and hand them over again; fail those past
    DISCOVERY_MAX_SECONDS. Returns how many were re-queued."""
    now = now or timezone.now()
    expired = DiscoveryJob.objects.filter(
        status__in=DiscoveryJob.ACTIVE, lease_expires_at__lt=now
    ).select_related("configuration__folder")
    if gateway_name is not None:
        expired = expired.filter(gateway_name=gateway_name)
    requeued = 0
    for job in expired:
        taken = DiscoveryJob.objects.filter(
            pk=job.pk, status=job.status, lease_expires_at=job.lease_expires_at
        )
        if now - job.created_at > timedelta(seconds=DISCOVERY_MAX_SECONDS):
            message = (
                f"The discovery did not finish within {DISCOVERY_MAX_SECONDS // 60} minutes "
                "of its request (its gateway was offline or AWS kept throttling). Start it again."
            )
            with transaction.atomic():
                if taken.update(
                    status=DiscoveryJob.FAILED,
                    finished_at=now,
                    lease_expires_at=None,
                    error=message,
                ):
                    job.status = DiscoveryJob.FAILED
                    _audit_finished(job, message)
            continue
        if taken.update(status=DiscoveryJob.QUEUED, lease_expires_at=_lease(now)):
            requeued += 1
            transaction.on_commit(lambda j=job: dispatch.enqueue_discovery(j))
    return requeued


# --- progress and filters --------------------------------------------------------------------


def discovery_progress(job: DiscoveryJob) -> dict:
    """What the page's poll and the CLI show about a job (nothing secret)."""
    return {
        "job": job.uid,
        "configuration": job.configuration.uid,
        "gateway": job.gateway_name,
        "status": job.status,
        "label": job.get_status_display(),
        "phase": job.phase,
        "active": job.is_active,
        "users_found": job.users_found,
        "pages_done": job.pages_done,
        "aws_calls": job.aws_calls,
        "error": job.error,
        "created": job.created_at.isoformat() if job.created_at else None,
        "started": job.started_at.isoformat() if job.started_at else None,
        "finished": job.finished_at.isoformat() if job.finished_at else None,
    }


@dataclass
class UserFilter:
    """The discovery page's and the CLI's filters; empty fields filter nothing."""

    path_prefix: str = ""
    console: bool | None = None  # True: has console access; False: has none
    key_older_than_days: int | None = None
    not_in_vault: bool = False
    name: str = ""  # part of the user name


def discovered_users(job: DiscoveryJob, filters: UserFilter | None = None) -> QuerySet:
    """The job's users matching `filters`, by user name (the (job, user_name) index)."""
    rows = DiscoveredUser.objects.filter(job=job)
    f = filters or UserFilter()
    if f.path_prefix:
        rows = rows.filter(path__startswith=f.path_prefix)
    if f.console is not None:
        rows = rows.filter(console_access=f.console)
    if f.key_older_than_days is not None:
        cutoff = timezone.now() - timedelta(days=f.key_older_than_days)
        rows = rows.filter(oldest_key_created__lt=cutoff)
    if f.not_in_vault:
        rows = rows.filter(record__isnull=True)
    if f.name:
        rows = rows.filter(user_name__icontains=f.name)
    return rows.order_by("user_name", "id")


# --- import ----------------------------------------------------------------------------------


@dataclass
class ImportOutcome:
    """name -> record uid for every chosen user whose record the actor may see (all of them
    for the CLI's operator); `created` the names of new records, `existing` those the vault
    already held (never created twice), `hidden` how many of those are in folders the actor
    is not a member of (their uids are left out of `users`)."""

    users: dict[str, str]
    created: list[str]
    existing: list[str]
    hidden: int = 0


def discovery_import(
    *,
    job: DiscoveryJob,
    folder: SharedFolder,
    user_names: list[str] | None = None,
    filters: UserFilter | None = None,
    actor=None,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> ImportOutcome:
    """Import the job's users named in `user_names` (or, when it is None, every user matching
    `filters`) into `folder`, all or nothing. PermissionDenied when the person may not;
    DiscoveryError (nothing changed) for a bad choice."""
    config = job.configuration
    problem = access.discovery_import_problem(actor, config, folder)
    if problem:
        raise PermissionDenied(problem)
    if job.status != DiscoveryJob.SUCCEEDED:
        raise DiscoveryError(
            f"The discovery {job.uid} has not finished successfully ({job.status}): import "
            "from a finished discovery."
        )
    problem = access.folder_problem(config, folder, config.gateway)
    if problem:
        raise DiscoveryError(problem)
    try:
        # The configuration's default schedule is stored normalised; a broken one is refused.
        first_run = next_run(config.default_rotation_schedule or {"type": "ON_DEMAND"},
                             timezone.now())  # fmt: skip
    except ScheduleError as exc:
        raise DiscoveryError(
            f"The default rotation schedule of “{config.title}” is not valid ({exc}): edit the "
            "configuration first."
        ) from None
    chosen = _chosen(job, user_names, filters)
    with transaction.atomic():
        outcome = _import(job, folder, config, chosen, first_run, actor, actor_kind, request)
    return outcome


def _chosen(job: DiscoveryJob, names: list[str] | None, filters: UserFilter | None) -> list:
    fields = ("pk", "user_name", "arn", "path")
    if names is None:
        return list(discovered_users(job, filters).only(*fields))
    wanted = list(dict.fromkeys(n for n in names if n))
    if not wanted:
        raise DiscoveryError("Choose at least one user to import.")
    rows = []
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        rows += DiscoveredUser.objects.filter(job=job, user_name__in=part).only(*fields)
    missing = sorted(set(wanted) - {r.user_name for r in rows})
    if missing:
        raise DiscoveryError(
            f"Not found by discovery {job.uid}: {_names(missing)}. Nothing was imported."
        )
    return sorted(rows, key=lambda r: r.user_name)


def _names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _import(job, folder, config, chosen, first_run, actor, actor_kind, request) -> ImportOutcome:
    if not chosen:
        raise DiscoveryError("No discovered user matches: nothing to import.")
    outside = [
        u.user_name
        for u in chosen
        if not (
            access.scope_allows_path(config, u.path)
            and access.scope_allows_name(config, u.user_name)
        )
    ]
    if outside:
        raise DiscoveryError(
            f"Outside the target scope of “{config.title}” now: {_names(outside)}. "
            "Nothing was imported."
        )
    # Two imports at once (the page and the CLI, or into two folders) would both find no
    # record and both create one: each waits here for the configuration's row, so the second
    # reads the records the first committed. (A no-op on SQLite, which runs one writer at a
    # time; NO KEY: rotation settings and rotations may still reference the configuration.)
    list(
        PamConfiguration.objects.select_for_update(no_key=True)
        .filter(pk=config.pk)
        .values_list("pk", flat=True)
    )
    # Every record of these IAM users, in any folder: never a second one.
    held = _vault_records([(u.user_name, u.arn) for u in chosen])
    new = [u for u in chosen if u.user_name not in held]
    titles = {f"{TITLE_PREFIX}{u.user_name}": u for u in new}
    taken = []
    title_list = list(titles)
    for start in range(0, len(title_list), 500):
        taken += PamUser.objects.filter(
            folder=folder, title__in=title_list[start : start + 500]
        ).values_list("title", flat=True)
    if taken:
        raise DiscoveryError(
            f"The folder “{folder.name}” already has records titled {_names(sorted(taken))} for "
            "other IAM users: rename or move them first. Nothing was imported."
        )
    records = [
        PamUser(folder=folder, title=title, login=u.user_name, distinguished_name=u.arn)
        for title, u in titles.items()
    ]
    PamUser.objects.bulk_create(records)
    if records and not all(r.pk for r in records):  # a database without RETURNING
        pks = dict(
            PamUser.objects.filter(uid__in=[r.uid for r in records]).values_list("uid", "pk")
        )
        for r in records:
            r.pk = r.id = pks[r.uid]
    RotationSettings.objects.bulk_create(
        [
            RotationSettings(
                pam_user=r,
                configuration=config,
                schedule={"type": "ON_DEMAND"},
                use_configuration_schedule=True,
                enabled=True,
                next_run_at=first_run,
            )
            for r in records
        ]
    )
    by_name = {r.login: r for r in records}
    found = []
    for u in chosen:
        u.record_id = by_name[u.user_name].pk if u.user_name in by_name else held[u.user_name].pk
        found.append(u)
    DiscoveredUser.objects.bulk_update(found, ["record"], batch_size=500)
    _audit_import(job, folder, config, records, actor, actor_kind, request)
    existing = [u.user_name for u in chosen if u.user_name not in by_name]
    # Uids only of records the actor may see: the others' are not theirs to learn.
    visible = access.visible_record_pks(actor, [held[name].pk for name in existing])
    users = {r.login: r.uid for r in records}
    users.update({n: held[n].uid for n in existing if held[n].pk in visible})
    return ImportOutcome(
        users={u.user_name: users[u.user_name] for u in chosen if u.user_name in users},
        created=[r.login for r in records],
        existing=existing,
        hidden=sum(1 for n in existing if held[n].pk not in visible),
    )


def _audit_import(job, folder, config, records, actor, actor_kind, request) -> None:
    """Each record's own "record.created" and "rotation_settings.created" (two bulk inserts,
    as pam_user_create and rotation_settings_save would write them), then one summary event
    in the folder and one in the configuration's folder (these reach the events outbox)."""
    person = actor if getattr(actor, "is_authenticated", False) else None
    kind = actor_kind if person is not None or actor_kind != "user" else "system"
    ip = client_ip(request)
    common = {"source": "discovery", "job": job.uid}
    events = []
    for r in records:
        for action, details in (
            ("record.created", common),
            (
                "rotation_settings.created",
                {
                    **common,
                    "configuration": config.uid,
                    "schedule": "configuration default",
                    "configuration_default": config.default_rotation_schedule
                    or {"type": "ON_DEMAND"},
                    "complexity": RotationSettings().complexity_text,
                    "enabled": True,
                },
            ),
        ):
            events.append(
                AuditEvent(
                    actor=person,
                    actor_kind=kind,
                    action=action,
                    object_type="pamuser",
                    object_uid=r.uid,
                    object_repr=str(r)[:300],
                    folder=folder,
                    source_ip=ip,
                    details=details,
                )
            )
    audit_events_bulk(events)
    summary = {
        "job": job.uid,
        "configuration": config.uid,
        "folder": folder.uid,
        "created": len(records),
        "records": {r.login: r.uid for r in records},
    }
    audit_record(
        "discovery.imported",
        actor=person,
        actor_kind=kind,
        obj=folder,
        folder=folder,
        request=request,
        details=summary,
    )
    if config.folder_id != folder.pk:
        audit_record(
            "discovery.imported",
            actor=person,
            actor_kind=kind,
            obj=config,
            folder=config.folder,
            request=request,
            details=summary,
        )
