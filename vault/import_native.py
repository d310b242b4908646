"""The reader of the vault's own import format (`pam import`, docs/import.md) into the import
model (vault/import_model.py).

The whole document is checked before anything is written; every problem is reported with its
JSON path (``users[3].distinguished_name: not an IAM user ARN``). References (a
configuration's or user's ``folder``, a configuration's ``gateway``, an application's
``folders``/``gateways``) name an entry of the same file or a row already in the vault.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from vault.import_model import (
    MISSING,
    ApplicationItem,
    Checker,
    ConfigurationItem,
    FolderItem,
    GatewayItem,
    HistoryEntry,
    ImportContext,
    ImportProblems,
    Plan,
    UserItem,
    check_credentials,
    check_document,
    check_folder_case,
    check_login_and_arn,
    check_new_gateway_name,
    check_notes,
    check_password,
    check_regions,
    check_schedule,
    check_scope,
    check_user_access_key,
    json_type,
    owner_of,
)
from vault.models import Gateway, PasswordVersion, SharedFolder
from vault.validators import validate_endpoint_url, validate_user_access_key_id

TOP_KEYS = ("folders", "gateways", "applications", "configurations", "users")
FOLDER_KEYS = ("name",)
GATEWAY_KEYS = ("name",)
APPLICATION_KEYS = ("name", "folders", "gateways", "editable")
APPLICATION_FOLDER_KEYS = ("name", "editable")
CONFIGURATION_KEYS = (
    "title",
    "environment",
    "folder",
    "gateway",
    "aws_id",
    "access_key_id",
    "access_secret_key",
    "region_names",
    "endpoint_url",
    "default_rotation_schedule",
    "scope_path_prefix",
    "scope_user_pattern",
)
USER_KEYS = (
    "title",
    "folder",
    "login",
    "password",
    "distinguished_name",
    "notes",
    "managed",
    "access_key_id",
    "access_secret_key",
    "password_history",
    "rotation",
)
HISTORY_KEYS = ("password", "set_at", "source", "reason", "kind", "access_key_id")
HISTORY_KINDS = tuple(key for key, _ in PasswordVersion.KINDS)
HISTORY_SOURCES = tuple(key for key, _ in PasswordVersion.SOURCES)


def read(data: Any, context: ImportContext, *, owner_username: str | None = None) -> Plan:
    """Check everything; raise ImportProblems with every problem (one per line) if any."""
    check_document(data)
    check = Checker()
    context.data, context.format = data, "native"
    for key in data:
        if key not in TOP_KEYS:
            check.add(key, f"unknown key (expected: {', '.join(TOP_KEYS)})")
    plan = Plan(format="native")
    plan.owner = context.owner = owner_of(check, owner_username)

    plan.folders = [
        FolderItem(path, name)
        for path, name in _named(check, data, "folders", FOLDER_KEYS, "folder", max_length=200)
    ]
    folder_names = {f.name for f in plan.folders}
    check_folder_case(check, [(f"{f.path}.name", f.name) for f in plan.folders])
    plan.gateways = [
        GatewayItem(path, name)
        for path, name in _named(check, data, "gateways", GATEWAY_KEYS, "gateway", max_length=100)
        if check_new_gateway_name(check, name, f"{path}.name")
    ]
    gateway_names = {g.name for g in plan.gateways}

    referenced_folders, referenced_gateways = _references(data)
    known_folders = folder_names | set(
        SharedFolder.objects.filter(name__in=referenced_folders).values_list("name", flat=True)
    )
    known_gateways = gateway_names | set(
        Gateway.objects.filter(name__in=referenced_gateways).values_list("name", flat=True)
    )

    def folder_ref(entry: dict, path: str) -> str | None:
        name = check.string(entry, "folder", path)
        if name is None:
            return None
        if name not in known_folders:
            check.add(
                f"{path}.folder", f'unknown folder "{name}" (not in folders[] and not in the vault)'
            )
            return None
        return name

    if "applications" in data:
        plan.applications = _applications(check, data, known_folders, known_gateways)

    seen_configs: dict[tuple[str, str], str] = {}
    for path, entry in check.entries(data, "configurations"):
        item = _configuration(check, entry, path, folder_ref, known_gateways, context)
        context.configuration_entries.append(
            {"title": entry.get("title"), "folder": entry.get("folder")}
        )
        if item is None:
            continue
        key = (item.folder, item.title)
        if key in seen_configs:
            check.add(
                f"{path}.title",
                f'duplicate configuration title "{key[1]}" in folder "{key[0]}" '
                f"(also {seen_configs[key]})",
            )
            continue
        seen_configs[key] = path
        plan.configurations.append(item)

    seen_users: dict[tuple[str, str], str] = {}
    for path, entry in check.entries(data, "users"):
        context.current_user_entry = entry
        item = _user(check, entry, path, folder_ref, context)
        if item is None:
            continue
        key = (item.folder, item.title)
        if key in seen_users:
            check.add(
                f"{path}.title",
                f'duplicate user title "{key[1]}" in folder "{key[0]}" (also {seen_users[key]})',
            )
            continue
        seen_users[key] = path
        plan.users.append(item)
    context.current_user_entry = None

    if check.errors:
        raise ImportProblems(*check.errors)
    return plan


def _references(data: dict) -> tuple[set[str], set[str]]:
    """Folder and gateway names the document refers to (one query each for the lot)."""
    folders, gateways = set(), set()

    def items(key: str) -> list:
        value = data.get(key)
        return value if isinstance(value, list) else []

    for key in ("configurations", "users"):
        for item in items(key):
            if isinstance(item, dict) and isinstance(item.get("folder"), str):
                folders.add(item["folder"])
            if key == "configurations" and isinstance(item, dict):
                if isinstance(item.get("gateway"), str):
                    gateways.add(item["gateway"])
    for item in items("applications"):
        if not isinstance(item, dict):
            continue
        for ref in item.get("folders", []) if isinstance(item.get("folders"), list) else []:
            if isinstance(ref, dict):
                ref = ref.get("name")
            if isinstance(ref, str):
                folders.add(ref)
        for ref in item.get("gateways", []) if isinstance(item.get("gateways"), list) else []:
            if isinstance(ref, str):
                gateways.add(ref)
    return folders, gateways


def _named(
    check: Checker,
    data: dict,
    key: str,
    allowed: tuple[str, ...],
    noun: str,
    *,
    max_length: int,
) -> list[tuple[str, str]]:
    found, seen = [], {}
    for path, entry in check.entries(data, key):
        check.keys(entry, allowed, path)
        name = check.string(entry, "name", path, max_length=max_length)
        if name is None:
            continue
        if name in seen:
            check.add(f"{path}.name", f'duplicate {noun} "{name}" (also {seen[name]})')
            continue
        seen[name] = path
        found.append((path, name))
    return found


def _applications(
    check: Checker, data: dict, known_folders: set[str], known_gateways: set[str]
) -> list[ApplicationItem]:
    applications = []
    seen: dict[str, str] = {}
    for path, entry in check.entries(data, "applications"):
        check.keys(entry, APPLICATION_KEYS, path)
        name = check.string(entry, "name", path)
        if name and name in seen:
            check.add(f"{path}.name", f'duplicate application "{name}" (also {seen[name]})')
        elif name:
            seen[name] = path
        editable = entry.get("editable", True)
        if not isinstance(editable, bool):
            check.add(f"{path}.editable", "must be true or false")
            editable = True
        folders = []
        raw = entry.get("folders", [])
        if not isinstance(raw, list):
            check.add(f"{path}.folders", f"must be a list of folder names, not {json_type(raw)}")
            raw = []
        for i, ref in enumerate(raw):
            where = f"{path}.folders[{i}]"
            share_editable = editable
            if isinstance(ref, dict):
                check.keys(ref, APPLICATION_FOLDER_KEYS, where)
                share_editable = ref.get("editable", editable)
                if not isinstance(share_editable, bool):
                    check.add(f"{where}.editable", "must be true or false")
                ref = ref.get("name")
                where = f"{where}.name"
            if not isinstance(ref, str) or not ref:
                check.add(where, "must be a non-empty string")
            elif ref not in known_folders:
                check.add(where, f'unknown folder "{ref}"')
            else:
                folders.append((ref, share_editable is not False))
        app_gateways = check.string_list(entry, "gateways", path) or []
        for i, ref in enumerate(app_gateways):
            if ref not in known_gateways:
                check.add(f"{path}.gateways[{i}]", f'unknown gateway "{ref}"')
        if name:
            applications.append(ApplicationItem(path, name, folders, app_gateways))
    return applications


def _configuration(
    check: Checker,
    entry: dict,
    path: str,
    folder_ref,
    known_gateways: set[str],
    context: ImportContext,
) -> ConfigurationItem | None:
    before = len(check.errors)
    check.keys(entry, CONFIGURATION_KEYS, path)
    title = check.string(entry, "title", path)
    folder = folder_ref(entry, path)
    gateway = check.string(entry, "gateway", path, max_length=100)
    if gateway is not None and gateway not in known_gateways:
        check.add(
            f"{path}.gateway",
            f'unknown gateway "{gateway}" (not in gateways[] and not in the vault)',
        )
    environment = check.string(entry, "environment", path, required=False, max_length=20)
    if environment not in (MISSING, None, "aws"):
        check.add(f"{path}.environment", 'must be "aws" (the only environment)')
    aws_id = check.string(entry, "aws_id", path, required=False, allow_empty=True)
    key_id = check.string(entry, "access_key_id", path, max_length=128)
    secret = check.string(
        entry, "access_secret_key", path, required=False, max_length=256, allow_empty=True
    )
    key_id, secret = check_credentials(
        check,
        key_id,
        secret,
        path=path,
        key_id_key="access_key_id",
        secret_key="access_secret_key",
    )
    regions = MISSING
    if "region_names" in entry:
        regions = check_regions(
            check, check.string_list(entry, "region_names", path), f"{path}.region_names"
        )
    endpoint = check.string(
        entry, "endpoint_url", path, required=False, max_length=500, allow_empty=True
    )
    check.validated(endpoint, f"{path}.endpoint_url", validate_endpoint_url)
    schedule = check_schedule(
        check,
        entry.get("default_rotation_schedule", MISSING),
        f"{path}.default_rotation_schedule",
        context,
    )
    prefix = check.string(
        entry, "scope_path_prefix", path, required=False, max_length=512, allow_empty=True
    )
    pattern = check.string(
        entry, "scope_user_pattern", path, required=False, max_length=512, allow_empty=True
    )
    prefix, pattern = check_scope(check, prefix, pattern, path=path, key_id=key_id)
    if len(check.errors) != before:
        return None
    return ConfigurationItem(
        path=path,
        title=title,
        folder=folder,
        gateway=gateway,
        access_key_id=key_id,
        access_secret_key=secret,
        aws_id=aws_id,
        region_names=regions,
        endpoint_url=endpoint,
        default_rotation_schedule=schedule,
        scope_path_prefix=prefix,
        scope_user_pattern=pattern,
    )


def _user(
    check: Checker, entry: dict, path: str, folder_ref, context: ImportContext
) -> UserItem | None:
    before = len(check.errors)
    check.keys(entry, tuple(dict.fromkeys(USER_KEYS + tuple(context.extensions))), path)
    title = check.string(entry, "title", path)
    folder = folder_ref(entry, path)
    login = check.string(entry, "login", path, max_length=64)
    arn = check.string(entry, "distinguished_name", path, max_length=2048)
    check_login_and_arn(check, login, arn, path=path)
    password = check.string(
        entry, "password", path, required=False, max_length=10_000, allow_empty=True
    )
    password = check_password(check, password, f"{path}.password")
    notes = check_notes(check, entry, path)
    access_key = check_user_access_key(
        check,
        check.string(entry, "access_key_id", path, required=False, max_length=128),
        check.string(entry, "access_secret_key", path, required=False, max_length=10_000),
        path=path,
    )
    managed = entry.get("managed", MISSING)
    if managed is not MISSING and not isinstance(managed, bool):
        check.add(f"{path}.managed", f"must be true or false, not {json_type(managed)}")
    history = None
    if "password_history" in entry:
        history = _history(check, entry["password_history"], f"{path}.password_history")

    extensions = {}
    for key, extension in context.extensions.items():
        if key in entry:
            check.errors.extend(extension.validate(entry[key], f"{path}.{key}", context))
            extensions[key] = (entry[key], f"{path}.{key}")
    if "rotation" in entry and "rotation" not in context.extensions:
        if not isinstance(entry["rotation"], dict):
            check.add(f"{path}.rotation", f"must be an object, not {json_type(entry['rotation'])}")
    if len(check.errors) != before:
        return None
    return UserItem(
        path=path,
        title=title,
        folder=folder,
        login=login,
        distinguished_name=arn,
        password=password,
        notes=notes,
        managed=managed,
        history=history,
        extensions=extensions,
        access_key=access_key,
    )


def _history(check: Checker, value: Any, where: str) -> list[HistoryEntry] | None:
    """A record's password history, oldest first: each entry's password, when it was set
    (ISO 8601 with a time zone), by what (a history source) and why."""
    if not isinstance(value, list):
        check.add(where, f"must be a list, not {json_type(value)}")
        return None
    entries = []
    for i, item in enumerate(value):
        path = f"{where}[{i}]"
        if not isinstance(item, dict):
            check.add(path, "must be an object")
            continue
        check.keys(item, HISTORY_KEYS, path)
        password = check.string(item, "password", path, max_length=10_000)
        password = check_password(check, password, f"{path}.password")
        set_at = _timestamp(check, item, "set_at", path)
        source = check.string(item, "source", path, required=False, max_length=20)
        if source is MISSING:
            source = "import"
        elif source is not None and source not in HISTORY_SOURCES:
            check.add(f"{path}.source", f"must be one of {', '.join(HISTORY_SOURCES)}")
            source = None
        reason = check.string(
            item, "reason", path, required=False, max_length=300, allow_empty=True
        )
        reason = "" if reason is MISSING else reason
        kind, key_id = _history_kind(check, item, path)
        if None not in (password, set_at, source, reason, kind, key_id):
            entries.append(HistoryEntry(password, set_at, source, reason, kind, key_id))
    return entries


def _history_kind(check: Checker, item: dict, path: str) -> tuple[Any, Any]:
    """(kind, access key id) of a history entry: a console password (the default), or an
    access key's secret, which names its key id; (None, None) after an error."""
    kind = check.string(item, "kind", path, required=False, max_length=20)
    if kind is MISSING:
        kind = PasswordVersion.PASSWORD
    elif kind is not None and kind not in HISTORY_KINDS:
        check.add(f"{path}.kind", f"must be one of {', '.join(HISTORY_KINDS)}")
        return None, None
    key_id = check.string(item, "access_key_id", path, required=False, max_length=128)
    if kind == PasswordVersion.ACCESS_KEY:
        if key_id is MISSING:
            check.add(f"{path}.access_key_id", "required when kind is access_key")
            return None, None
        if not check.validated(key_id, f"{path}.access_key_id", validate_user_access_key_id):
            return None, None
    elif key_id is not MISSING and key_id is not None:
        check.add(f"{path}.access_key_id", "only with kind access_key")
        return None, None
    if kind is None or key_id is None:
        return None, None
    return kind, "" if key_id is MISSING else key_id


def _timestamp(check: Checker, entry: dict, key: str, path: str) -> datetime | None:
    text = check.string(entry, key, path, max_length=64)
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        check.add(
            f"{path}.{key}",
            "must be an ISO 8601 date and time with its offset, e.g. 2024-05-01T12:00:00+00:00",
        )
        return None
    return value
