"""`pam rotation list|edit|info|resolve`, `pam action rotate|cancel|discover`, `pam gateway list`, and
`candidates` in `pam get`. The CLI is the operator's: it acts with actor "cli" and goes through the same
services (and so the same request path and audit) as the web pages.

Flags and JSON keys are Keeper Commander's (keepercommander/commands/discoveryrotation.py) where
Commander defines them; docs/cli.md maps each one. Records, folders and configurations are found
by uid or title/name through vault/cli.py's find_one."""

from __future__ import annotations

import argparse
import json
import math
import time

from rotation import aws, candidates, discovery, dispatch, engine, rotation_settings
from rotation.connection import known_policy, policy_problem
from rotation.gateway_process import add_run_parser
from rotation.models import DiscoveryJob, Rotation, RotationSettings
from rotation.panel import pending_access_key_id
from rotation.passwords import Complexity, ComplexityError, parse_complexity
from rotation.schedules import (
    ScheduleError,
    describe_schedule,
    normalize_schedule,
    schedule_from_cron,
)
from vault import cli as vault_cli
from vault.cli import (
    MASK,
    CliError,
    OutputHelper,
    add_accepted,
    add_format_argument,
    add_unsupported,
    quiet_task_queue,
)
from vault.models import Gateway, PamUser


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _records(options: argparse.Namespace) -> list[PamUser]:
    if options.record:
        return [vault_cli.find_record(options.record)]
    folder = vault_cli.find_folder(options.folder)
    records = list(PamUser.objects.filter(folder=folder).select_related("folder").order_by("pk"))
    if not records:
        raise CliError(f'folder "{folder.name}" has no PAM Users')
    return records


def _add_target(parser: argparse.ArgumentParser, record_flags: tuple, folder_flags: tuple) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(*record_flags, dest="record", metavar="UID|TITLE", help="one PAM User")
    target.add_argument(
        *folder_flags, dest="folder", metavar="UID|NAME", help="every PAM User of a folder"
    )


# --- pam rotation list -------------------------------------------------------------------------


def rotation_rows(*, verbose: bool = False) -> list[dict]:
    rows = []
    settings = RotationSettings.objects.select_related("pam_user", "configuration__gateway")
    for rs in settings.order_by("pam_user__title"):
        row = {
            "record": rs.pam_user.uid,
            "title": rs.pam_user.title,
            "login": rs.pam_user.login,
            "method": rs.method,
            "configuration": rs.configuration.uid,
            "schedule": describe_schedule(rs.effective_schedule),
            "enabled": rs.enabled,
            "last_rotated": _iso(rs.last_rotated_at),
            "last_status": rs.last_status or None,
            "next_run": _iso(rs.next_run_at),
        }
        if verbose:  # Commander's -v adds the gateway's and the configuration's uids
            row |= {
                "gateway": rs.configuration.gateway.name,
                "gateway_uid": rs.configuration.gateway.uid,
                "configuration_title": rs.configuration.title,
            }
        rows.append(row)
    return rows


def cmd_rotation_list(options: argparse.Namespace, out: OutputHelper) -> int:
    rows = rotation_rows(verbose=options.verbose)
    if options.format == "json":
        out.json(rows)
        return 0
    columns = [
        ("record", "RECORD"),
        ("title", "TITLE"),
        ("method", "METHOD"),
        ("schedule", "SCHEDULE"),
        ("enabled", "ENABLED"),
        ("last_status", "LAST"),
        ("next_run", "NEXT RUN"),
    ]
    if options.verbose:
        columns += [
            ("gateway", "GATEWAY"),
            ("gateway_uid", "GATEWAY UID"),
            ("configuration_title", "PAM CONFIGURATION"),
            ("configuration", "PAM CONFIGURATION UID"),
        ]
    out.table(rows, columns)
    return 0


# --- pam rotation info -------------------------------------------------------------------------


def complexity_detail(c: Complexity) -> dict:
    """Commander's password_complexity_detail keys."""
    return {
        "length": c.length,
        "caps": c.min_upper,
        "lowercase": c.min_lower,
        "digits": c.min_digits,
        "special": c.min_symbols,
        "specialChars": c.symbols,
    }


