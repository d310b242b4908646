"""The one validated model of an import, whatever file format it came from.

A reader (vault/import_native.py for `pam import`, vault/import_keeper.py for Keeper
Commander's `pam project import` format) checks a document in its own terms, reports every
problem with the document's own JSON path, and produces a ``Plan``: the folders (and their
members), gateways, applications, PAM Configurations and PAM Users to write, what the vault
will not hold (``Skipped``, item by item, with the reason) and notes on how the file's meaning
was carried over. vault/import_writer.py writes a plan, and only a plan, in one transaction.

The field checks here are shared by the readers, so a value means the same and is refused with
the same message in either format; a reader only passes the names its format gives the keys.

The readers never import each other or the writer; vault/importer.py is the entry point and
holds the extension registries (which it passes to a reader inside the ``ImportContext``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from vault.models import (
    NOTES_MAX_LENGTH,
    USE_INSTANCE_ROLE,
    Gateway,
    PamConfiguration,
    SharedFolder,
)
from vault.validators import (
    normalize_scope_user_pattern,
    validate_access_key_id,
    validate_arn_matches_login,
    validate_gateway_name,
    validate_iam_login,
    validate_iam_path_prefix,
    validate_iam_user_arn,
    validate_password_text,
    validate_region_name,
    validate_secret_key_text,
    validate_user_access_key_id,
)

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
"""A key the document left out: the writer keeps the stored value (a new row its default)."""


class ImportProblems(Exception):
    """The document cannot be imported: one line per problem, each starting with where it is
    (a JSON path such as ``users[3].login``, or the file)."""

    def __init__(self, problem: str, *more: str) -> None:
        super().__init__(problem)
        self.problems = [problem, *more]


def json_type(value: Any) -> str:
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


def messages(exc: ValidationError) -> list[str]:
    return list(exc.messages)


# --- the plan ------------------------------------------------------------------------------


@dataclass
class Skipped:
    """Something in the file the vault does not hold or rotate, and why; nothing is written
    for it."""

    path: str
    reason: str

    def as_dict(self) -> dict:
        return {"path": self.path, "reason": self.reason}


@dataclass
class MemberItem:
    """A person who becomes (or stays) a member of a folder with exactly these permissions."""

    path: str
    user: Any
    permissions: dict[str, bool]


@dataclass
class FolderItem:
    path: str
    name: str
    members: list[MemberItem] = field(default_factory=list)


@dataclass
class GatewayItem:
    path: str
    name: str


@dataclass
class ApplicationItem:
    path: str
    name: str
    folders: list[tuple[str, bool]]  # (folder name, editable)
    gateways: list[str]


@dataclass
class ConfigurationItem:
    """A PAM Configuration, matched by title within its folder. MISSING keeps a stored value."""

    path: str
    title: str
    folder: str
    gateway: str
    access_key_id: str
    access_secret_key: str
    environment: str = "aws"
    aws_id: Any = MISSING
    region_names: Any = MISSING
    endpoint_url: Any = MISSING
    default_rotation_schedule: Any = MISSING
    scope_path_prefix: Any = MISSING
    scope_user_pattern: Any = MISSING


@dataclass
class HistoryEntry:
    """One password of a record's history, as it was: when, by what, why."""

    password: str
    set_at: datetime
    source: str
    reason: str = ""
    # "access_key": `password` is the secret of the access key `access_key_id`.
    kind: str = "password"
    access_key_id: str = ""


@dataclass
class UserItem:
    """A PAM User, matched by title within its folder. An empty password keeps the stored one;
    ``notes``, ``managed`` and ``access_key`` MISSING keep the stored values (a new record: no
    notes, managed, no access key); ``access_key`` is (key id, secret).

    ``extensions`` are (value, JSON path) per key of USER_EXTENSIONS (e.g. "rotation"),
    applied once every record of the plan is saved."""

    path: str
    title: str
    folder: str
    login: str
    distinguished_name: str
    password: str = ""
    notes: Any = MISSING
    managed: Any = MISSING
    history: list[HistoryEntry] | None = None
    extensions: dict[str, tuple[Any, str]] = field(default_factory=dict)
    access_key: Any = MISSING


