"""`pam export`: the vault (or one folder) as an import file, with every secret, for backups
and moves.

- ``native`` (the default) writes the `pam import` format (docs/import.md): folders, gateways,
  applications and their shares, PAM Configurations with their secret keys, PAM Users with
  their notes, managed flag, password, access key (id and secret) and password history (each
  entry's password or access key secret, time, source and reason), and
  what apps above the vault add per record through ``USER_EXPORTERS`` (the rotation app: the
  rotation settings). Importing it into an empty vault gives the same rows.
- ``keeper`` writes Keeper Commander's project import format (`pam project import`): one
  project, so the PAM Users exported must be in one folder and rotate through at most one
  configuration. What that format cannot say (password history, endpoint URL, target scope,
  more than one configuration) is not written; ``Export.notes`` says so.

The file is created with mode 0600 and never replaces an existing file unless asked
(``force``); it appears complete or not at all. Every export is audited (``vault.exported``:
who, which folders, how many records and configurations, the format and the file; never a
secret), in the same transaction that puts the file in place.
"""

from __future__ import annotations

import getpass
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection, transaction

from vault.audit import audit_record
from vault.crypto import CryptoError
from vault.models import (
    USE_INSTANCE_ROLE,
    Application,
    ApplicationFolder,
    Gateway,
    PamConfiguration,
    PamUser,
    PasswordVersion,
    SharedFolder,
)

# Per record, what an app above the vault adds to an exported PAM User: key -> exporter
# called as exporter(records, format) with format "native" or "keeper", returning
# {record pk: value}. Native values are written as users[i][key] (and must import back
# through vault.importer.USER_EXTENSIONS[key]). For "keeper" the rotation app returns
# {"configuration": title, "configuration_folder": name, "rotation_settings": {...}}.
USER_EXPORTERS: dict[str, Callable[[list[PamUser], str], dict[int, Any]]] = {}

FORMATS = ("native", "keeper")


class ExportError(Exception):
    """The export cannot be made: one line per problem, never a secret."""

    def __init__(self, *messages: str) -> None:
        super().__init__(messages[0])
        self.messages = list(messages)


@dataclass
class Export:
    document: dict
    folders: list[SharedFolder]
    records: int
    configurations: int
    notes: list[str] = field(default_factory=list)


def find_folder(ref: str) -> SharedFolder:
    """A folder by uid, else by exact name."""
    folder = SharedFolder.objects.filter(uid=ref).first()
    folder = folder or SharedFolder.objects.filter(name=ref).first()
    if folder is None:
        raise ExportError(f'--folder: no folder with uid or name "{ref}" (see `pam list`)')
    return folder


def _secret(row, name: str) -> str:
    try:
        return row.get_secret(name)
    except CryptoError as exc:
        kind = row._meta.model_name
        raise ExportError(
            f"{kind} {row.uid}: the stored {name} cannot be decrypted ({exc}); nothing was "
            "exported. Check that VAULT_ENCRYPTION_KEYS holds the key it was encrypted with."
        ) from None


def _iso(value) -> str:
    return value.isoformat()


def _records(folders: list[SharedFolder] | None) -> list[PamUser]:
    rows = PamUser.objects.select_related("folder").order_by("folder__name", "title", "pk")
    if folders is not None:
        rows = rows.filter(folder__in=folders)
    return list(rows)


def _history(records: list[PamUser]) -> dict[int, list[dict]]:
    """Each record's password history, oldest first."""
    found: dict[int, list[dict]] = {r.pk: [] for r in records}
    by_pk = {r.pk: r for r in records}
    pks = list(by_pk)
    for start in range(0, len(pks), 500):
        versions = PasswordVersion.objects.filter(pam_user_id__in=pks[start : start + 500])
        for version in versions.order_by("pam_user_id", "created_at", "id"):
            entry = {
                "password": _secret(version, "password"),
                "set_at": _iso(version.created_at),
                "source": version.source,
            }
            if version.reason:
                entry["reason"] = version.reason
            if version.kind == PasswordVersion.ACCESS_KEY:
                entry["kind"] = version.kind
                entry["access_key_id"] = version.access_key_id
            found[version.pam_user_id].append(entry)
    return found


