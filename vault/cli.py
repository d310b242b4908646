"""The vault's subcommands of `python manage.py pam`, and the small toolkit every app's
`cli.py` uses.

How an app adds subcommands (the protocol vault/management/commands/pam.py follows):

- Put a module `cli.py` in the app (any app in INSTALLED_APPS). It defines
  ``register(subparsers: argparse._SubParsersAction) -> None``, which adds parsers with
  ``subparsers.add_parser(name, help=...)`` (nested groups such as `pam rotation list` add their
  own ``add_subparsers(dest=..., required=True)``) and gives each runnable parser a handler with
  ``parser.set_defaults(func=handler)``.
- A handler is ``handler(options: argparse.Namespace, out: OutputHelper) -> int | None``. It
  writes results through ``out`` (never print()), returns 0/None for success or an exit status.
- Bad input: raise ``CliError("what is wrong and what to do")`` (or several messages, one
  per line). The command prints each as ``pam: error: ...`` on stderr and exits with
  ``CliError.code`` (1 unless given). Django's ValidationError and vault.crypto.CryptoError are
  turned into the same one-line form; any other exception becomes one line too (no traceback
  unless `--traceback` is given). argparse usage errors exit 2 with one line.
- Apps are registered in INSTALLED_APPS order, so `vault` registers first and a later app may
  extend what the vault registered through the hooks below (``RECORD_EXTRAS``) and
  vault/importer.py's ``USER_EXTENSIONS``.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db import transaction
from django.db.models import Model, QuerySet

from vault import crypto, exporter, services
from vault.importer import ImportProblems, import_document, import_project, load_document
from vault.models import (
    USE_INSTANCE_ROLE,
    Gateway,
    PamConfiguration,
    PamUser,
    SecretsMixin,
    SharedFolder,
)

MASK = "********"

# Hooks `pam get` calls for a PAM User: each gets (record, unmask) and returns extra keys for
# the JSON (e.g. the rotation app's "candidates"). A hook that reveals a secret when
# `unmask` is true writes its own audit event.
RECORD_EXTRAS: list[Callable[[PamUser, bool], dict]] = []


class CliError(Exception):
    """Bad input: each message becomes one `pam: error: ...` line on stderr."""

    def __init__(self, *messages: str, code: int = 1) -> None:
        super().__init__(messages[0] if messages else "failed")
        self.messages = list(messages) or ["failed"]
        self.code = code


class OutputHelper:
    """Where handlers write: stdout for results, stderr for notes. Never for secrets unless
    the operator asked with --unmask."""

    def __init__(self, stdout, stderr) -> None:
        self.stdout = stdout
        self.stderr = stderr

    def line(self, text: str = "") -> None:
        self.stdout.write(text)

    def note(self, text: str) -> None:
        self.stderr.write(f"pam: {text}")

    def json(self, value: Any, *, indent: int | None = 2) -> None:
        self.stdout.write(json_text(value, indent=indent))

    def json_line(self, value: Any) -> None:
        self.json(value, indent=None)

    def table(self, rows: Sequence[dict], columns: Sequence[tuple[str, str]]) -> None:
        """Rows as aligned columns; `columns` is [(key, heading), ...]."""
        cells = [[heading for _, heading in columns]]
        cells += [[_cell(row.get(key)) for key, _ in columns] for row in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
        for r in cells:
            self.stdout.write(
                "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            )

    def fields(self, value: dict) -> None:
        """One `key: value` line per item, keys aligned."""
        width = max((len(k) for k in value), default=0)
        for key, item in value.items():
            self.stdout.write(f"{key.ljust(width)}  {_cell(item)}")

    def output(self, value: Any, fmt: str, columns: Sequence[tuple[str, str]] = ()) -> None:
        """JSON or a table (list) / field lines (dict), as `--format` asks."""
        if fmt == "json":
            self.json(value)
        elif isinstance(value, dict):
            self.fields(value)
        else:
            self.table(value, columns)


# Stored or imported text may hold characters that break the one-line output, drive the
# operator's terminal (ESC, C1 controls) or make text read differently from what it is (bidi
# overrides and marks, zero-width and other invisible characters, line separators): every
# character Python does not call printable (Unicode "Other" and "Separator" categories except
# the ASCII space; lone surrogates too) is written as an escape. Only non-ASCII characters and
# ASCII controls need a look, so mostly-ASCII output stays fast.
NOT_PLAIN_ASCII = re.compile(r"[^\x20-\x7e]")


def printable(text: str) -> str:
    """`text` with every unprintable character written as a Python escape (\\r, \\x1b, \\u202e,
    \\U000e0041); visible characters, non-ASCII letters included, are kept."""
    return NOT_PLAIN_ASCII.sub(_escape_if_unprintable, text)


def _escape_if_unprintable(match: re.Match) -> str:
    char = match.group()
    return char if char.isprintable() else char.encode("unicode_escape").decode()


def _json_escape_if_unprintable(match: re.Match) -> str:
    char = match.group()
    if char.isprintable() or char == "\n":  # a raw newline is json.dumps' indentation
        return char
    code = ord(char)
    if code > 0xFFFF:  # JSON spells these as a UTF-16 surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def json_text(value: Any, *, indent: int | None = 2) -> str:
    """`value` as JSON with unprintable characters as \\u escapes: the same data for a parser,
    and nothing hidden or reordered for a person reading it. Other non-ASCII text stays
    readable. (Outside strings JSON is ASCII, so escaping anywhere keeps it valid.)"""
    return NOT_PLAIN_ASCII.sub(
        _json_escape_if_unprintable, json.dumps(value, indent=indent, ensure_ascii=False)
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return json_text(value, indent=None)
    return printable(str(value))


def add_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=["table", "json"], default="table", help="output format"
    )


class Unsupported(argparse.Action):
    """A Commander flag the vault has no meaning for: parsed (so a Commander command line is not
    a usage error), then refused by the pam command with the reason, before anything runs."""

    def __init__(self, option_strings, dest, reason: str = "", **kw) -> None:
        if kw.get("nargs") != 0:
            kw.setdefault("metavar", "VALUE")
        kw.setdefault("help", f"not supported: {reason}")
        super().__init__(option_strings, dest="unsupported", default=argparse.SUPPRESS, **kw)
        self.reason = reason

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        refused = getattr(namespace, "unsupported", None) or []
        refused.append(f"{option_string} is not supported: {self.reason}")
        namespace.unsupported = refused


def add_unsupported(
    parser: argparse.ArgumentParser, *flags: str, reason: str, takes_value: bool = True
) -> None:
    parser.add_argument(*flags, action=Unsupported, reason=reason, nargs=None if takes_value else 0)


def add_accepted(parser: argparse.ArgumentParser, *flags: str, why: str) -> None:
    """A Commander flag that changes nothing here (e.g. --force: the CLI never asks)."""
    parser.add_argument(*flags, action="store_true", dest="commander_noop", help=why)


@contextmanager
def quiet_task_queue_log() -> Iterator[None]:
    """django-q2 logs an INFO line ("Enqueued ...") on stderr for each task a command enqueues;
    on the CLI stderr is for `pam: ...` lines only. Warnings and errors still show."""
    logger = logging.getLogger("django-q")
    level = logger.level
    if logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def quiet_task_queue(handler: Callable) -> Callable:
    """A handler that may enqueue tasks, run under quiet_task_queue_log."""

    @functools.wraps(handler)
    def run(options: argparse.Namespace, out: OutputHelper) -> int | None:
        with quiet_task_queue_log():
            return handler(options, out)

    return run


# --- pam import ---------------------------------------------------------------------------


def cmd_import(options: argparse.Namespace, out: OutputHelper) -> int:
    try:
        document = load_document(Path(options.file))
        result = import_document(document, owner_username=options.owner)
    except ImportProblems as exc:
        raise CliError(*exc.problems) from None
    out.json(result)
    return 0


# --- pam project import / pam export ----------------------------------------------------------


def cmd_project_import(options: argparse.Namespace, out: OutputHelper) -> int:
    """Keeper Commander's project import format (vault/import_keeper.py): prints the report
    (every change, what was not imported and why), and writes it to --output as well."""
    try:
        document = load_document(Path(options.filename))
        report = import_project(
            document,
            project_name=options.name,
            owner_username=options.owner,
            dry_run=options.dry_run,
        )
    except ImportProblems as exc:
        raise CliError(*exc.problems) from None
    if options.output:
        try:
            Path(options.output).write_text(json_text(report) + "\n", encoding="utf-8")
        except OSError as exc:
            raise CliError(
                f"--output: cannot write {options.output}: {exc.strerror or exc}"
                + ("" if options.dry_run else " (the import itself was written)")
            ) from None
    out.json(report)
    if options.dry_run:
        out.note(f"dry run: {len(report['changes'])} change(s) planned; nothing was written")
    elif not report["changed"]:
        out.note("nothing to change: the vault already holds this project as the file says")
    if report["not_imported"]:
        out.note(f"{len(report['not_imported'])} item(s) not imported: see not_imported")
    return 0


def cmd_export(options: argparse.Namespace, out: OutputHelper) -> int:
    """Every secret of the vault (or one folder) in an import file, 0600, audited."""
    try:
        made = exporter.export(
            output=Path(options.output),
            fmt=options.format,
            folder=options.folder,
            force=options.force,
        )
    except exporter.ExportError as exc:
        raise CliError(*exc.messages) from None
    for note in made.notes:
        out.note(f"note: {note}")
    out.json(
        {
            "file": options.output,
            "format": options.format,
            "folders": [f.name for f in made.folders],
            "records": made.records,
            "configurations": made.configurations,
        }
    )
    return 0


# --- pam list / pam get ---------------------------------------------------------------------

LIST_COLUMNS = [
    ("type", "TYPE"),
    ("uid", "UID"),
    ("title", "TITLE"),
    ("folder_name", "FOLDER"),
    ("login", "LOGIN"),
]


# --- finding objects by uid, title or name -------------------------------------------------------
#
# Keeper Commander finds a record, folder, configuration or gateway by its UID, else by its title
# or name. Every `pam` subcommand resolves what it is given through find_one, over the queryset
# of what that subcommand may act on (PAM Users, folders, configurations, gateways), so that a
# lookup never finds anything else. The rule, in order: the uid exactly; the title (name)
# exactly; the title ignoring case; for a record or configuration, "FOLDER/TITLE" (both ignoring
# case). A name that matches more than one object is an error listing each as `uid  title`.

MAX_LISTED_MATCHES = 20


def _matches(queryset: QuerySet, field: str, ref: str, limit: int) -> list:
    rows = list(queryset.filter(**{field: ref})[: limit + 1])
    if not rows:
        rows = list(queryset.filter(**{f"{field}__iexact": ref})[: limit + 1])
    if not rows and "/" in ref and any(f.name == "folder" for f in queryset.model._meta.fields):
        for at in (i for i, char in enumerate(ref) if char == "/"):
            folder_name, title = ref[:at], ref[at + 1 :]
            if folder_name and title:
                rows += queryset.filter(
                    folder__name__iexact=folder_name, **{f"{field}__iexact": title}
                )[: limit + 1]
    return rows


def find_one(ref: str, *querysets: QuerySet, noun: str, field: str = "title") -> Model:
    """The one object of `querysets` whose uid is `ref`, else whose `field` (title or name) is
    `ref` (module comment above). Raises CliError when none or several match."""
    what = "name" if field == "name" else "title"
    if not isinstance(ref, str) or not ref.strip() or "\x00" in ref:
        raise CliError(f"give the uid or {what} of the {noun}")
    for queryset in querysets:
        found = queryset.filter(uid=ref).first()
        if found is not None:
            return found
    found = []
    for queryset in querysets:
        found += _matches(queryset, field, ref, MAX_LISTED_MATCHES)
    if not found:
        raise CliError(f'no {noun} with uid {ref} or {what} "{ref}" (see `pam list`)')
    if len(found) == 1:
        return found[0]
    listed = [f"{row.uid}  {getattr(row, field)}" for row in found[:MAX_LISTED_MATCHES]]
    if len(found) > MAX_LISTED_MATCHES:
        listed.append("... and more")
    raise CliError(f'"{ref}" matches more than one {noun}; give a uid:', *listed)


def find_folder(ref: str) -> SharedFolder:
    return find_one(ref, SharedFolder.objects.all(), noun="folder", field="name")


def find_record(ref: str) -> PamUser:
    return find_one(ref, PamUser.objects.select_related("folder"), noun="PAM User")


def find_configuration(ref: str) -> PamConfiguration:
    return find_one(
        ref,
        PamConfiguration.objects.select_related("folder", "gateway__application"),
        noun="PAM Configuration",
    )


def find_gateway(ref: str) -> Gateway:
    return find_one(
        ref, Gateway.objects.select_related("application"), noun="gateway", field="name"
    )


folder_by_uid = find_folder  # the name earlier callers used


def cmd_list(options: argparse.Namespace, out: OutputHelper) -> int:
    users = PamUser.objects.select_related("folder").order_by("folder__name", "title")
    configs = PamConfiguration.objects.select_related("folder").order_by("folder__name", "title")
    if options.folder:
        folder = find_folder(options.folder)
        users, configs = users.filter(folder=folder), configs.filter(folder=folder)
    rows = [
        {
            "uid": c.uid,
            "type": "pamAwsConfiguration",
            "title": c.title,
            "folder": c.folder.uid,
            "login": "",
            "distinguished_name": "",
            "folder_name": c.folder.name,
        }
        for c in configs
    ] + [
        {
            "uid": u.uid,
            "type": "pamUser",
            "title": u.title,
            "folder": u.folder.uid,
            "login": u.login,
            "distinguished_name": u.distinguished_name,
            "folder_name": u.folder.name,
        }
        for u in users
    ]
    rows.sort(key=lambda r: (r["folder_name"], r["type"] != "pamAwsConfiguration", r["title"]))
    if options.format == "json":
        for row in rows:
            del row["folder_name"]
        out.json(rows)
    else:
        out.table(rows, LIST_COLUMNS)
    return 0


def pam_user_data(record: PamUser, *, unmask: bool) -> dict:
    """The `pam get` view of a PAM User; reveals (and audits) the password only when asked."""
    if not record.has_secret("password"):
        password = ""
    elif unmask:
        password = services.pam_user_reveal(record=record, actor_kind="cli")
    else:
        password = MASK
    data = {
        "uid": record.uid,
        "type": "pamUser",
        "title": record.title,
        "folder": record.folder.uid,
        "login": record.login,
        "distinguished_name": record.distinguished_name,
        "password": password,
        "access_key_id": record.access_key_id,
        "secret_access_key": _access_secret(record, unmask=unmask),
        "notes": record.notes,
        "managed": record.managed,
    }
    for extra in RECORD_EXTRAS:
        data.update(extra(record, unmask))
    return data


def _access_secret(record: PamUser, *, unmask: bool) -> str:
    """The access key's secret as the password is shown: "" without one, masked unless
    --unmask (then revealed and audited)."""
    if not record.has_secret("access_secret_key"):
        return ""
    if unmask:
        return services.pam_user_reveal_access_key(record=record, actor_kind="cli")
    return MASK


def configuration_data(config: PamConfiguration, *, unmask: bool) -> dict:
    if not config.has_secret("access_secret_key"):
        secret = ""
    elif unmask:
        secret = services.configuration_reveal(config=config, actor_kind="cli")
    else:
        secret = MASK
    return {
        "uid": config.uid,
        "type": "pamAwsConfiguration",
        "title": config.title,
        "folder": config.folder.uid,
        "environment": config.environment,
        "gateway": config.gateway.name,
        "aws_id": config.aws_id,
        "access_key_id": config.access_key_id,
        "access_secret_key": secret,
        "region_names": list(config.region_names),
        "endpoint_url": config.endpoint_url,
        "default_rotation_schedule": config.default_rotation_schedule,
    }


def cmd_get(options: argparse.Namespace, out: OutputHelper) -> int:
    found = find_one(
        options.uid,
        PamUser.objects.select_related("folder"),
        PamConfiguration.objects.select_related("folder", "gateway"),
        noun="record or configuration",
    )
    if isinstance(found, PamUser):
        data = pam_user_data(found, unmask=options.unmask)
    else:
        data = configuration_data(found, unmask=options.unmask)
    out.output(data, options.format)
    return 0


# --- pam config list|new|edit|remove (Keeper Commander's flags; AWS configurations only) -------

CONFIG_TYPE = "pamAwsConfiguration"
COMMANDER_ENVIRONMENTS = ["local", "aws", "azure", "gcp", "domain", "oci", "github"]
# Commander's flag (or ours) -> the browser form's field, for error lines that name the flag.
CONFIG_FLAGS = {
    "title": "--title",
    "environment": "--environment",
    "gateway": "--gateway",
    "aws_id": "--aws-id",
    "access_key_id": "--access-key-id",
    "access_secret_key": "--access-secret-key",
    "region_names": "--region-name",
    "endpoint_url": "--endpoint-url",
    "default_rotation_schedule": "--schedule",
    "scope_path_prefix": "--scope-path-prefix",
    "scope_user_pattern": "--scope-user-pattern",
}


def _folder_json(folder: SharedFolder) -> dict:
    """Commander's `folder` and `shared_folder` keys (every vault folder is a shared folder)."""
    return {
        "folder": {"uid": folder.uid, "name": folder.name, "type": "shared_folder"},
        "shared_folder": {"name": folder.name, "uid": folder.uid},
    }