def rotation_info(record: PamUser) -> dict:
    """Commander's `pam rotation info --format json` keys, with the vault's values (no router
    node, admin resource or script here: null), then ours."""
    rs = (
        RotationSettings.objects.filter(pam_user=record)
        .select_related("configuration__gateway")
        .first()
    )
    if rs is None:
        return {
            "status": "RRS_NO_ROTATION",
            "ready_to_rotate": False,
            "use_default_rotation_schedule": False,
            "record_uid": record.uid,
            "record_title": record.title,
        }
    gateway = rs.configuration.gateway
    schedule = rs.effective_schedule
    complexity = rotation_settings.settings_complexity(rs)
    manual = schedule.get("type") == "ON_DEMAND"
    return {
        "status": "RRS_ONLINE" if gateway.is_online else "RRS_CONTROLLER_DOWN",
        "ready_to_rotate": gateway.is_online and rs.enabled and record.managed,
        "pam_config_uid": rs.configuration.uid,
        "node_id": None,
        "gateway_name": gateway.name,
        "gateway_uid": gateway.uid,
        "admin_resource_uid": None,
        "password_complexity": complexity.as_text(),
        "password_complexity_detail": complexity_detail(complexity),
        "schedule_type": "manual" if manual else "scheduled",
        "schedule_data": None if manual else [schedule],
        "use_default_rotation_schedule": rs.use_configuration_schedule,
        "disabled": not rs.enabled,
        "script_name": None,
        "record_uid": record.uid,
        "record_title": record.title,
        "pam_config_title": rs.configuration.title,
        "schedule": describe_schedule(schedule),
        "next_run": _iso(rs.next_run_at),
        "last_rotated": _iso(rs.last_rotated_at),
        "last_status": rs.last_status or None,
        "managed": record.managed,
        "method": rs.method,
        **_grace_info(rs),
    }


def _grace_info(rs: RotationSettings) -> dict:
    """The access-key method's grace periods (hours), for that method only."""
    if rs.method != rotation_settings.ACCESS_KEY:
        return {}
    return {
        "key_deactivate_after_hours": rs.key_deactivate_after_hours,
        "key_delete_after_hours": rs.key_delete_after_hours,
    }


def cmd_rotation_info(options: argparse.Namespace, out: OutputHelper) -> int:
    out.output(rotation_info(vault_cli.find_record(options.record)), options.format)
    return 0


# --- pam rotation edit -------------------------------------------------------------------------


def _json_schedules(texts: list[str]) -> list[dict]:
    """Every schedule the --schedulejson flags give, each an object or Keeper's stored list of
    them, normalised; equal ones once."""
    entries: list = []
    for text in texts:
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise CliError(f"schedule: The schedule is not valid JSON ({exc.msg}).") from None
        except RecursionError:
            raise CliError("schedule: The schedule JSON is nested too deeply.") from None
        entries += value if isinstance(value, list) else [value]
    schedules: list[dict] = []
    for entry in entries:
        try:
            schedule = normalize_schedule(entry)
        except ScheduleError as exc:
            raise CliError(f"schedule: {exc}") from None
        if schedule not in schedules:
            schedules.append(schedule)
    return schedules


def _schedule_choice(options: argparse.Namespace) -> tuple[dict | None, bool | None]:
    """(schedule, use_configuration_schedule); (None, None) when not given.

    Commander sends every --schedulejson entry as the record's list of schedules, and `[]` (as
    --on-demand does) for none. A record here holds one schedule: more than one is refused
    rather than some silently dropped. Commander reads only the first --schedulecron; a second
    one is refused too."""
    if options.schedulejson is not None:
        schedules = _json_schedules(options.schedulejson)
        if len(schedules) > 1:
            raise CliError(
                f"schedule: {len(schedules)} different schedules given; a record here has one "
                "schedule: give one --schedulejson (or one entry in its list), or a "
                "--schedulecron that covers them"
            )
        return (schedules[0] if schedules else {"type": "ON_DEMAND"}), False
    if options.schedulecron is not None:
        if len(options.schedulecron) > 1:
            raise CliError("schedule: give one --schedulecron (a record here has one schedule)")
        try:
            return schedule_from_cron(options.schedulecron[0], options.tz or "UTC"), False
        except ScheduleError as exc:
            raise CliError(f"schedule: {exc}") from None
    if options.on_demand:
        return {"type": "ON_DEMAND"}, False
    if options.schedule_config:
        return {"type": "ON_DEMAND"}, True
    return None, None


def _complexity_choice(options: argparse.Namespace) -> Complexity | None:
    """None when not given; `--complexity ""` is Commander's "clear": the default complexity."""
    if options.complexity is None:
        return None
    if not options.complexity.strip():
        return Complexity()
    try:
        return parse_complexity(options.complexity)
    except ComplexityError as exc:
        raise CliError(f"complexity: {exc}") from None


def account_policy_problem(config, complexity: Complexity) -> str | None:
    """The settings page's own check of a complexity against the AWS account's known password
    policy, with its message: the page and the CLI refuse the same lengths in the same words."""
    return policy_problem(config, complexity, known_policy(config))


