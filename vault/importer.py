"""`pam import`: folders, gateways, applications, PAM Configurations and PAM Users from JSON.

The whole document is validated before anything is written; every problem is reported with
its JSON path (``users[3].distinguished_name: not an IAM user ARN``). Then everything is
written through vault/services.py in one transaction.

Matching, so that importing the same file twice changes nothing: folders by name, gateways by
name, applications by name, configurations by title within their folder, PAM Users by title
within their folder. A matched row is updated only where the file differs; a key left out of
the file keeps the stored value. Passwords: an empty or missing password never clears a stored
one, and a password that is already in the record's history (for example the one the file
first imported, since rotated away) is not put back, so re-importing after a rotation does not
undo it.

References (a configuration's or user's ``folder``, a configuration's ``gateway``, an
application's ``folders``/``gateways``) name an entry of the same file or a row already in the
vault.

Extension points for other apps (the rotation app registers in its AppConfig.ready()):

- ``USER_EXTENSIONS[key]``: an object with ``validate(value, path, context) -> list[str]``
  (complete error lines, each starting with ``path``) and ``apply(record, value, context)``,
  called for ``users[i][key]`` after every record of the file is saved. Without an extension,
  ``rotation`` is checked to be an object and otherwise ignored.
- ``CONFIGURATION_FIELD_CLEANERS[key]``: ``clean(value) -> stored value``, raising Django's
  ValidationError; used for ``default_rotation_schedule`` (which otherwise must be an object).

Every problem with the document is reported by raising ``ImportProblems``, whose ``problems``
are the "json.path: message" lines; `pam import` prints one per line.

``ImportContext`` lets an extension resolve a configuration title to the configuration in the
same file (``configuration_error`` while validating, ``configuration`` while applying) or to
one already in the vault.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction

from vault import services
from vault.models import (
    USE_INSTANCE_ROLE,
    Application,
    ApplicationFolder,
    FolderMember,
    Gateway,
    PamConfiguration,
    PamUser,
    SharedFolder,
)
from vault.validators import (
    normalize_scope_user_pattern,
    validate_access_key_id,
    validate_arn_matches_login,
    validate_endpoint_url,
    validate_iam_login,
    validate_iam_path_prefix,
    validate_iam_user_arn,
    validate_password_text,
    validate_region_name,
    validate_secret_key_text,
)


class ImportProblems(Exception):
    """The document cannot be imported: one line per problem, each starting with where it is
    (a JSON path such as ``users[3].login``, or the file)."""

    def __init__(self, problem: str, *more: str) -> None:
        super().__init__(problem)
        self.problems = [problem, *more]


class UserExtension(Protocol):
    def validate(self, value: Any, path: str, context: ImportContext) -> list[str]: ...

    def apply(self, record: PamUser, value: Any, context: ImportContext) -> None: ...


USER_EXTENSIONS: dict[str, UserExtension] = {}
CONFIGURATION_FIELD_CLEANERS: dict[str, Callable[[Any], Any]] = {}

TOP_KEYS = ("folders", "gateways", "applications", "configurations", "users")
FOLDER_KEYS = ("name",)
GATEWAY_KEYS = ("name",)
APPLICATION_KEYS = ("name", "folders", "gateways", "editable")
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
USER_KEYS = ("title", "folder", "login", "password", "distinguished_name", "rotation")
MISSING = object()


def _messages(exc: ValidationError) -> list[str]:
    return list(exc.messages)


@dataclass
class ImportContext:
    """What an import knows while validating and applying; passed to extensions."""

    data: dict
    owner: Any = None
    actor_kind: str = "cli"
    # Validation: (folder name, title) -> entry, for the configurations of the file.
    configuration_entries: list[dict] = field(default_factory=list)
    # The user entry being validated (extensions may need its folder).
    current_user_entry: dict | None = None
    # Apply: (folder name, title) -> saved configuration.
    saved_configurations: dict[tuple[str, str], PamConfiguration] = field(default_factory=dict)
    folders: dict[str, SharedFolder] = field(default_factory=dict)

    def _file_matches(self, ref: str) -> list[dict]:
        return [e for e in self.configuration_entries if e.get("title") == ref]

    def configuration_error(self, ref: Any) -> str | None:
        """None if `ref` (a title, or an existing configuration's uid) names exactly one
        configuration of the file or of the vault; otherwise what is wrong."""
        if not isinstance(ref, str) or not ref:
            return "must be a configuration title"
        in_file = self._file_matches(ref)
        if len(in_file) > 1:
            return f'configuration title "{ref}" is used in more than one folder of this file'
        if in_file:
            return None
        stored = PamConfiguration.objects.filter(title=ref).count()
        if stored > 1:
            return f'configuration title "{ref}" is used in more than one folder of the vault'
        if stored == 1 or PamConfiguration.objects.filter(uid=ref).exists():
            return None
        return f'unknown configuration "{ref}" (not in configurations[] and not in the vault)'

    def configuration_entry(self, ref: str) -> dict | None:
        """The file's entry for `ref`, if the file defines it (validation time)."""
        in_file = self._file_matches(ref)
        return in_file[0] if len(in_file) == 1 else None

    def configuration(self, ref: str) -> PamConfiguration:
        """The saved configuration `ref` names (apply time; configurations are saved first)."""
        entry = self.configuration_entry(ref)
        if entry is not None:
            return self.saved_configurations[(entry["folder"], entry["title"])]
        found = PamConfiguration.objects.filter(title=ref).first()
        return found or PamConfiguration.objects.get(uid=ref)


class Checker:
    """Collects `path: message` lines while reading the document's shapes."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def keys(self, entry: dict, allowed: tuple[str, ...], path: str) -> None:
        for key in entry:
            if key not in allowed:
                self.add(f"{path}.{key}", f"unknown key (expected: {', '.join(allowed)})")

    def entries(self, data: dict, key: str) -> list[tuple[str, dict]]:
        value = data.get(key, [])
        if not isinstance(value, list):
            self.add(key, "must be a list")
            return []
        found = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                found.append((f"{key}[{i}]", item))
            else:
                self.add(f"{key}[{i}]", "must be an object")
        return found

    def string(
        self,
        entry: dict,
        key: str,
        path: str,
        *,
        required: bool = True,
        max_length: int = 200,
        allow_empty: bool = False,
    ) -> Any:
        """The value, MISSING when absent and optional, or None after reporting an error."""
        where = f"{path}.{key}"
        if key not in entry:
            if required:
                self.add(where, "required")
                return None
            return MISSING
        value = entry[key]
        if not isinstance(value, str):
            self.add(where, f"must be a string, not {_json_type(value)}")
            return None
        if not value.strip() and not allow_empty:
            self.add(where, "must not be empty")
            return None
        if len(value) > max_length:
            self.add(where, f"longer than {max_length} characters")
            return None
        return value

    def validated(self, value: Any, where: str, *validators: Callable[[Any], None]) -> bool:
        if value is None or value is MISSING:
            return False
        for validator in validators:
            try:
                validator(value)
            except ValidationError as exc:
                for message in _messages(exc):
                    self.add(where, message)
                return False
        return True

    def string_list(self, entry: dict, key: str, path: str) -> list[str] | None:
        where = f"{path}.{key}"
        value = entry.get(key, [])
        if not isinstance(value, list):
            self.add(where, f"must be a list of strings, not {_json_type(value)}")
            return None
        ok = True
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                self.add(f"{where}[{i}]", "must be a non-empty string")
                ok = False
        return value if ok else None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _slug(value: str) -> None:
    try:
        validate_slug(value)
    except ValidationError as exc:
        raise ValidationError("must be a slug: letters, digits, hyphens and underscores") from exc


@dataclass
class Plan:
    """The validated document, ready to write."""

    folders: list[dict]
    gateways: list[dict]
    applications: list[dict] | None
    configurations: list[dict]
    users: list[dict]
    owner: Any


def load_document(path: Path) -> Any:
    """Read and parse the JSON file, or raise ImportProblems with one line that says why not."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImportProblems(f"cannot read {path}: no such file") from None
    except IsADirectoryError:
        raise ImportProblems(f"cannot read {path}: it is a directory") from None
    except PermissionError:
        raise ImportProblems(f"cannot read {path}: permission denied") from None
    except UnicodeDecodeError:
        raise ImportProblems(f"cannot read {path}: not UTF-8 text") from None
    except OSError as exc:
        raise ImportProblems(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportProblems(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise ImportProblems(f"{path}: the JSON is nested too deeply") from None


# JSON's \uXXXX escapes can spell half of a surrogate pair on its own ("\ud800"): json.loads
# accepts it, but it is not Unicode text and no database encoding can store it.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _text_problem(text: str) -> str | None:
    """Why a database cannot store `text` as it is, or None."""
    if "\x00" in text:
        # JSON allows \u0000 in strings; PostgreSQL refuses it in text.
        return "must not contain a NUL character (\\u0000)"
    surrogate = LONE_SURROGATE.search(text)
    if surrogate:
        return (
            f"is not valid Unicode text (\\u{ord(surrogate.group()):04x} is half of a "
            "surrogate pair)"
        )
    return None


def _unstorable_text(value: Any, path: str):
    """(JSON path, problem) for every string (or object key) in `value` that a database cannot
    store: checked before anything else, so every later step (and query) sees storable text."""
    if isinstance(value, str):
        problem = _text_problem(value)
        if problem:
            yield path or "(document)", problem
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _unstorable_text(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            problem = _text_problem(key)
            if problem:
                yield where, problem
            else:
                yield from _unstorable_text(item, where)


def validate_document(
    data: Any, *, owner_username: str | None = None
) -> tuple[Plan, ImportContext]:
    """Check everything; raise ImportProblems with every problem (one per line) if any."""
    check = Checker()
    if not isinstance(data, dict):
        raise ImportProblems(f"(document): must be a JSON object, not {_json_type(data)}")
    unstorable = list(_unstorable_text(data, ""))
    if unstorable:
        raise ImportProblems(*(f"{path}: {problem}" for path, problem in unstorable))
    context = ImportContext(data=data)
    for key in data:
        if key not in TOP_KEYS:
            check.add(key, f"unknown key (expected: {', '.join(TOP_KEYS)})")

    owner = None
    if owner_username is not None:
        owner = get_user_model().objects.filter(username=owner_username).first()
        if owner is None:
            check.add("--owner", f'no user "{owner_username}"')
    context.owner = owner

    folders = _validate_named(check, data, "folders", FOLDER_KEYS, "folder", max_length=200)
    gateways = _validate_named(
        check, data, "gateways", GATEWAY_KEYS, "gateway", max_length=100, extra=_slug
    )
    folder_names = {f["name"] for f in folders}
    _check_folder_case(check, data, folder_names)
    gateway_names = {g["name"] for g in gateways}

    # References may name rows already in the vault; one query each for the lot.
    referenced_folders, referenced_gateways = set(), set()
    for key in ("configurations", "users"):
        for item in data.get(key, []) if isinstance(data.get(key), list) else []:
            if isinstance(item, dict) and isinstance(item.get("folder"), str):
                referenced_folders.add(item["folder"])
            if key == "configurations" and isinstance(item, dict):
                if isinstance(item.get("gateway"), str):
                    referenced_gateways.add(item["gateway"])
    for item in data.get("applications", []) if isinstance(data.get("applications"), list) else []:
        if isinstance(item, dict):
            for name in item.get("folders", []) if isinstance(item.get("folders"), list) else []:
                if isinstance(name, str):
                    referenced_folders.add(name)
            for name in item.get("gateways", []) if isinstance(item.get("gateways"), list) else []:
                if isinstance(name, str):
                    referenced_gateways.add(name)
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

    applications = None
    if "applications" in data:
        applications = []
        seen: dict[str, str] = {}
        for path, entry in check.entries(data, "applications"):
            check.keys(entry, APPLICATION_KEYS, path)
            name = check.string(entry, "name", path)
            if name and name in seen:
                check.add(f"{path}.name", f'duplicate application "{name}" (also {seen[name]})')
            elif name:
                seen[name] = path
            app_folders = check.string_list(entry, "folders", path) or []
            for i, ref in enumerate(app_folders):
                if ref not in known_folders:
                    check.add(f"{path}.folders[{i}]", f'unknown folder "{ref}"')
            app_gateways = check.string_list(entry, "gateways", path) or []
            for i, ref in enumerate(app_gateways):
                if ref not in known_gateways:
                    check.add(f"{path}.gateways[{i}]", f'unknown gateway "{ref}"')
            editable = entry.get("editable", True)
            if not isinstance(editable, bool):
                check.add(f"{path}.editable", "must be true or false")
            if name:
                applications.append(
                    {
                        "name": name,
                        "folders": app_folders,
                        "gateways": app_gateways,
                        "editable": editable is not False,
                    }
                )

    configurations = []
    seen_configs: dict[tuple[str, str], str] = {}
    for path, entry in check.entries(data, "configurations"):
        cleaned = _validate_configuration(check, entry, path, folder_ref, known_gateways)
        context.configuration_entries.append(
            {"title": entry.get("title"), "folder": entry.get("folder")}
        )
        if cleaned is None:
            continue
        key = (cleaned["folder"], cleaned["title"])
        if key in seen_configs:
            check.add(
                f"{path}.title",
                f'duplicate configuration title "{key[1]}" in folder "{key[0]}" '
                f"(also {seen_configs[key]})",
            )
            continue
        seen_configs[key] = path
        configurations.append(cleaned)

    users = []
    seen_users: dict[tuple[str, str], str] = {}
    for path, entry in check.entries(data, "users"):
        context.current_user_entry = entry
        cleaned = _validate_user(check, entry, path, folder_ref, context)
        if cleaned is None:
            continue
        key = (cleaned["folder"], cleaned["title"])
        if key in seen_users:
            check.add(
                f"{path}.title",
                f'duplicate user title "{key[1]}" in folder "{key[0]}" (also {seen_users[key]})',
            )
            continue
        seen_users[key] = path
        users.append(cleaned)
    context.current_user_entry = None

    if check.errors:
        raise ImportProblems(*check.errors)
    plan = Plan(folders, gateways, applications, configurations, users, owner)
    return plan, context


def _check_folder_case(check: Checker, data: dict, names: set[str]) -> None:
    """The UI treats folder names case-insensitively; do not create "team" beside "Team"."""
    if not names:
        return
    stored = set(SharedFolder.objects.values_list("name", flat=True))
    by_lower = {s.lower(): s for s in stored}
    for i, item in enumerate(data.get("folders", [])):
        name = item.get("name") if isinstance(item, dict) else None
        if name in names and name not in stored and name.lower() in by_lower:
            check.add(
                f"folders[{i}].name",
                f'a folder named "{by_lower[name.lower()]}" already exists '
                "(folder names are matched exactly; they differ only in case)",
            )


def _validate_named(
    check: Checker,
    data: dict,
    key: str,
    allowed: tuple[str, ...],
    noun: str,
    *,
    max_length: int,
    extra: Callable[[str], None] | None = None,
) -> list[dict]:
    found, seen = [], {}
    for path, entry in check.entries(data, key):
        check.keys(entry, allowed, path)
        name = check.string(entry, "name", path, max_length=max_length)
        if name is None or (extra and not check.validated(name, f"{path}.name", extra)):
            continue
        if name in seen:
            check.add(f"{path}.name", f'duplicate {noun} "{name}" (also {seen[name]})')
            continue
        seen[name] = path
        found.append({"name": name})
    return found


def _validate_configuration(
    check: Checker,
    entry: dict,
    path: str,
    folder_ref: Callable[[dict, str], str | None],
    known_gateways: set[str],
) -> dict | None:
    before = len(check.errors)
    check.keys(entry, CONFIGURATION_KEYS, path)
    cleaned: dict[str, Any] = {}
    cleaned["title"] = check.string(entry, "title", path)
    cleaned["folder"] = folder_ref(entry, path)
    gateway = check.string(entry, "gateway", path, max_length=100)
    if gateway is not None and gateway not in known_gateways:
        check.add(
            f"{path}.gateway",
            f'unknown gateway "{gateway}" (not in gateways[] and not in the vault)',
        )
    cleaned["gateway"] = gateway
    environment = check.string(entry, "environment", path, required=False, max_length=20)
    if environment not in (MISSING, None, "aws"):
        check.add(f"{path}.environment", 'must be "aws" (the only environment)')
    cleaned["environment"] = "aws"
    cleaned["aws_id"] = check.string(entry, "aws_id", path, required=False, allow_empty=True)
    key_id = check.string(entry, "access_key_id", path, max_length=128)
    if not check.validated(key_id, f"{path}.access_key_id", validate_access_key_id):
        key_id = None
    secret = check.string(
        entry, "access_secret_key", path, required=False, max_length=256, allow_empty=True
    )
    if isinstance(key_id, str) and secret is not None:
        if key_id == USE_INSTANCE_ROLE:
            if secret not in (MISSING, "", USE_INSTANCE_ROLE):
                check.add(
                    f"{path}.access_secret_key",
                    f"must be {USE_INSTANCE_ROLE} (or left out) when access_key_id is "
                    f"{USE_INSTANCE_ROLE}",
                )
            secret = USE_INSTANCE_ROLE
        elif secret in (MISSING, ""):
            check.add(
                f"{path}.access_secret_key",
                f"required unless access_key_id is {USE_INSTANCE_ROLE}",
            )
        elif secret == USE_INSTANCE_ROLE:
            check.add(
                f"{path}.access_secret_key",
                f"{USE_INSTANCE_ROLE} needs access_key_id {USE_INSTANCE_ROLE} too",
            )
        else:
            check.validated(secret, f"{path}.access_secret_key", validate_secret_key_text)
    cleaned["access_key_id"] = key_id
    cleaned["access_secret_key"] = secret

    regions = MISSING
    if "region_names" in entry:
        regions = check.string_list(entry, "region_names", path)
        if regions == []:
            check.add(f"{path}.region_names", "give at least one region, e.g. us-east-1")
        for i, region in enumerate(regions or []):
            check.validated(region, f"{path}.region_names[{i}]", validate_region_name)
    cleaned["region_names"] = regions
    endpoint = check.string(
        entry, "endpoint_url", path, required=False, max_length=500, allow_empty=True
    )
    check.validated(endpoint, f"{path}.endpoint_url", validate_endpoint_url)
    cleaned["endpoint_url"] = endpoint

    schedule = entry.get("default_rotation_schedule", MISSING)
    if schedule is not MISSING:
        where = f"{path}.default_rotation_schedule"
        cleaner = CONFIGURATION_FIELD_CLEANERS.get("default_rotation_schedule")
        if not isinstance(schedule, dict):
            check.add(where, f"must be an object, not {_json_type(schedule)}")
        elif cleaner is not None:
            try:
                schedule = cleaner(schedule)
            except ValidationError as exc:
                for message in _messages(exc):
                    check.add(where, message)
    cleaned["default_rotation_schedule"] = schedule
    _validate_scope(check, entry, path, cleaned)
    return cleaned if len(check.errors) == before else None


def _validate_scope(check: Checker, entry: dict, path: str, cleaned: dict) -> None:
    """The target scope; required with USE_INSTANCE_ROLE, as in the web form."""
    prefix = check.string(
        entry, "scope_path_prefix", path, required=False, max_length=512, allow_empty=True
    )
    check.validated(prefix, f"{path}.scope_path_prefix", validate_iam_path_prefix)
    pattern = check.string(
        entry, "scope_user_pattern", path, required=False, max_length=512, allow_empty=True
    )
    if isinstance(pattern, str):
        try:
            pattern = normalize_scope_user_pattern(pattern)
        except ValidationError as exc:
            for message in _messages(exc):
                check.add(f"{path}.scope_user_pattern", message)
    cleaned["scope_path_prefix"], cleaned["scope_user_pattern"] = prefix, pattern
    scoped = any(isinstance(v, str) and v for v in (prefix, pattern))
    if cleaned.get("access_key_id") == USE_INSTANCE_ROLE and not scoped:
        check.add(
            f"{path}.scope_user_pattern",
            f"a target scope (scope_path_prefix or scope_user_pattern) is required when "
            f"access_key_id is {USE_INSTANCE_ROLE}",
        )


def _validate_user(
    check: Checker,
    entry: dict,
    path: str,
    folder_ref: Callable[[dict, str], str | None],
    context: ImportContext,
) -> dict | None:
    before = len(check.errors)
    check.keys(entry, tuple(dict.fromkeys(USER_KEYS + tuple(USER_EXTENSIONS))), path)
    cleaned: dict[str, Any] = {"entry": entry}
    cleaned["title"] = check.string(entry, "title", path)
    cleaned["folder"] = folder_ref(entry, path)
    login = check.string(entry, "login", path, max_length=64)
    login_ok = check.validated(login, f"{path}.login", validate_iam_login)
    arn = check.string(entry, "distinguished_name", path, max_length=2048)
    arn_ok = check.validated(arn, f"{path}.distinguished_name", validate_iam_user_arn)
    if login_ok and arn_ok:
        try:
            validate_arn_matches_login(arn, login)
        except ValidationError as exc:
            for message in _messages(exc):
                check.add(f"{path}.login", message)
    cleaned["login"], cleaned["distinguished_name"] = login, arn
    password = check.string(
        entry, "password", path, required=False, max_length=10_000, allow_empty=True
    )
    check.validated(password, f"{path}.password", validate_password_text)
    cleaned["password"] = "" if password is MISSING else password

    for key, extension in USER_EXTENSIONS.items():
        if key in entry:
            check.errors.extend(extension.validate(entry[key], f"{path}.{key}", context))
    if "rotation" in entry and "rotation" not in USER_EXTENSIONS:
        if not isinstance(entry["rotation"], dict):
            check.add(f"{path}.rotation", f"must be an object, not {_json_type(entry['rotation'])}")
    return cleaned if len(check.errors) == before else None


# --- writing --------------------------------------------------------------------------------


def _result_key(name_of: Callable[[dict], str], item: dict, items: list[dict]) -> str:
    """Titles are unique per folder: a title used in two folders is keyed `folder/title`."""
    title = name_of(item)
    if sum(1 for other in items if name_of(other) == title) > 1:
        return f"{item['folder']}/{title}"
    return title


def _grant_owner(folder: SharedFolder, owner) -> None:
    member = FolderMember.objects.filter(folder=folder, user=owner).first()
    if member is None:
        services.member_add(
            folder=folder, user=owner, permissions=services.FULL_PERMISSIONS, actor_kind="cli"
        )
    elif set(member.permission_names()) != set(FolderMember.PERMISSIONS):
        services.member_update(
            member=member, permissions=services.FULL_PERMISSIONS, actor_kind="cli"
        )


def _share(application: Application, folder: SharedFolder, editable: bool) -> None:
    share = ApplicationFolder.objects.filter(application=application, folder=folder).first()
    if share is None or share.editable != editable:
        services.application_share_folder(application=application, folder=folder, editable=editable)


def _folder(name: str, context: ImportContext) -> SharedFolder:
    if name not in context.folders:
        context.folders[name] = SharedFolder.objects.get(name=name)
    return context.folders[name]


def _password_to_store(record: PamUser, password: str) -> str | None:
    """None keeps the stored password (see the module docstring for why)."""
    if not password or password == record.get_secret("password"):
        return None
    if any(v.get_secret("password") == password for v in record.versions.all()):
        return None
    return password


def _apply_configuration(item: dict, context: ImportContext) -> PamConfiguration:
    folder = _folder(item["folder"], context)
    gateway = Gateway.objects.get(name=item["gateway"])
    config = PamConfiguration.objects.filter(folder=folder, title=item["title"]).first()
    creating = config is None
    if creating:
        config = PamConfiguration(folder=folder, title=item["title"])
    wanted = {
        "environment": item["environment"],
        "gateway_id": gateway.pk,
        "access_key_id": item["access_key_id"],
    }
    for key in (
        "aws_id",
        "region_names",
        "endpoint_url",
        "default_rotation_schedule",
        "scope_path_prefix",
        "scope_user_pattern",
    ):
        if item[key] is not MISSING:
            wanted[key] = item[key]
    changed = [k for k, v in wanted.items() if getattr(config, k) != v]
    secret = item["access_secret_key"]
    if not creating and secret == config.get_secret("access_secret_key"):
        secret = None
    if creating or changed or secret is not None:
        for key, value in wanted.items():
            setattr(config, key, value)
        services.configuration_save(
            config=config, access_secret_key=secret, actor_kind=context.actor_kind
        )
    return config


def _apply_user(item: dict, context: ImportContext) -> PamUser:
    folder = _folder(item["folder"], context)
    record = PamUser.objects.filter(folder=folder, title=item["title"]).first()
    if record is None:
        return services.pam_user_create(
            folder=folder,
            title=item["title"],
            login=item["login"],
            distinguished_name=item["distinguished_name"],
            password=item["password"],
            actor_kind=context.actor_kind,
            source="import",
        )
    password = _password_to_store(record, item["password"])
    if (
        password is not None
        or record.login != item["login"]
        or record.distinguished_name != item["distinguished_name"]
    ):
        services.pam_user_update(
            record=record,
            title=record.title,
            login=item["login"],
            distinguished_name=item["distinguished_name"],
            password=password,
            actor_kind=context.actor_kind,
            source="import",
        )
    return record


def apply_plan(plan: Plan, context: ImportContext) -> dict:
    result: dict[str, dict[str, str]] = {
        "folders": {},
        "gateways": {},
        "configurations": {},
        "users": {},
    }
    with transaction.atomic():
        for item in plan.folders:
            folder = SharedFolder.objects.filter(name=item["name"]).first()
            if folder is None:
                folder = services.folder_create(name=item["name"], actor_kind=context.actor_kind)
            context.folders[folder.name] = folder
            if plan.owner is not None:
                _grant_owner(folder, plan.owner)
            result["folders"][folder.name] = folder.uid

        gateways = {}
        for item in plan.gateways:
            gateway = services.gateway_get_or_create(name=item["name"])
            gateways[gateway.name] = gateway
            result["gateways"][gateway.name] = gateway.uid

        if plan.applications is not None:
            for app in plan.applications:
                application = services.application_get_or_create(name=app["name"])
                _grant_administrator(application, plan.owner)
                for name in app["gateways"]:
                    services.gateway_get_or_create(name=name, application=application)
                for name in app["folders"]:
                    _share(application, _folder(name, context), app["editable"])
        else:
            # Ready to rotate without an "applications" section: each gateway's application
            # (one named after it, unless it already has one) gets every imported folder.
            for gateway in gateways.values():
                application = gateway.application or services.application_get_or_create(
                    name=gateway.name
                )
                services.gateway_get_or_create(name=gateway.name, application=application)
                _grant_administrator(application, plan.owner)
                for item in plan.folders:
                    _share_if_missing(application, context.folders[item["name"]])

        for item in plan.configurations:
            config = _apply_configuration(item, context)
            context.saved_configurations[(item["folder"], item["title"])] = config
            key = _result_key(lambda c: c["title"], item, plan.configurations)
            result["configurations"][key] = config.uid

        records = []
        for item in plan.users:
            record = _apply_user(item, context)
            records.append((record, item))
            key = _result_key(lambda u: u["title"], item, plan.users)
            result["users"][key] = record.uid

        for record, item in records:
            for key, extension in USER_EXTENSIONS.items():
                if key in item["entry"]:
                    extension.apply(record, item["entry"][key], context)
    return result


def _grant_administrator(application: Application, owner) -> None:
    """`--owner` administers the applications the import names, as it owns its folders: the
    operator who imports on the vault host has that authority and hands it to the owner."""
    if owner is not None:
        application.administrators.add(owner)


def _share_if_missing(application: Application, folder: SharedFolder) -> None:
    if not ApplicationFolder.objects.filter(application=application, folder=folder).exists():
        services.application_share_folder(application=application, folder=folder, editable=True)


def import_document(data: Any, *, owner_username: str | None = None) -> dict:
    """Validate then write; returns {"folders": {name: uid}, "gateways": ..., ...}."""
    plan, context = validate_document(data, owner_username=owner_username)
    return apply_plan(plan, context)
