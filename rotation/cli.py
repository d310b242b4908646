"""`pam rotation list|edit|resolve`, `pam action rotate|cancel`, `pam gateway list`, and
`candidates` in `pam get`. The CLI is the operator's: it acts with actor "cli" and goes through the same
services (and so the same request path and audit) as the web pages."""

from __future__ import annotations

import argparse
import math
import time

from rotation import aws, candidates, dispatch, engine, rotation_settings
from rotation.gateway_process import add_run_parser
from rotation.models import Rotation, RotationSettings
from rotation.passwords import Complexity, ComplexityError, parse_complexity
from rotation.schedules import (
    ScheduleError,
    describe_schedule,
    normalize_schedule,
    schedule_from_cron,
)
from vault import cli as vault_cli
from vault.cli import MASK, CliError, OutputHelper, add_format_argument
from vault.models import Gateway, PamConfiguration, PamUser


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _records(options: argparse.Namespace) -> list[PamUser]:
    if options.record:
        record = PamUser.objects.select_related("folder").filter(uid=options.record).first()
        if record is None:
            raise CliError(f"no PAM User with uid {options.record}")
        return [record]
    folder = vault_cli.folder_by_uid(options.folder)
    records = list(PamUser.objects.filter(folder=folder).select_related("folder"))
    if not records:
        raise CliError(f'folder "{folder.name}" has no PAM Users')
    return records


