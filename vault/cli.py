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
import json
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db import transaction

from vault import crypto, exporter, services
from vault.importer import ImportProblems, import_document, import_project, load_document
from vault.models import PamConfiguration, PamUser, SecretsMixin, SharedFolder

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


def folder_by_uid(uid: str) -> SharedFolder:
    folder = SharedFolder.objects.filter(uid=uid).first()
    if folder is None:
        raise CliError(f'no folder with uid "{uid}" (see `pam list` for uids)')
    return folder


def cmd_list(options: argparse.Namespace, out: OutputHelper) -> int:
    users = PamUser.objects.select_related("folder").order_by("folder__name", "title")
    configs = PamConfiguration.objects.select_related("folder").order_by("folder__name", "title")
    if options.folder:
        folder = folder_by_uid(options.folder)
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
    }
    for extra in RECORD_EXTRAS:
        data.update(extra(record, unmask))
    return data


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
    record = PamUser.objects.select_related("folder").filter(uid=options.uid).first()
    if record is not None:
        data = pam_user_data(record, unmask=options.unmask)
    else:
        config = (
            PamConfiguration.objects.select_related("folder", "gateway")
            .filter(uid=options.uid)
            .first()
        )
        if config is None:
            raise CliError(f'no record or configuration with uid "{options.uid}"')
        data = configuration_data(config, unmask=options.unmask)
    out.output(data, options.format)
    return 0


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
    p.add_argument("--folder", metavar="UID", help="only this folder")
    add_format_argument(p)
    p.set_defaults(func=cmd_list)

    p = subparsers.add_parser("get", help="show one PAM User or PAM Configuration")
    p.add_argument("uid", metavar="UID")
    add_format_argument(p)
    p.add_argument("--unmask", action="store_true", help="show secrets (writes an audit event)")
    p.set_defaults(func=cmd_get)

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