def _hours(options: argparse.Namespace, name: str, flag: str) -> int | None:
    """A grace period flag's whole hours (0 to MAX_GRACE_HOURS), or None when not given."""
    text = getattr(options, name)
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        value = None
    problem = (
        "must be a whole number of hours"
        if value is None
        else rotation_settings.grace_hours_problem(value)
    )
    if problem:
        raise CliError(f"{flag} {text!r}: {problem}")
    return value


def _method_choice(options: argparse.Namespace) -> tuple[str | None, int | None, int | None]:
    """(method, deactivate hours, delete hours), each None when not given. Commander's
    --rotation-profile iam_user is the console password method too."""
    method = options.method
    if options.rotation_profile == "iam_user":
        if method not in (None, "iam_user"):
            raise CliError(f"--rotation-profile iam_user and --method {method} disagree; give one")
        method = "iam_user"
    deactivate = _hours(options, "key_deactivate_after", "--key-deactivate-after")
    delete = _hours(options, "key_delete_after", "--key-delete-after")
    return method, deactivate, delete


def _configuration_choice(options: argparse.Namespace):
    """--config, or Commander's --iam-aad-config (the configuration of an IAM user, which is
    what every record here is)."""
    found = {}
    for ref in (options.config, options.iam_aad_config):
        if ref:
            config = vault_cli.find_configuration(ref)
            found[config.pk] = config
    if len(found) > 1:
        raise CliError("--config and --iam-aad-config name different configurations; give one")
    if options.rotation_profile not in (None, "iam_user"):
        raise CliError(
            f"--rotation-profile {options.rotation_profile} is not supported: the vault rotates "
            "AWS IAM users only (--method iam_user for the console password, iam_access_key "
            "for the access key)"
        )
    return next(iter(found.values()), None)


@quiet_task_queue
def cmd_rotation_edit(options: argparse.Namespace, out: OutputHelper) -> int:
    records = _records(options)
    config = _configuration_choice(options)
    schedule, use_config = _schedule_choice(options)
    complexity = _complexity_choice(options)
    method, deactivate, delete = _method_choice(options)
    enabled = True if options.enable else False if options.disable else None
    if options.schedule_only:
        extra = [
            flag
            for flag, given in (
                ("--config", config is not None),
                ("--complexity", complexity is not None),
                ("--method", options.method is not None),
                ("--key-deactivate-after", deactivate is not None),
                ("--key-delete-after", delete is not None),
                ("--enable/--disable", enabled is not None),
            )
            if given
        ]
        if extra:
            raise CliError(f"--schedule-only changes the schedule only; drop {', '.join(extra)}")
    plans, errors = [], []
    for record in records:
        current = (
            RotationSettings.objects.filter(pam_user=record).select_related("configuration").first()
        )
        if options.schedule_only and (current is None or (options.folder and not current.enabled)):
            if options.record:
                errors.append(
                    f"{record.uid}: no rotation settings yet; --schedule-only changes the "
                    "schedule of existing settings"
                )
            continue  # Commander skips these records of a folder
        chosen = config or (current.configuration if current else None)
        if chosen is None:
            errors.append(f"{record.uid}: no rotation settings yet; give --config UID|TITLE")
            continue
        problem = engine.sharing_problem(chosen, record)
        if problem:
            errors.append(f"{record.uid}: {problem}")
            continue
        # As the settings form: the complexity to save must meet the account's known policy
        # when it is given, or when the record moves to another configuration (account),
        # or when it becomes the console password's again; access keys have no such policy.
        saved_method = method or (current.method if current else "iam_user")
        moved = current is None or current.configuration_id != chosen.pk
        switched = current is not None and current.method != saved_method
        checks_policy = saved_method != rotation_settings.ACCESS_KEY
        if checks_policy and (complexity is not None or moved or switched):
            saved = complexity or (
                rotation_settings.settings_complexity(current) if current else Complexity()
            )
            problem = account_policy_problem(chosen, saved)
            if problem:
                errors.append(f"{record.uid}: complexity: {problem}")
                continue
        plans.append((record, current, chosen))
    if errors:
        raise CliError(*errors)
    for record, current, chosen in plans:
        rs, follow_up = engine.rotation_settings_change(
            record=record,
            configuration=chosen,
            schedule=schedule if schedule is not None else (current.schedule if current else None),
            use_configuration_schedule=use_config
            if use_config is not None
            else bool(current and current.use_configuration_schedule),
            complexity=complexity
            or (rotation_settings.settings_complexity(current) if current else Complexity()),
            enabled=enabled if enabled is not None else (current.enabled if current else True),
            method=method,
            key_deactivate_after_hours=deactivate,
            key_delete_after_hours=delete,
            actor_kind="cli",
        )
        line = {
            "record": record.uid,
            "method": rs.method,
            **_grace_info(rs),
            "schedule": describe_schedule(rs.effective_schedule),
            "enabled": rs.enabled,
            "next_run": _iso(rs.next_run_at),
        }
        if follow_up is not None:
            line["queued_rotation"] = {
                "rotation": follow_up.rotation.uid,
                "outcome": follow_up.outcome,
                "gateway": follow_up.rotation.gateway_name,
                "note": follow_up.message,
            }
        out.json_line(line)
    return 0