def _config_fields(config: PamConfiguration) -> dict:
    """The record's fields as Commander names them (pamAwsConfiguration's field labels); the
    secret key is never shown here (`pam get --unmask` reveals it, audited)."""
    fields = {
        "awsId": [config.aws_id] if config.aws_id else [],
        "accessKeyId": [config.access_key_id],
        "accessSecretKey": [MASK] if config.has_secret("access_secret_key") else [],
        "regionNames": list(config.region_names),
        "Default Schedule": [config.default_rotation_schedule or {"type": "ON_DEMAND"}],
    }
    return {key: value for key, value in fields.items() if value}


def config_list_row(config: PamConfiguration, *, verbose: bool) -> dict:
    row = {
        "uid": config.uid,
        "config_name": config.title,
        "config_type": CONFIG_TYPE,
        "gateway_uid": config.gateway.uid,
        "resource_record_uids": [],
        **_folder_json(config.folder),
        "gateway_name": config.gateway.name,
    }
    if verbose:
        row["fields"] = _config_fields(config)
    return row


def config_detail(config: PamConfiguration) -> dict:
    return {
        "uid": config.uid,
        "name": config.title,
        "config_type": CONFIG_TYPE,
        "gateway_uid": config.gateway.uid,
        "gateway_name": config.gateway.name,
        "resource_record_uids": [],
        "fields": _config_fields(config),
        **_folder_json(config.folder),
        "endpoint_url": config.endpoint_url,
        "scope_path_prefix": config.scope_path_prefix,
        "scope_user_pattern": config.scope_user_pattern,
    }