@dataclass
class Plan:
    """A validated document, ready to write.

    ``applications`` None means: each gateway gets an application of its own name (unless it
    has one) with every folder of the plan shared to it, editable (the native format without
    an "applications" section)."""

    format: str
    folders: list[FolderItem] = field(default_factory=list)
    gateways: list[GatewayItem] = field(default_factory=list)
    applications: list[ApplicationItem] | None = None
    configurations: list[ConfigurationItem] = field(default_factory=list)
    users: list[UserItem] = field(default_factory=list)
    owner: Any = None
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- what readers, the writer and extensions share ------------------------------------------


@dataclass
class ImportContext:
    """What an import knows while validating and applying; passed to extensions.

    ``format`` is "native" (`pam import`) or "keeper" (`pam project import`): an extension
    reads the value its key has in that format. ``changes`` is what the writer (and the
    extensions, through ``change``) did, in order."""

    data: Any = None
    owner: Any = None
    actor_kind: str = "cli"
    format: str = "native"
    extensions: dict[str, Any] = field(default_factory=dict)
    cleaners: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    # Validation: {"title", "folder"} of each configuration of the file.
    configuration_entries: list[dict] = field(default_factory=list)
    # The user entry being validated (extensions may need its folder).
    current_user_entry: Any = None
    # Apply: (folder name, title) -> saved configuration.
    saved_configurations: dict[tuple[str, str], PamConfiguration] = field(default_factory=dict)
    folders: dict[str, SharedFolder] = field(default_factory=dict)
    changes: list[dict] = field(default_factory=list)

    def change(self, action: str, kind: str, name: str, **details: Any) -> None:
        """Record one change the import makes (never a secret: names, fields, counts)."""
        self.changes.append({"action": action, "type": kind, "name": name, **details})

    def _file_matches(self, ref: str, folder: str | None = None) -> list[dict]:
        return [
            e
            for e in self.configuration_entries
            if e.get("title") == ref and (folder is None or e.get("folder") == folder)
        ]

    def configuration_error(self, ref: Any, folder: Any = None) -> str | None:
        """None if `ref` (a title, or an existing configuration's uid), within `folder` when
        given, names exactly one configuration of the file or of the vault; otherwise what is
        wrong."""
        if not isinstance(ref, str) or not ref:
            return "must be a configuration title"
        if folder is not None and (not isinstance(folder, str) or not folder):
            return "the configuration's folder must be a folder name"
        in_file = self._file_matches(ref, folder)
        if len(in_file) > 1:
            return f'configuration title "{ref}" is used in more than one folder of this file'
        if in_file:
            return None
        stored = PamConfiguration.objects.filter(title=ref)
        if folder is not None:
            stored = stored.filter(folder__name=folder)
        count = stored.count()
        if count > 1:
            return f'configuration title "{ref}" is used in more than one folder of the vault'
        if count == 1 or (folder is None and PamConfiguration.objects.filter(uid=ref).exists()):
            return None
        where = f' in folder "{folder}"' if folder is not None else ""
        return (
            f'unknown configuration "{ref}"{where} (not in configurations[] and not in the vault)'
        )

    def configuration_entry(self, ref: str, folder: str | None = None) -> dict | None:
        """The file's entry for `ref`, if the file defines it (validation time)."""
        in_file = self._file_matches(ref, folder)
        return in_file[0] if len(in_file) == 1 else None

    def configuration(self, ref: str, folder: str | None = None) -> PamConfiguration:
        """The saved configuration `ref` names (apply time; configurations are saved first)."""
        entry = self.configuration_entry(ref, folder)
        if entry is not None:
            return self.saved_configurations[(entry["folder"], entry["title"])]
        stored = PamConfiguration.objects.filter(title=ref)
        if folder is not None:
            stored = stored.filter(folder__name=folder)
        found = stored.first()
        return found or PamConfiguration.objects.get(uid=ref)