# --- pam action rotate -------------------------------------------------------------------------


def _dry_run(record: PamUser) -> dict:
    try:
        rs = engine.rotation_check_requestable(record=record)
        if rs.method == "iam_access_key":
            return _dry_run_keys(record, rs.configuration)
        aws.check_target(rs.configuration, login=record.login, arn=record.distinguished_name)
    except (engine.RotationRequestError, aws.AwsError) as exc:
        return {"record": record.uid, "ok": False, "error": getattr(exc, "message", str(exc))}
    return {"record": record.uid, "ok": True, "error": None}


def _dry_run_keys(record: PamUser, config) -> dict:
    """The permissions an access-key rotation needs, each asked of AWS without changing
    anything (aws.probe_key_permissions); CreateAccessKey cannot be, and is said so."""
    aws.check_account(config, arn=record.distinguished_name, login=record.login)
    found = aws.probe_key_permissions(config, login=record.login)
    missing = {action: problem for action, problem in found.items() if problem}
    return {
        "record": record.uid,
        "ok": not missing,
        "error": "; ".join(missing.values()) or None,
        "permissions": {action: "missing" if action in missing else "ok" for action in found},
        "unchecked": ["iam:CreateAccessKey"],
    }


@quiet_task_queue
def cmd_action_rotate(options: argparse.Namespace, out: OutputHelper) -> int:
    records = _records(options)
    if options.dry_run:
        results = [_dry_run(r) for r in records]
        for result in results:
            out.json_line(result)
        return 0 if all(r["ok"] for r in results) else 1
    # One transaction for the whole set; large sets go to the gateways as drain tasks.
    with dispatch.handoff_watch() as handoff:
        active, problems = engine.rotation_request_many(records=records, trigger="cli")
    if handoff.refused:
        # Committed, so requested: the gateways' ticks start what the broker did not take.
        out.note(
            f"warning: the task queue did not take {handoff.refused} of these rotations "
            f"({handoff.error}); they are queued and their gateway will pick them up within "
            "a minute"
        )
    requested = {r.uid: active[r.uid] for r in records if r.uid in active}
    if options.wait is None:
        for uid, rotation in requested.items():
            out.json_line({"record": uid, "rotation": rotation.uid, "status": rotation.status})
        for uid, error in problems.items():
            out.json_line({"record": uid, "rotation": None, "status": "failed", "error": error})
        return 1 if problems else 0
    return _wait(requested, problems, options.wait, out)


def _wait(requested: dict, problems: dict, seconds: float, out: OutputHelper) -> int:
    deadline = time.monotonic() + seconds
    pending = {uid: r.pk for uid, r in requested.items()}
    failed = bool(problems)
    for uid, error in problems.items():
        out.json_line({"record": uid, "status": "failed", "error": error})
    while pending:
        finished = Rotation.objects.filter(pk__in=pending.values()).exclude(
            status__in=Rotation.ACTIVE
        )
        for rotation in finished.select_related("pam_user"):
            uid = rotation.pam_user.uid
            pending.pop(uid, None)
            ok = rotation.status == Rotation.SUCCEEDED
            failed |= not ok
            out.json_line(
                {"record": uid, "status": rotation.status, "error": None if ok else rotation.error}
            )
        if pending and time.monotonic() >= deadline:
            for uid in pending:
                out.json_line(
                    {
                        "record": uid,
                        "status": "timeout",
                        "error": f"still running after {seconds:g} s (it carries on in the gateway)",
                    }
                )
            return 1
        if pending:
            time.sleep(0.2)
    return 1 if failed else 0


# --- pam action cancel -------------------------------------------------------------------------