def cmd_config_list(options: argparse.Namespace, out: OutputHelper) -> int:
    if options.config:
        detail = config_detail(find_configuration(options.config))
        if options.format == "json":
            out.json(detail)
        else:
            fields = detail.pop("fields")
            detail.pop("folder")
            detail["shared_folder"] = "{name} ({uid})".format(**detail["shared_folder"])
            out.fields(detail | {key: values for key, values in fields.items()})
        return 0
    configs = PamConfiguration.objects.select_related("folder", "gateway").order_by("title", "pk")
    rows = [config_list_row(c, verbose=options.verbose) for c in configs]
    if options.format == "json":
        out.json({"configurations": rows})
        return 0
    for row in rows:
        row["folder_text"] = f"{row['folder']['name']} ({row['folder']['uid']})"
    columns = [
        ("uid", "UID"),
        ("config_name", "CONFIG NAME"),
        ("config_type", "CONFIG TYPE"),
        ("folder_text", "FOLDER"),
        ("gateway_uid", "GATEWAY UID"),
        ("gateway_name", "GATEWAY"),
    ]
    out.table(rows, columns + ([("fields", "FIELDS")] if options.verbose else []))
    return 0


def _default_schedule_text(value: str) -> str:
    """Commander's --schedule is a cron expression, kept in UTC ("Etc/UTC", as Commander writes
    it); a JSON schedule (object, or Keeper's one-entry list) is taken as well."""
    text = value.strip()
    if text.startswith("["):
        try:
            entries = json.loads(text)
        except ValueError as exc:
            raise CliError(f"--schedule: not valid JSON ({exc})") from None
        if not isinstance(entries, list) or len(entries) > 1:
            raise CliError("--schedule: a configuration holds one default schedule; give one")
        return json.dumps(entries[0] if entries else {"type": "ON_DEMAND"})
    if text.startswith("{"):
        return text
    if not text:
        return json.dumps({"type": "ON_DEMAND"})
    return json.dumps({"type": "CRON", "cron": text, "tz": "Etc/UTC"})