def _add_target(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--record", metavar="UID", help="one PAM User")
    target.add_argument("--folder", metavar="UID", help="every PAM User of a folder")


# --- pam rotation list -------------------------------------------------------------------------


def rotation_rows() -> list[dict]:
    rows = []
    for rs in RotationSettings.objects.select_related("pam_user", "configuration").order_by(
        "pam_user__title"
    ):
        rows.append(
            {
                "record": rs.pam_user.uid,
                "title": rs.pam_user.title,
                "login": rs.pam_user.login,
                "configuration": rs.configuration.uid,
                "schedule": describe_schedule(rs.effective_schedule),
                "enabled": rs.enabled,
                "last_rotated": _iso(rs.last_rotated_at),
                "last_status": rs.last_status or None,
                "next_run": _iso(rs.next_run_at),
            }
        )
    return rows


def cmd_rotation_list(options: argparse.Namespace, out: OutputHelper) -> int:
    rows = rotation_rows()
    if options.format == "json":
        out.json(rows)
    else:
        out.table(
            rows,
            [
                ("record", "RECORD"),
                ("title", "TITLE"),
                ("schedule", "SCHEDULE"),
                ("enabled", "ENABLED"),
                ("last_status", "LAST"),
                ("next_run", "NEXT RUN"),
            ],
        )
    return 0


# --- pam rotation edit -------------------------------------------------------------------------


def _schedule_choice(options: argparse.Namespace) -> tuple[dict | None, bool | None]:
    """(schedule, use_configuration_schedule); (None, None) when not given."""
    try:
        if options.schedulejson is not None:
            return normalize_schedule(options.schedulejson), False
        if options.schedulecron is not None:
            return schedule_from_cron(options.schedulecron, options.tz or "UTC"), False
    except ScheduleError as exc:
        raise CliError(f"schedule: {exc}") from None
    if options.on_demand:
        return {"type": "ON_DEMAND"}, False
    if options.schedule_config:
        return {"type": "ON_DEMAND"}, True
    return None, None


def cmd_rotation_edit(options: argparse.Namespace, out: OutputHelper) -> int:
    records = _records(options)
    config = None
    if options.config:
        config = (
            PamConfiguration.objects.select_related("gateway").filter(uid=options.config).first()
        )
        if config is None:
            raise CliError(f"no PAM Configuration with uid {options.config}")
    schedule, use_config = _schedule_choice(options)
    try:
        complexity = parse_complexity(options.complexity) if options.complexity else None
    except ComplexityError as exc:
        raise CliError(f"complexity: {exc}") from None
    enabled = True if options.enable else False if options.disable else None
    plans, errors = [], []
    for record in records:
        current = (
            RotationSettings.objects.filter(pam_user=record).select_related("configuration").first()
        )
        chosen = config or (current.configuration if current else None)
        if chosen is None:
            errors.append(f"{record.uid}: no rotation settings yet; give --config UID")
            continue
        problem = engine.sharing_problem(chosen, record)
        if problem:
            errors.append(f"{record.uid}: {problem}")
            continue
        plans.append((record, current, chosen))
    if errors:
        raise CliError(*errors)
    for record, current, chosen in plans:
        # A rotation still waiting goes with the new settings, or is cancelled: say which.
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
            actor_kind="cli",
        )
        line = {
            "record": record.uid,
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
        aws.check_target(rs.configuration, login=record.login, arn=record.distinguished_name)
    except (engine.RotationRequestError, aws.AwsError) as exc:
        return {"record": record.uid, "ok": False, "error": getattr(exc, "message", str(exc))}
    return {"record": record.uid, "ok": True, "error": None}


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


def cmd_action_cancel(options: argparse.Namespace, out: OutputHelper) -> int:
    """Cancel the record's queued rotation that has not started, as its Cancel button does
    (engine.rotation_cancel, audited with actor "cli")."""
    record = PamUser.objects.select_related("folder").filter(uid=options.record).first()
    if record is None:
        raise CliError(f"no PAM User with uid {options.record}")
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


# --- pam gateway list --------------------------------------------------------------------------


def cmd_gateway_list(options: argparse.Namespace, out: OutputHelper) -> int:
    rows = [
        {
            "uid": g.uid,
            "name": g.name,
            "application": g.application.name if g.application else None,
            "online": g.is_online,
            "last_seen": _iso(g.last_seen_at),
            "configurations": g.configurations.count(),
        }
        for g in Gateway.objects.select_related("application")
    ]
    if options.format == "json":
        out.json(rows)
    else:
        out.table(
            rows,
            [
                ("name", "GATEWAY"),
                ("uid", "UID"),
                ("application", "APPLICATION"),
                ("online", "ONLINE"),
                ("last_seen", "LAST SEEN"),
            ],
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


def cmd_rotation_resolve(options: argparse.Namespace, out: OutputHelper) -> int:
    """Settle a possibly-live password as the record page does: keep the current password, or
    adopt the candidate. Audited (actor "cli") by engine.rotation_resolve."""
    record = PamUser.objects.select_related("folder").filter(uid=options.record).first()
    if record is None:
        raise CliError(f"no PAM User with uid {options.record}")
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


def register(subparsers: argparse._SubParsersAction) -> None:
    if candidates_extra not in vault_cli.RECORD_EXTRAS:
        vault_cli.RECORD_EXTRAS.append(candidates_extra)

    rotation = subparsers.add_parser("rotation", help="password rotation settings")
    sub = rotation.add_subparsers(dest="rotation_command", metavar="COMMAND", required=True)
    listing = sub.add_parser("list", help="rotation settings of every record")
    add_format_argument(listing)
    listing.set_defaults(func=cmd_rotation_list)

    edit = sub.add_parser("edit", help="create or change rotation settings")
    _add_target(edit)
    edit.add_argument("--config", metavar="UID", help="PAM Configuration uid")
    schedule = edit.add_mutually_exclusive_group()
    schedule.add_argument("--schedulejson", metavar="JSON", help="Keeper schedule JSON")
    schedule.add_argument("--schedulecron", metavar="CRON", help="cron (5 or 6 fields)")
    schedule.add_argument("--on-demand", action="store_true", help="on demand only")
    schedule.add_argument(
        "--schedule-config", action="store_true", help="the configuration's default schedule"
    )
    edit.add_argument("--tz", help="time zone for --schedulecron (default UTC)")
    edit.add_argument("--complexity", metavar="SPEC", help='"32,5,5,5,5[,SYMBOLS]"')
    state = edit.add_mutually_exclusive_group()
    state.add_argument("--enable", action="store_true")
    state.add_argument("--disable", action="store_true")
    edit.set_defaults(func=cmd_rotation_edit)

    resolve = sub.add_parser(
        "resolve",
        help="settle a password that may be live in AWS (see the candidates in `pam get`)",
    )
    resolve.add_argument("--record", metavar="UID", required=True, help="the PAM User")
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
    _add_target(rotate)
    rotate.add_argument("--dry-run", action="store_true", help="check, change nothing")
    rotate.add_argument(
        "--wait", type=seconds, metavar="SECONDS", help="wait for the results (up to SECONDS)"
    )
    rotate.set_defaults(func=cmd_action_rotate)
    cancel = actions.add_parser(
        "cancel", help="cancel a record's queued rotation that has not started"
    )
    cancel.add_argument("--record", metavar="UID", required=True, help="the PAM User")
    cancel.set_defaults(func=cmd_action_cancel)

    gateway = subparsers.add_parser("gateway", help="gateways")
    gateways = gateway.add_subparsers(dest="gateway_command", metavar="COMMAND", required=True)
    gateway_list = gateways.add_parser("list", help="gateways and whether they are online")
    add_format_argument(gateway_list)
    gateway_list.set_defaults(func=cmd_gateway_list)
    add_run_parser(gateways)  # `pam gateway run NAME`: rotation/gateway_process.py