@quiet_task_queue
def cmd_action_cancel(options: argparse.Namespace, out: OutputHelper) -> int:
    """Cancel the record's queued rotation that has not started, as its Cancel button does
    (engine.rotation_cancel, audited with actor "cli")."""
    record = vault_cli.find_record(options.record)
    active = Rotation.objects.filter(pam_user=record, status__in=Rotation.ACTIVE).first()
    if active is None:
        raise CliError(f"record {record.uid} has no queued rotation to cancel")
    if active.status == Rotation.RUNNING:
        raise CliError(
            f"rotation {active.uid} of record {record.uid} is running on the gateway "
            f"“{active.gateway_name}”: it can no longer be cancelled; it ends by itself"
        )
    try:
        cancelled = engine.rotation_cancel(rotation=active, actor_kind="cli")
    except engine.RotationRequestError as exc:
        raise CliError(f"rotation {active.uid}: {exc}") from None
    out.json_line(
        {
            "record": record.uid,
            "rotation": cancelled.uid,
            "status": cancelled.status,
            "may_be_live": bool(
                cancelled.pending_may_be_live and cancelled.has_secret("pending_password")
            ),
        }
    )
    return 0


# --- pam action discover start|status|import ---------------------------------------------------
# Discover IAM users (rotation/discovery.py): the job runs on the configuration's gateway; the
# CLI's operator acts with actor "cli", through the same services and audit as the pages.

DISCOVER_FILTERS = ("name", "path", "console", "key-older-than", "not-in-vault")


@quiet_task_queue
def cmd_discover_start(options: argparse.Namespace, out: OutputHelper) -> int:
    config = vault_cli.find_configuration(options.config)
    try:
        job = discovery.discovery_start(configuration=config, actor_kind="cli")
    except discovery.DiscoveryError as exc:
        raise CliError(exc.message) from None
    if options.wait is None:
        out.json_line(discovery.discovery_progress(job))
        return 0
    deadline = time.monotonic() + options.wait
    while True:
        job.refresh_from_db()
        if not job.is_active or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    out.json_line(discovery.discovery_progress(job))
    if job.is_active:
        out.note(f"discovery {job.uid} still running after {options.wait:g} s (it carries on)")
        return 1
    return 0 if job.status == DiscoveryJob.SUCCEEDED else 1


def _discovery_job(options: argparse.Namespace, config=None) -> DiscoveryJob:
    if getattr(options, "job", None):
        ref = options.job
        job = DiscoveryJob.objects.select_related("configuration").filter(uid=ref).first()
        if job is None or (config is not None and job.configuration_id != config.pk):
            where = f' of configuration "{config.title}"' if config else ""
            raise CliError(f"no discovery with uid {ref}{where}")
        return job
    if config is None:
        raise CliError("give --job UID or --config UID|TITLE")
    job = discovery.latest_job(config)
    if job is None:
        raise CliError(
            f'configuration "{config.title}" has no discovery yet (pam action discover start)'
        )
    return job


def cmd_discover_status(options: argparse.Namespace, out: OutputHelper) -> int:
    config = vault_cli.find_configuration(options.config) if options.config else None
    out.json_line(discovery.discovery_progress(_discovery_job(options, config)))
    return 0


def _discover_filter(texts: list[str] | None) -> discovery.UserFilter:
    chosen = discovery.UserFilter()
    for text in texts or []:
        key, sep, value = text.partition("=")
        key = key.strip().lower()
        if not sep or key not in DISCOVER_FILTERS:
            raise CliError(
                f"--filter {text!r}: give KEY=VALUE with KEY one of {', '.join(DISCOVER_FILTERS)}"
            )
        if key == "name":
            chosen.name = value
        elif key == "path":
            chosen.path_prefix = value
        elif key in ("console", "not-in-vault"):
            flag = {"yes": True, "true": True, "no": False, "false": False}.get(value.lower())
            if flag is None:
                raise CliError(f"--filter {key}: give yes or no")
            if key == "console":
                chosen.console = flag
            else:
                chosen.not_in_vault = flag
        else:
            if not value.isdigit() or len(value) > 5:
                raise CliError("--filter key-older-than: give a whole number of days")
            chosen.key_older_than_days = int(value)
    return chosen


@quiet_task_queue
def cmd_discover_import(options: argparse.Namespace, out: OutputHelper) -> int:
    config = vault_cli.find_configuration(options.config)
    folder = vault_cli.find_folder(options.folder)
    if options.user and options.filter:
        raise CliError("--filter applies to --all only; with --user the names are the choice")
    filters = _discover_filter(options.filter)
    job = _discovery_job(options, config)
    try:
        outcome = discovery.discovery_import(
            job=job,
            folder=folder,
            user_names=None if options.all else options.user,
            filters=filters,
            actor_kind="cli",
        )
    except discovery.DiscoveryError as exc:
        raise CliError(exc.message) from None
    out.json_line({"users": outcome.users})
    return 0


# --- pam gateway list --------------------------------------------------------------------------