def _secret_from_stdin(flag: str) -> str:
    """A secret given as `FLAG -`: its first line on stdin, so that it is never on the command
    line (visible to every user of the host in `ps`, and kept in shell history)."""
    secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        raise CliError(f"{flag} -: no secret on stdin (give it as the first line)")
    return secret


def _config_form_data(options: argparse.Namespace, config: PamConfiguration | None) -> dict:
    """What the browser form would be posted: the configuration's current values, overlaid
    with the flags given."""
    data = {
        "title": "",
        "environment": "aws",
        "gateway": "",
        "aws_id": "",
        "access_key_id": USE_INSTANCE_ROLE,
        "access_secret_key": "",
        "region_names": "us-east-1",
        "endpoint_url": "",
        "default_rotation_schedule": json.dumps({"type": "ON_DEMAND"}),
        "scope_path_prefix": "",
        "scope_user_pattern": "",
    }
    if config is not None:
        data |= {
            "title": config.title,
            "environment": config.environment,
            "gateway": config.gateway.name,
            "aws_id": config.aws_id,
            "access_key_id": config.access_key_id,
            "region_names": ", ".join(config.region_names),
            "endpoint_url": config.endpoint_url,
            "default_rotation_schedule": json.dumps(config.default_rotation_schedule),
            "scope_path_prefix": config.scope_path_prefix,
            "scope_user_pattern": config.scope_user_pattern,
        }
    if options.config_type is not None and options.config_type != "aws":
        raise CliError(
            f"--environment {options.config_type} is not supported: this vault holds AWS "
            "configurations only (--environment aws)"
        )
    if options.gateway is not None:
        data["gateway"] = find_gateway(options.gateway).name
    for name in (
        "title",
        "aws_id",
        "access_key_id",
        "access_secret_key",
        "endpoint_url",
        "scope_path_prefix",
        "scope_user_pattern",
    ):
        if getattr(options, name) is not None:
            data[name] = getattr(options, name)
    if options.access_secret_key == "-":
        data["access_secret_key"] = _secret_from_stdin("--access-secret-key")
    if options.region_names:
        data["region_names"] = ", ".join(options.region_names)
    if options.default_schedule is not None:
        data["default_rotation_schedule"] = _default_schedule_text(options.default_schedule)
    return data