def _extras(records: list[PamUser], fmt: str) -> dict[str, dict[int, Any]]:
    return {key: exporter(records, fmt) for key, exporter in USER_EXPORTERS.items()}


def _configuration_native(config: PamConfiguration) -> dict:
    return {
        "title": config.title,
        "environment": config.environment,
        "folder": config.folder.name,
        "gateway": config.gateway.name,
        "aws_id": config.aws_id,
        "access_key_id": config.access_key_id,
        "access_secret_key": _secret(config, "access_secret_key"),
        "region_names": list(config.region_names),
        "endpoint_url": config.endpoint_url,
        "default_rotation_schedule": config.default_rotation_schedule or {"type": "ON_DEMAND"},
        "scope_path_prefix": config.scope_path_prefix,
        "scope_user_pattern": config.scope_user_pattern,
    }


def export_native(folders: list[SharedFolder] | None) -> Export:
    """The vault (``folders`` None) or those folders, in the native import format. The
    configurations the exported records rotate through come too, with their folders."""
    records = _records(folders)
    extras = _extras(records, "native")
    history = _history(records)

    configs = PamConfiguration.objects.select_related("folder", "gateway")
    if folders is None:
        chosen = list(configs.order_by("folder__name", "title"))
    else:
        chosen = list(configs.filter(folder__in=folders).order_by("folder__name", "title"))
        wanted = {
            (v.get("configuration_folder"), v.get("configuration"))
            for values in extras.values()
            for v in values.values()
            if isinstance(v, dict)
        }
        have = {(c.folder.name, c.title) for c in chosen}
        for folder_name, title in sorted(wanted - have, key=str):
            extra = configs.filter(folder__name=folder_name, title=title).first()
            if extra is not None:
                chosen.append(extra)

    folder_rows = list(SharedFolder.objects.order_by("name")) if folders is None else list(folders)
    names = {f.name for f in folder_rows}
    for config in chosen:
        if config.folder.name not in names:
            folder_rows.append(config.folder)
            names.add(config.folder.name)
    folder_rows.sort(key=lambda f: f.name)

    gateway_rows = (
        list(Gateway.objects.select_related("application").order_by("name"))
        if folders is None
        else sorted({c.gateway for c in chosen}, key=lambda g: g.name)
    )
    gateway_names = {g.name for g in gateway_rows}
    shares = ApplicationFolder.objects.filter(folder__in=folder_rows).select_related(
        "application", "folder"
    )
    applications: dict[str, dict] = {}
    for app in Application.objects.order_by("name"):
        if folders is None:
            applications[app.name] = {"name": app.name, "folders": [], "gateways": []}
    for share in shares.order_by("application__name", "folder__name"):
        app = applications.setdefault(
            share.application.name,
            {"name": share.application.name, "folders": [], "gateways": []},
        )
        app["folders"].append({"name": share.folder.name, "editable": share.editable})
    for gateway in gateway_rows:
        if gateway.application_id is not None:
            app = applications.setdefault(
                gateway.application.name,
                {"name": gateway.application.name, "folders": [], "gateways": []},
            )
            app["gateways"].append(gateway.name)
    for app in applications.values():
        app["gateways"] = [g for g in app["gateways"] if g in gateway_names]

    users = []
    for record in records:
        entry = {
            "title": record.title,
            "folder": record.folder.name,
            "login": record.login,
            "password": _secret(record, "password"),
            "distinguished_name": record.distinguished_name,
            "notes": record.notes,
            "managed": record.managed,
            "password_history": history[record.pk],
        }
        if record.access_key_id or record.has_secret("access_secret_key"):
            entry["access_key_id"] = record.access_key_id
            entry["access_secret_key"] = _secret(record, "access_secret_key")
        for key, values in extras.items():
            if record.pk in values:
                entry[key] = values[record.pk]
        users.append(entry)

    document = {
        "folders": [{"name": f.name} for f in folder_rows],
        "gateways": [{"name": g.name} for g in gateway_rows],
        "applications": sorted(applications.values(), key=lambda a: a["name"]),
        "configurations": [_configuration_native(c) for c in chosen],
        "users": users,
    }
    return Export(document, folder_rows, len(records), len(chosen))