NO_GATEWAYS = "This Enterprise does not have Gateways yet."  # Commander's words, for scripts


def gateway_row(g: Gateway, *, verbose: bool) -> dict:
    """Commander's `pam gateway list --format json` keys (the application is its KSM app; the
    version is the one the gateway reported with its last heartbeat, "" before any), then ours."""
    row = {
        "ksm_app_name": g.application.name if g.application else None,
        "ksm_app_uid": g.application.uid if g.application else None,
        "ksm_app_accessible": g.application is not None,
        "gateway_name": g.name,
        "gateway_uid": g.uid,
        "status": "ONLINE" if g.is_online else "OFFLINE",
        "gateway_version": g.version,
        "last_seen": _iso(g.last_seen_at),
        "configurations": g.configurations.count(),
    }
    if verbose:
        row["allow_instance_role"] = g.allow_instance_role
    return row


def cmd_gateway_list(options: argparse.Namespace, out: OutputHelper) -> int:
    gateways = list(Gateway.objects.select_related("application").order_by("name"))
    rows = [gateway_row(g, verbose=options.verbose) for g in gateways]
    counts = {
        "online": sum(r["status"] == "ONLINE" for r in rows),
        "offline": sum(r["status"] == "OFFLINE" for r in rows),
        "total": len(rows),
    }
    if options.online:
        rows = [r for r in rows if r["status"] == "ONLINE"]
    rows.sort(key=lambda r: (r["status"], (r["ksm_app_name"] or "").lower(), r["gateway_name"]))
    if options.format == "json":
        result: dict = {"gateways": rows}
        if not gateways:
            result["message"] = NO_GATEWAYS
        if options.online:
            result["gateway_counts"] = counts
        out.json(result)
        return 0
    if not gateways:
        out.line(f"{NO_GATEWAYS} Create one with a PAM Configuration (web) or `pam import`.")
        return 0
    columns = [
        ("ksm_app_name", "APPLICATION"),
        ("gateway_name", "GATEWAY NAME"),
        ("gateway_uid", "GATEWAY UID"),
        ("status", "STATUS"),
        ("gateway_version", "VERSION"),
        ("last_seen", "LAST SEEN"),
    ]
    out.table(rows, columns + ([("configurations", "CONFIGURATIONS")] if options.verbose else []))
    if options.online:
        out.line(
            f"Gateways: Online: {counts['online']}, Offline: {counts['offline']}, "
            f"Total: {counts['total']}"
        )
    return 0


# --- pam get: the candidates; pam rotation resolve ---------------------------------------------


WAITS_BECAUSE = (
    "an earlier request to AWS for this user went unanswered and may still arrive until then; "
    "the next rotation waits so that it cannot be overwritten"
)


def candidates_extra(record: PamUser, unmask: bool) -> dict:
    """`candidates` in `pam get`: every password AWS may hold besides the current one, newest
    first (rotation/candidates.py), masked unless --unmask (each reveal audited)."""
    found = candidates.password_candidates(record)
    extra: dict = {}
    waits = engine.rotation_wait_until(record)
    if waits is not None:
        extra["waits_until"] = _iso(waits)
        extra["waits_because"] = WAITS_BECAUSE
    if not found:
        return extra
    return extra | {
        "candidates": [
            {
                "rotation": c.rotation.uid,
                "kind": c.kind,
                "status": c.status,
                "since": _iso(c.since),
                "resolvable": c.resolvable,
                "note": c.label,
                "password": candidates.candidate_reveal(c, actor_kind="cli") if unmask else MASK,
            }
            for c in found
        ]
    }


def pending_key_extra(record: PamUser, unmask: bool) -> dict:
    """`pending_access_key_id` in `pam get` while a rotation of the record holds a new access
    key that is not the record's yet (its secret is among the candidates)."""
    rotations = Rotation.objects.filter(pam_user=record).exclude(pending_access_key_id="")
    key_id = pending_access_key_id(rotations.order_by("-created_at", "-id")[:20])
    return {"pending_access_key_id": key_id} if key_id else {}