def _config_save(
    options: argparse.Namespace, folder: SharedFolder, config: PamConfiguration | None
) -> PamConfiguration:
    """Validate as the browser form does (vault/forms.py PamConfigurationForm: the same rules and
    messages), then save through the same service, audited with actor "cli". The operator's
    CLI may name any gateway, as `pam import` may."""
    from django.contrib.auth.models import AnonymousUser
    from django.db import IntegrityError

    from vault.forms import PamConfigurationForm

    form = PamConfigurationForm(
        _config_form_data(options, config), folder=folder, user=AnonymousUser(), instance=config
    )
    form.fields["gateway"].queryset = Gateway.objects.select_related("application")
    if not form.is_valid():
        raise CliError(
            *(
                f"{CONFIG_FLAGS.get(field, field)}: {message}" if field != "__all__" else message
                for field, messages in form.errors.items()
                for message in messages
            )
        )
    target = config if config is not None else PamConfiguration(folder=folder)
    try:
        with transaction.atomic():
            form.apply_to(target)
            return services.configuration_save(
                config=target, access_secret_key=form.secret_for_service(), actor_kind="cli"
            )
    except IntegrityError:
        raise CliError(
            "--title: Another configuration in this folder already has this title."
        ) from None


def _config_saved(config: PamConfiguration, out: OutputHelper) -> int:
    from vault.access import configuration_problem

    problem = configuration_problem(config, config.gateway)
    if problem:
        out.note(f"note: {problem}")
    out.json(configuration_data(config, unmask=False))
    return 0