class Checker:
    """Collects `path: message` lines while reading a document's shapes."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def keys(self, entry: dict, allowed: tuple[str, ...], path: str) -> None:
        for key in entry:
            if key not in allowed:
                self.add(f"{path}.{key}", f"unknown key (expected: {', '.join(allowed)})")

    def entries(self, data: dict, key: str, path: str | None = None) -> Iterator[tuple[str, dict]]:
        """(JSON path, object) of each item of the list `data[key]`, in order; an item that is
        not an object is reported when it is reached, so problems come in document order."""
        where = path or key
        value = data.get(key, [])
        if not isinstance(value, list):
            self.add(where, "must be a list")
            return
        for i, item in enumerate(value):
            if isinstance(item, dict):
                yield f"{where}[{i}]", item
            else:
                self.add(f"{where}[{i}]", "must be an object")

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
        where = f"{path}.{key}" if path else key
        if key not in entry:
            if required:
                self.add(where, "required")
                return None
            return MISSING
        value = entry[key]
        if not isinstance(value, str):
            self.add(where, f"must be a string, not {json_type(value)}")
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
                for message in messages(exc):
                    self.add(where, message)
                return False
        return True

    def string_list(self, entry: dict, key: str, path: str) -> list[str] | None:
        where = f"{path}.{key}"
        value = entry.get(key, [])
        if not isinstance(value, list):
            self.add(where, f"must be a list of strings, not {json_type(value)}")
            return None
        ok = True
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                self.add(f"{where}[{i}]", "must be a non-empty string")
                ok = False
        return value if ok else None


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


def check_document(data: Any) -> None:
    """The document is a JSON object whose every string (and key) a database can store, or
    ImportProblems: checked before anything else, so every later step sees storable text."""
    if not isinstance(data, dict):
        raise ImportProblems(f"(document): must be a JSON object, not {json_type(data)}")
    unstorable = list(_unstorable_text(data, ""))
    if unstorable:
        raise ImportProblems(*(f"{path}: {problem}" for path, problem in unstorable))


def owner_of(check: Checker, username: str | None) -> Any:
    """The `--owner` user, or None (and an error when the name is unknown)."""
    if username is None:
        return None
    owner = get_user_model().objects.filter(username=username).first()
    if owner is None:
        check.add("--owner", f'no user "{username}"')
    return owner


# --- the shared field checks -------------------------------------------------------------------


def check_new_gateway_name(check: Checker, name: str, where: str) -> bool:
    """A gateway the import would create: a safe name (vault/validators.py), not the name of a
    stored gateway in another case. A stored gateway's exact name is always accepted."""
    if Gateway.objects.filter(name=name).exists():
        return True
    if not check.validated(name, where, validate_gateway_name):
        return False
    other = Gateway.objects.filter(name__iexact=name).values_list("name", flat=True).first()
    if other is not None:
        check.add(
            where,
            f'a gateway named "{other}" already exists (gateway names are matched exactly; '
            "they differ only in case)",
        )
        return False
    return True


def check_credentials(
    check: Checker,
    key_id: Any,
    secret: Any,
    *,
    path: str,
    key_id_key: str,
    secret_key: str,
) -> tuple[Any, Any]:
    """(access key id, secret) of an AWS configuration; `*_key` are the format's key names.
    `secret` MISSING or "" with an instance role becomes USE_INSTANCE_ROLE."""
    if not check.validated(key_id, f"{path}.{key_id_key}", validate_access_key_id):
        key_id = None
    if isinstance(key_id, str) and secret is not None:
        if key_id == USE_INSTANCE_ROLE:
            if secret not in (MISSING, "", USE_INSTANCE_ROLE):
                check.add(
                    f"{path}.{secret_key}",
                    f"must be {USE_INSTANCE_ROLE} (or left out) when {key_id_key} is "
                    f"{USE_INSTANCE_ROLE}",
                )
            secret = USE_INSTANCE_ROLE
        elif secret in (MISSING, ""):
            check.add(
                f"{path}.{secret_key}", f"required unless {key_id_key} is {USE_INSTANCE_ROLE}"
            )
        elif secret == USE_INSTANCE_ROLE:
            check.add(
                f"{path}.{secret_key}",
                f"{USE_INSTANCE_ROLE} needs {key_id_key} {USE_INSTANCE_ROLE} too",
            )
        else:
            check.validated(secret, f"{path}.{secret_key}", validate_secret_key_text)
    return key_id, secret


def check_regions(check: Checker, regions: Any, where: str) -> Any:
    """A validated list of region names (at least one), or None after an error."""
    if regions is None:
        return None
    if regions == []:
        check.add(where, "give at least one region, e.g. us-east-1")
        return None
    ok = True
    for i, region in enumerate(regions):
        ok = check.validated(region, f"{where}[{i}]", validate_region_name) and ok
    return regions if ok else None