def export_keeper(folders: list[SharedFolder] | None) -> Export:
    """One project in Commander's project import format (see the module docstring)."""
    records = _records(folders)
    record_folders = sorted({r.folder.name for r in records})
    if len(record_folders) > 1:
        raise ExportError(
            "--format keeper writes one project, whose PAM Users are in one folder; these are "
            f"in {len(record_folders)} ({', '.join(record_folders)}): give --folder"
        )
    extras = _extras(records, "keeper")
    rotation = extras.get("rotation", {})
    configs = PamConfiguration.objects.select_related("folder", "gateway__application")
    used = {(v["configuration_folder"], v["configuration"]) for v in rotation.values()}
    chosen = [configs.get(folder__name=f, title=t) for f, t in sorted(used)]
    if not chosen:
        scope = folders if folders is not None else SharedFolder.objects.all()
        chosen = list(configs.filter(folder__in=scope))
    if len(chosen) > 1:
        titles = ", ".join(sorted(f'"{c.title}" ({c.folder.name})' for c in chosen))
        raise ExportError(
            "--format keeper writes one project, with one PAM Configuration; these records "
            f"use or hold {len(chosen)}: {titles}. Give --folder, or use --format native"
        )
    config = chosen[0] if chosen else None
    if folders is not None and len(folders) == 1:
        folder = folders[0]
    elif record_folders:
        folder = records[0].folder
    elif config is not None:
        folder = config.folder
    else:
        raise ExportError("nothing to export: no PAM Users and no PAM Configuration")
    project = folder.name.removesuffix(" - Users") or folder.name
    notes: list[str] = []

    members = list(folder.members.select_related("user").order_by("user__username"))
    users_section: dict[str, Any] = {}
    if folder.name != f"{project} - Users":
        users_section["folder_name"] = folder.name
    if members:
        # Keeper gives record rights per folder: the least any member has.
        users_section["can_edit"] = all(m.can_edit for m in members)
        users_section["can_share"] = all(m.can_share for m in members)
        users_section["permissions"] = [
            {
                "name": m.user.username,
                "manage_users": m.manage_users,
                "manage_records": m.manage_records,
            }
            for m in members
        ]
        if any(m.can_edit != users_section["can_edit"] for m in members) or any(
            m.can_share != users_section["can_share"] for m in members
        ):
            notes.append(
                f'folder "{folder.name}": members differ in can_edit/can_share, which Keeper '
                "sets per folder: the least of them is written"
            )

    document: dict[str, Any] = {
        "project": project,
        "shared_folder_users": users_section,
        "shared_folder_resources": {},
    }
    if config is not None:
        section = {
            "environment": "aws",
            "title": config.title,
            "gateway_name": config.gateway.name,
            "aws_id": config.aws_id,
            "aws_access_key_id": config.access_key_id,
            "aws_secret_access_key": _secret(config, "access_secret_key"),
            "aws_region_names": list(config.region_names),
            "default_rotation_schedule": config.default_rotation_schedule or {"type": "ON_DEMAND"},
        }
        if config.gateway.application is not None:
            section["ksm_app_name"] = config.gateway.application.name
        document["pam_configuration"] = section
        if config.endpoint_url:
            notes.append(
                f'configuration "{config.title}": its endpoint URL is not part of Keeper\'s '
                "format and is not written"
            )
        if config.access_key_id == USE_INSTANCE_ROLE:
            notes.append(
                f'configuration "{config.title}": its target scope is not part of Keeper\'s '
                "format; `pam project import` limits it to the project's IAM users"
            )
    users = []
    for record in records:
        entry: dict[str, Any] = {
            "type": "pamUser",
            "title": record.title,
            "notes": record.notes,
            "login": record.login,
            "password": _secret(record, "password"),
            "distinguished_name": record.distinguished_name,
            "managed": record.managed,
        }
        if record.pk in rotation:
            entry["rotation_settings"] = rotation[record.pk]["rotation_settings"]
        users.append(entry)
    if records:
        notes.append("password history is not part of Keeper's format and is not written")
    for record in records:
        if record.access_key_id:
            notes.append(
                f'record "{record.title}": its access key is not part of Keeper\'s format and '
                "is not written"
            )
    document["pam_data"] = {"resources": [], "users": users}
    folders_out = [folder] + ([config.folder] if config and config.folder != folder else [])
    return Export(document, folders_out, len(records), 1 if config else 0, notes)