def cmd_config_new(options: argparse.Namespace, out: OutputHelper) -> int:
    if not options.title:
        raise CliError("--title is required")
    if not options.shared_folder_uid:
        raise CliError("--shared-folder is required: the folder (uid or name) to create it in")
    if not options.gateway:
        raise CliError("--gateway is required: the gateway (uid or name) that uses it")
    folder = find_folder(options.shared_folder_uid)
    return _config_saved(_config_save(options, folder, None), out)


def cmd_config_edit(options: argparse.Namespace, out: OutputHelper) -> int:
    config = find_configuration(options.uid)
    if options.shared_folder_uid is not None:
        folder = find_folder(options.shared_folder_uid)
        if folder.pk != config.folder_id:
            raise CliError(
                "--shared-folder: moving a configuration to another folder is not supported "
                "(the records that rotate through it and the folder's shares depend on it); "
                "create a new one there instead"
            )
    return _config_saved(_config_save(options, config.folder, config), out)


def cmd_config_remove(options: argparse.Namespace, out: OutputHelper) -> int:
    """As the configuration page's Delete does (services.configuration_delete): refused while
    a record's rotation settings (or a rotation in progress) use it."""
    from django.db.models import ProtectedError

    config = find_configuration(options.uid)
    title = config.title
    try:
        services.configuration_delete(config=config, actor_kind="cli")
    except ProtectedError as exc:
        reason = services.deletion_refusal_reason(
            exc, "records still use it for rotation. Point them at another one first."
        )
        raise CliError(f"The configuration “{title}” was not deleted: {reason}") from None
    out.json_line({"uid": config.uid, "title": title, "removed": True})
    return 0