def check_schedule(check: Checker, schedule: Any, where: str, context: ImportContext) -> Any:
    """A configuration's default rotation schedule, through the registered cleaner."""
    if schedule is MISSING:
        return MISSING
    cleaner = context.cleaners.get("default_rotation_schedule")
    if not isinstance(schedule, dict):
        check.add(where, f"must be an object, not {json_type(schedule)}")
        return None
    if cleaner is None:
        return schedule
    try:
        return cleaner(schedule)
    except ValidationError as exc:
        for message in messages(exc):
            check.add(where, message)
        return None


def check_scope(
    check: Checker,
    prefix: Any,
    pattern: Any,
    *,
    path: str,
    key_id: Any,
    key_id_key: str = "access_key_id",
) -> tuple[Any, Any]:
    """The target scope; required with USE_INSTANCE_ROLE, as in the web form."""
    check.validated(prefix, f"{path}.scope_path_prefix", validate_iam_path_prefix)
    if isinstance(pattern, str):
        try:
            pattern = normalize_scope_user_pattern(pattern)
        except ValidationError as exc:
            for message in messages(exc):
                check.add(f"{path}.scope_user_pattern", message)
    scoped = any(isinstance(v, str) and v for v in (prefix, pattern))
    if key_id == USE_INSTANCE_ROLE and not scoped:
        check.add(
            f"{path}.scope_user_pattern",
            f"a target scope (scope_path_prefix or scope_user_pattern) is required when "
            f"{key_id_key} is {USE_INSTANCE_ROLE}",
        )
    return prefix, pattern


def check_login_and_arn(
    check: Checker,
    login: Any,
    arn: Any,
    *,
    path: str,
    login_key: str = "login",
    arn_key: str = "distinguished_name",
) -> bool:
    """An IAM user name and the ARN that ends with it."""
    login_ok = check.validated(login, f"{path}.{login_key}", validate_iam_login)
    arn_ok = check.validated(arn, f"{path}.{arn_key}", validate_iam_user_arn)
    if login_ok and arn_ok:
        try:
            validate_arn_matches_login(arn, login)
        except ValidationError as exc:
            for message in messages(exc):
                check.add(f"{path}.{login_key}", message)
            return False
    return login_ok and arn_ok


def check_notes(check: Checker, entry: dict, path: str, key: str = "notes") -> Any:
    """A PAM User's notes: plain text (MISSING when absent), or None after an error."""
    return check.string(
        entry, key, path, required=False, max_length=NOTES_MAX_LENGTH, allow_empty=True
    )


def check_password(check: Checker, password: Any, where: str) -> Any:
    """ "" when MISSING (keeps a stored password); None after an error."""
    if password is MISSING:
        return ""
    if password is None:
        return None
    return password if check.validated(password, where, validate_password_text) else None


def check_user_access_key(
    check: Checker,
    key_id: Any,
    secret: Any,
    *,
    path: str,
    key_id_key: str = "access_key_id",
    secret_key: str = "access_secret_key",
) -> Any:
    """A PAM User's access key: (key id, secret), both given or neither (MISSING), or None
    after an error. `key_id` and `secret` are as Checker.string returned them."""
    if key_id is None or secret is None:
        return None
    if key_id is MISSING and secret is MISSING:
        return MISSING
    if key_id is MISSING or secret is MISSING:
        given, missing = (key_id_key, secret_key) if secret is MISSING else (secret_key, key_id_key)
        check.add(f"{path}.{missing}", f"required with {given} (give both, or neither)")
        return None
    ok = check.validated(key_id, f"{path}.{key_id_key}", validate_user_access_key_id)
    ok = check.validated(secret, f"{path}.{secret_key}", validate_secret_key_text) and ok
    return (key_id, secret) if ok else None


def check_folder_case(check: Checker, names: list[tuple[str, str]]) -> None:
    """The UI treats folder names case-insensitively; do not create "team" beside "Team".
    `names` are (JSON path of the name, folder name) of the folders the import would create."""
    if not names:
        return
    stored = set(SharedFolder.objects.values_list("name", flat=True))
    by_lower = {s.lower(): s for s in stored}
    for where, name in names:
        if name not in stored and name.lower() in by_lower:
            check.add(
                where,
                f'a folder named "{by_lower[name.lower()]}" already exists '
                "(folder names are matched exactly; they differ only in case)",
            )