def cmd_rotation_resolve(options: argparse.Namespace, out: OutputHelper) -> int:
    """Settle a possibly-live password as the record page does: keep the current password, or
    adopt the candidate. Audited (actor "cli") by engine.rotation_resolve."""
    record = vault_cli.find_record(options.record)
    candidate = candidates.candidate_of(record, options.rotation)
    if candidate is None:
        if not Rotation.objects.filter(pam_user=record, uid=options.rotation).exists():
            raise CliError(
                f"record {record.uid} has no rotation {options.rotation} "
                f"(see `pam get {record.uid}` for its candidates)"
            )
        raise CliError(f"rotation {options.rotation} has nothing left to resolve")
    if not candidate.resolvable:
        raise CliError(
            f"rotation {options.rotation} is {candidate.status}: its password is "
            f"{candidate.label}; wait until the rotation ends"
        )
    try:
        engine.rotation_resolve(
            rotation=candidate.rotation,
            use_pending=options.keep == "pending",
            actor_kind="cli",
        )
    except engine.RotationRequestError as exc:
        raise CliError(f"rotation {options.rotation}: {exc}") from None
    out.json_line({"record": record.uid, "rotation": options.rotation, "kept": options.keep})
    return 0


def seconds(text: str) -> float:
    """A finite, positive number of seconds (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _register_discover(actions: argparse._SubParsersAction) -> None:
    discover = actions.add_parser("discover", help="discover IAM users of a configuration")
    sub = discover.add_subparsers(dest="discover_command", metavar="COMMAND", required=True)
    config_help = "PAM Configuration"
    start = sub.add_parser("start", help="start a discovery (it runs on the gateway)")
    start.add_argument("--config", "-c", metavar="UID|TITLE", required=True, help=config_help)
    start.add_argument(
        "--wait", type=seconds, metavar="SECONDS", help="wait for the discovery to finish"
    )
    start.set_defaults(func=cmd_discover_start)
    status = sub.add_parser("status", help="a discovery's progress")
    status.add_argument("--job", "-j", metavar="UID", help="the discovery")
    status.add_argument(
        "--config", "-c", metavar="UID|TITLE", help="the configuration's latest discovery"
    )
    status.set_defaults(func=cmd_discover_status)
    imported = sub.add_parser("import", help="import discovered users as PAM Users")
    imported.add_argument("--config", "-c", metavar="UID|TITLE", required=True, help=config_help)
    imported.add_argument("--folder", "-f", metavar="UID|NAME", required=True, help="destination")
    imported.add_argument(
        "--job", "-j", metavar="UID", help="the discovery (default: the latest of --config)"
    )
    chosen = imported.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--all", "-a", action="store_true", help="every user (matching --filter)")
    chosen.add_argument("--user", "-u", action="append", metavar="NAME", help="an IAM user name")
    imported.add_argument(
        "--filter", action="append", metavar="KEY=VALUE",
        help="with --all: name=TEXT, path=PREFIX, console=yes|no, key-older-than=DAYS, "
        "not-in-vault=yes",
    )  # fmt: skip
    imported.set_defaults(func=cmd_discover_import)


def register(subparsers: argparse._SubParsersAction) -> None:
    if candidates_extra not in vault_cli.RECORD_EXTRAS:
        vault_cli.RECORD_EXTRAS.append(candidates_extra)
    if pending_key_extra not in vault_cli.RECORD_EXTRAS:
        vault_cli.RECORD_EXTRAS.append(pending_key_extra)

    rotation = subparsers.add_parser("rotation", help="password rotation settings")
    sub = rotation.add_subparsers(dest="rotation_command", metavar="COMMAND", required=True)
    listing = sub.add_parser("list", help="rotation settings of every record")
    listing.add_argument(
        "--verbose", "-v", action="store_true", help="add the gateway and configuration"
    )
    add_format_argument(listing)
    listing.set_defaults(func=cmd_rotation_list)

    info = sub.add_parser("info", help="one record's rotation settings")
    info.add_argument(
        "--record-uid", "-r", "--record", dest="record", metavar="UID|TITLE", required=True,
        help="the PAM User",
    )  # fmt: skip
    add_format_argument(info)
    info.set_defaults(func=cmd_rotation_info)

    edit = sub.add_parser("edit", help="create or change rotation settings")
    _add_target(edit, ("--record", "-r"), ("--folder", "-fd"))
    add_accepted(edit, "--force", "-f", why="accepted: the CLI never asks for confirmation")
    edit.add_argument("--config", "-c", metavar="UID|TITLE", help="PAM Configuration")
    edit.add_argument(
        "--iam-aad-config", "-iac", metavar="UID|TITLE", help="PAM Configuration (as --config)"
    )
    edit.add_argument(
        "--rotation-profile", "-rp", choices=["general", "iam_user", "scripts_only", "saas"],
        help="iam_user only (the console password, as --method iam_user)",
    )  # fmt: skip
    edit.add_argument(
        "--method", "-m", choices=list(rotation_settings.METHOD_NAMES),
        help="iam_user: the console password; iam_access_key: the access key "
        "(new settings: iam_user; left out: unchanged)",
    )  # fmt: skip
    edit.add_argument(
        "--key-deactivate-after", metavar="HOURS",
        help="iam_access_key: deactivate the replaced key HOURS after a rotation "
        f"(0 to {rotation_settings.MAX_GRACE_HOURS}; default 24)",
    )  # fmt: skip
    edit.add_argument(
        "--key-delete-after", metavar="HOURS",
        help="iam_access_key: delete it HOURS after its deactivation "
        f"(0 to {rotation_settings.MAX_GRACE_HOURS}; default 168)",
    )  # fmt: skip
    schedule = edit.add_mutually_exclusive_group()
    schedule.add_argument(
        "--schedulejson", "-sj", action="append", metavar="JSON",
        help="Keeper schedule JSON: an object, or Keeper's list of one",
    )  # fmt: skip
    schedule.add_argument(
        "--schedulecron", "-sc", action="append", metavar="CRON",
        help="cron: 5 fields, or Quartz's 6 or 7",
    )  # fmt: skip
    schedule.add_argument("--on-demand", "-od", action="store_true", help="on demand only")
    schedule.add_argument(
        "--schedule-config", "-sf", action="store_true",
        help="the configuration's default schedule",
    )  # fmt: skip
    edit.add_argument(
        "--schedule-only", "-so", action="store_true",
        help="change only the schedule of existing settings",
    )  # fmt: skip
    edit.add_argument("--tz", help="ours: time zone for --schedulecron (default UTC)")
    edit.add_argument(
        "--complexity", "-x", metavar="SPEC",
        help='"32,5,5,5,5[,SYMBOLS]"; "" for the default',
    )  # fmt: skip
    state = edit.add_mutually_exclusive_group()
    state.add_argument("--enable", "-e", action="store_true")
    state.add_argument("--disable", "-d", action="store_true")
    no_resources = "the vault has no PAM resources (machines, databases, directories)"
    add_unsupported(edit, "--gateway", "-g", reason="the gateway is the configuration's")
    add_unsupported(edit, "--resource", "-rs", reason=no_resources)
    add_unsupported(edit, "--admin-user", "-a", reason=no_resources)
    add_unsupported(edit, "--saas-config-uid", reason="the vault has no SaaS rotation")
    edit.set_defaults(func=cmd_rotation_edit)

    resolve = sub.add_parser(
        "resolve",
        help="settle a password that may be live in AWS (see the candidates in `pam get`)",
    )
    resolve.add_argument("--record", "-r", metavar="UID|TITLE", required=True, help="the PAM User")
    resolve.add_argument(
        "--rotation", metavar="UID", required=True, help="the rotation whose password may be live"
    )
    resolve.add_argument(
        "--keep",
        choices=["current", "pending"],
        required=True,
        help="current: keep the record's password; pending: adopt the rotation's",
    )
    resolve.set_defaults(func=cmd_rotation_resolve)

    action = subparsers.add_parser("action", help="actions on records")
    actions = action.add_subparsers(dest="action_command", metavar="COMMAND", required=True)
    rotate = actions.add_parser("rotate", help="rotate now (through the gateways)")
    _add_target(rotate, ("--record-uid", "-r", "--record"), ("--folder", "-f", "-fd"))
    rotate.add_argument("--dry-run", "-n", action="store_true", help="check, change nothing")
    rotate.add_argument(
        "--wait", type=seconds, metavar="SECONDS", help="ours: wait for the results (up to SECONDS)"
    )
    no_email = "the vault never sends passwords out; reveal them in the vault (audited)"
    for flag in ("--self-destruct", "--email-config", "--send-email", "--email-message"):
        add_unsupported(rotate, flag, reason=no_email)
    rotate.set_defaults(func=cmd_action_rotate)
    cancel = actions.add_parser(
        "cancel", help="cancel a record's queued rotation that has not started"
    )
    cancel.add_argument("--record", "-r", metavar="UID|TITLE", required=True, help="the PAM User")
    cancel.set_defaults(func=cmd_action_cancel)
    _register_discover(actions)

    gateway = subparsers.add_parser("gateway", help="gateways")
    gateways = gateway.add_subparsers(dest="gateway_command", metavar="COMMAND", required=True)
    gateway_list = gateways.add_parser("list", help="gateways and whether they are online")
    add_accepted(gateway_list, "--force", "-f", why="accepted: there is no router to wait for")
    gateway_list.add_argument("--verbose", "-v", action="store_true", help="more columns")
    gateway_list.add_argument("--online", "-o", action="store_true", help="online gateways only")
    add_format_argument(gateway_list)
    gateway_list.set_defaults(func=cmd_gateway_list)
    add_run_parser(gateways)  # `pam gateway run NAME`: rotation/gateway_process.py