def _add_config_arguments(parser: argparse.ArgumentParser, *, new: bool) -> None:
    """Commander's common `pam config new|edit` flags (AWS ones), and the ones we do not take."""
    parser.add_argument(
        "--environment",
        "-env",
        dest="config_type",
        choices=COMMANDER_ENVIRONMENTS,
        help="PAM Configuration type: only aws is supported (the default)",
    )
    parser.add_argument("--title", "-t", help="title of the PAM Configuration")
    parser.add_argument("--gateway", "-g", help="gateway uid or name")
    parser.add_argument(
        "--shared-folder",
        "-sf",
        dest="shared_folder_uid",
        metavar="UID|NAME",
        help="the folder" + (" (required)" if new else " (cannot be changed)"),
    )
    parser.add_argument(
        "--schedule",
        "-sc",
        dest="default_schedule",
        metavar="CRON|JSON",
        help='default rotation schedule: cron (UTC, as Commander) or schedule JSON; "" for on demand',
    )
    parser.add_argument("--aws-id", help="AWS ID")
    parser.add_argument("--access-key-id", help="access key ID, or USE_INSTANCE_ROLE")
    parser.add_argument(
        "--access-secret-key", help='access secret key (never shown); "-" reads it from stdin'
    )
    parser.add_argument(
        "--region-name",
        dest="region_names",
        action="append",
        metavar="REGION",
        help="region name (repeat for several)",
    )
    parser.add_argument("--endpoint-url", help="ours: a VPC endpoint URL (AWS_ENDPOINT_ALLOWLIST)")
    parser.add_argument("--scope-path-prefix", help="ours: target scope, an IAM path prefix")
    parser.add_argument("--scope-user-pattern", help="ours: target scope, IAM user names/patterns")
    only_aws = "this vault holds AWS configurations only"
    add_unsupported(parser, "--port-mapping", "-pm", reason="the vault has no connections")
    add_unsupported(
        parser, "--identity-provider", "-idp", reason="the vault has no identity providers"
    )
    for flag in (
        "--network-id", "--network-cidr", "--azure-id", "--client-id", "--client-secret",
        "--subscription_id", "--tenant-id", "--resource-group", "--domain-id",
        "--domain-hostname", "--domain-port", "--domain-use-ssl", "--domain-scan-dc-cidr",
        "--domain-network-cidr", "--domain-admin", "--domain-user-match", "--oci-id",
        "--oci-admin-id", "--oci-admin-public-key", "--oci-admin-private-key", "--oci-tenancy",
        "--oci-region", "--gcp-id", "--service-account-key", "--google-admin-email",
        "--gcp-region", "--github-id", "--personal-access-token", "--github-base-url",
    ):  # fmt: skip
        add_unsupported(parser, flag, reason=only_aws)
    no_sessions = "the vault rotates passwords only (no connections, tunnels or recordings)"
    for flags in (
        ("--connections", "-c"), ("--tunneling", "-u"), ("--remote-browser-isolation", "-rbi"),
        ("--connections-recording", "-cr"), ("--typescript-recording", "-tr"),
        ("--ai-threat-detection",), ("--ai-terminate-session-on-detection",),
    ):  # fmt: skip
        add_unsupported(parser, *flags, reason=no_sessions)
    add_unsupported(
        parser, "--rotation", "-r",
        reason="rotation is always allowed on a configuration; turn it on or off per record "
        "(pam rotation edit --enable/--disable)",
    )  # fmt: skip


# --- pam genkey / pam rekey -----------------------------------------------------------------


def cmd_genkey(options: argparse.Namespace, out: OutputHelper) -> int:
    out.line(
        "# A new key. Put it first in VAULT_ENCRYPTION_KEYS (comma-separated), keep the old "
        "keys after it, then run `pam rekey`:"
    )
    out.line(crypto.generate_key())
    return 0


def secret_models() -> list[type]:
    """Every installed model that stores secrets through SecretsMixin."""
    return [m for m in apps.get_models() if issubclass(m, SecretsMixin)]


def rekey_all() -> tuple[int, int]:
    """Re-encrypt every stored secret under the first key. Returns (touched, already current).

    One transaction: if any value cannot be decrypted, nothing is rewritten."""
    touched = current = 0
    with transaction.atomic():
        for model in secret_models():
            fields = [f.name for f in model._meta.fields if f.name.endswith("_enc")]
            rows = model.objects.only("pk", "uid", *fields).order_by("pk")
            for row in rows.iterator(chunk_size=500):
                changes = {}
                for column in fields:
                    blob = getattr(row, column)
                    if not blob:
                        continue
                    if crypto.is_current_key(blob):
                        current += 1
                        continue
                    field = column[: -len("_enc")]
                    try:
                        value = row.get_secret(field)
                    except crypto.CryptoError as exc:
                        raise CliError(
                            f"{model._meta.label} {row.uid} {field}: {exc}; nothing was changed"
                        ) from exc
                    row.set_secret(field, value)
                    changes[column] = getattr(row, column)
                if changes:
                    # update() rather than save(): no auto_now bump, no signals, same row.
                    model.objects.filter(pk=row.pk).update(**changes)
                    touched += len(changes)
    return touched, current


def cmd_rekey(options: argparse.Namespace, out: OutputHelper) -> int:
    touched, current = rekey_all()
    out.line(
        f"re-encrypted {touched} secret value(s) under the first key of VAULT_ENCRYPTION_KEYS; "
        f"{current} already used it"
    )
    return 0