def export(
    *,
    output: Path,
    fmt: str = "native",
    folder: str | None = None,
    force: bool = False,
    actor_kind: str = "cli",
) -> Export:
    """Make the export and write it to `output` (0600), audited. Raises ExportError."""
    if fmt not in FORMATS:
        raise ExportError(f"--format: must be one of {', '.join(FORMATS)}")
    folders = [find_folder(folder)] if folder is not None else None
    _check_target(output, force)
    made = _consistent(
        lambda: export_keeper(folders) if fmt == "keeper" else export_native(folders)
    )
    text = json.dumps(made.document, indent=2, ensure_ascii=False) + "\n"
    temp = _write_private(output, text)
    placed = False
    try:
        with transaction.atomic():
            audit_record(
                "vault.exported",
                actor_kind=actor_kind,
                folder=made.folders[0] if folders is not None else None,
                details={
                    "os_user": _os_user(),
                    "format": fmt,
                    "file": str(output.absolute()),
                    "folders": [f.name for f in made.folders] if folders is not None else "all",
                    "records": made.records,
                    "configurations": made.configurations,
                },
            )
            _put_in_place(temp, output, force)
            placed = True
    except BaseException:
        temp.unlink(missing_ok=True)
        if placed:  # the audit event was not committed: neither is the file
            output.unlink(missing_ok=True)
        raise
    return made


def _consistent(read: Callable[[], Export]) -> Export:
    """`read()` in one snapshot of the database: a rotation that finishes meanwhile is either
    wholly in the file (password and history) or not at all. SQLite's read transaction is one;
    PostgreSQL needs REPEATABLE READ, set before the transaction's first query."""
    outer = connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and not outer:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return read()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _check_target(output: Path, force: bool) -> None:
    if output.is_dir():
        raise ExportError(f"--output: {output} is a directory")
    if not output.parent.is_dir():
        raise ExportError(f"--output: the directory {output.parent} does not exist")
    if (output.exists() or output.is_symlink()) and not force:
        raise ExportError(
            f"--output: {output} already exists; give --force to replace it, or another file"
        )


def _write_private(output: Path, text: str) -> Path:
    """`text` in a new 0600 file beside `output` (complete, flushed to disk)."""
    fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _put_in_place(temp: Path, output: Path, force: bool) -> None:
    """Rename the finished file to `output`: replacing it only with `force`, and never
    following a link someone put there meanwhile."""
    if force:
        os.replace(temp, output)
        return
    exists = ExportError(
        f"--output: {output} already exists; give --force to replace it, or another file"
    )
    try:
        os.link(temp, output)  # fails if `output` exists, whatever it is
    except FileExistsError:
        raise exists from None
    except OSError:  # a file system without hard links: create it exclusively instead
        try:
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            raise exists from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(temp.read_bytes())
            handle.flush()
            os.fsync(handle.fileno())
    temp.unlink()