# --- registration ---------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import",
        help="import folders, gateways, configurations and PAM Users from a JSON file",
        description="Validate the whole file first; write nothing if any entry is invalid.",
    )
    p.add_argument("file", metavar="FILE", help="the JSON file")
    p.add_argument("--owner", metavar="USERNAME", help="make USERNAME a manager of each folder")
    p.set_defaults(func=cmd_import)

    p = subparsers.add_parser("list", help="list PAM Users and PAM Configurations (no secrets)")
    p.add_argument("--folder", "-fd", metavar="UID|NAME", help="only this folder")
    add_format_argument(p)
    p.set_defaults(func=cmd_list)

    p = subparsers.add_parser("get", help="show one PAM User or PAM Configuration")
    p.add_argument("uid", metavar="UID|TITLE")
    add_format_argument(p)
    p.add_argument("--unmask", action="store_true", help="show secrets (writes an audit event)")
    p.set_defaults(func=cmd_get)

    config = subparsers.add_parser("config", help="PAM Configurations (Commander's flags)")
    configs = config.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    p = configs.add_parser("list", help="PAM Configurations (no secrets)")
    p.add_argument("--config", "-c", metavar="UID|TITLE", help="one configuration, in detail")
    p.add_argument("--verbose", "-v", action="store_true", help="add the fields")
    add_format_argument(p)
    p.set_defaults(func=cmd_config_list)
    p = configs.add_parser("new", help="create an AWS PAM Configuration")
    _add_config_arguments(p, new=True)
    p.set_defaults(func=cmd_config_new)
    p = configs.add_parser("edit", help="change a PAM Configuration")
    p.add_argument("uid", metavar="UID|TITLE", help="the configuration")
    _add_config_arguments(p, new=False)
    add_unsupported(p, "--remove-resource-record", "-rrr", reason="the vault has no resources")
    p.set_defaults(func=cmd_config_edit)
    p = configs.add_parser(
        "remove", help="delete a PAM Configuration no record's rotation settings use"
    )
    p.add_argument("uid", metavar="UID|TITLE", help="the configuration")
    p.set_defaults(func=cmd_config_remove)

    p = subparsers.add_parser("genkey", help="print a new encryption key")
    p.set_defaults(func=cmd_genkey)

    p = subparsers.add_parser(
        "rekey", help="re-encrypt every stored secret under the first encryption key"
    )
    p.set_defaults(func=cmd_rekey)

    project = subparsers.add_parser("project", help="Keeper Commander's PAM projects")
    projects = project.add_subparsers(dest="project_command", metavar="COMMAND", required=True)
    p = projects.add_parser(
        "import",
        help="import a project from Keeper Commander's project import JSON",
        description="Validate the whole file first; write nothing if any entry is invalid. "
        "What the vault cannot hold or rotate is listed, by JSON path, with the reason.",
    )
    p.add_argument("--name", "-n", metavar="NAME", help='project name (overrides "project")')
    p.add_argument("--filename", "-f", metavar="FILE", required=True, help="the JSON file")
    p.add_argument(
        "--dry-run", "-d", action="store_true", help="print the whole plan, write nothing"
    )
    p.add_argument("--output", metavar="FILE", help="also write the plan/result JSON to FILE")
    p.add_argument(
        "--owner", metavar="USERNAME", help="make USERNAME a manager of the project's folders"
    )
    p.set_defaults(func=cmd_project_import)

    p = subparsers.add_parser(
        "export",
        help="write the vault (or one folder) as an import file, with every secret",
        description="The file is created with mode 0600 and the export is audited.",
    )
    p.add_argument("--folder", metavar="UID|NAME", help="only this folder")
    p.add_argument("--output", metavar="FILE", required=True, help="the file to create")
    p.add_argument(
        "--format",
        choices=list(exporter.FORMATS),
        default="native",
        help="native: `pam import`; keeper: Commander's `pam project import`",
    )
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=cmd_export)


def iter_app_cli_modules() -> Iterable[Any]:
    """Each installed app's `cli` module, in INSTALLED_APPS order."""
    from importlib import import_module

    from django.utils.module_loading import module_has_submodule

    for config in apps.get_app_configs():
        if module_has_submodule(config.module, "cli"):
            yield import_module(f"{config.name}.cli")


def call_pam(*args: str) -> tuple[int, str, str]:
    """Run `pam ARGS` in-process; returns (exit status, stdout, stderr). For tests and scripts."""
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    stdout, stderr = StringIO(), StringIO()
    try:
        call_command("pam", *args, stdout=stdout, stderr=stderr)
        code = 0
    except CommandError as exc:
        code = exc.returncode
        if code == 2 and not stderr.getvalue():
            stderr.write(f"{exc}\n")  # usage errors are raised before handle() has a stderr
    return code, stdout.getvalue(), stderr.getvalue()
