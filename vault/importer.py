"""Imports: `pam import` (the vault's own format) and `pam project import` (Keeper Commander's
project import format), both through one validated model.

    document --reader--> Plan (vault/import_model.py) --writer--> the vault, one transaction

- vault/import_native.py reads the native format (docs/import.md);
- vault/import_keeper.py reads Commander's format (docs/import.md, "`pam project import`");
- vault/import_writer.py writes a plan: matching rows by name so that importing the same file
  twice changes nothing, every change recorded, a dry run rolled back.

The whole document is validated before anything is written; every problem is reported with
its JSON path in the file's own format, by raising ``ImportProblems`` whose ``problems`` are
the "json.path: message" lines (the CLI prints one per line).

Extension points for other apps (the rotation app registers in its AppConfig.ready()):

- ``USER_EXTENSIONS[key]``: an object with ``validate(value, path, context) -> list[str]``
  (complete error lines, each starting with ``path``) and ``apply(record, value, context)``,
  called for a user's `key` after every record of the file is saved. In the native format
  the value is ``users[i][key]``; in Keeper's format the reader passes the "rotation" key a
  value of that format (``context.format == "keeper"``; see vault/import_keeper.py). Without
  an extension, a native ``rotation`` is checked to be an object and otherwise ignored.
- ``CONFIGURATION_FIELD_CLEANERS[key]``: ``clean(value) -> stored value``, raising Django's
  ValidationError; used for ``default_rotation_schedule`` (which otherwise must be an object).

``ImportContext`` lets an extension resolve a configuration title to the configuration in the
same file (``configuration_error`` while validating, ``configuration`` while applying) or to
one already in the vault, and record what it changed (``change``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from vault import import_keeper, import_native
from vault.import_model import (
    ImportContext,
    ImportProblems,
    Plan,
    load_document,
)
from vault.import_writer import apply_plan
from vault.models import PamUser

__all__ = [
    "CONFIGURATION_FIELD_CLEANERS",
    "USER_EXTENSIONS",
    "ImportContext",
    "ImportProblems",
    "Plan",
    "UserExtension",
    "apply_plan",
    "import_document",
    "import_project",
    "load_document",
    "validate_document",
]


class UserExtension(Protocol):
    def validate(self, value: Any, path: str, context: ImportContext) -> list[str]: ...

    def apply(self, record: PamUser, value: Any, context: ImportContext) -> None: ...


USER_EXTENSIONS: dict[str, UserExtension] = {}
CONFIGURATION_FIELD_CLEANERS: dict[str, Callable[[Any], Any]] = {}


def _context(**kw: Any) -> ImportContext:
    # Read at call time: tests (and apps) may replace the registries.
    return ImportContext(
        extensions=dict(USER_EXTENSIONS), cleaners=dict(CONFIGURATION_FIELD_CLEANERS), **kw
    )


def validate_document(
    data: Any, *, owner_username: str | None = None
) -> tuple[Plan, ImportContext]:
    """Read a native document; raise ImportProblems with every problem (one per line)."""
    context = _context()
    plan = import_native.read(data, context, owner_username=owner_username)
    return plan, context


def import_document(data: Any, *, owner_username: str | None = None) -> dict:
    """`pam import`: validate then write; returns {"folders": {name: uid}, "gateways": ...}."""
    plan, context = validate_document(data, owner_username=owner_username)
    return apply_plan(plan, context)


def import_project(
    data: Any,
    *,
    project_name: str | None = None,
    owner_username: str | None = None,
    dry_run: bool = False,
) -> dict:
    """`pam project import`: read Commander's project format, write it (or, with `dry_run`,
    make every change and roll it back) and return the report: the project, every change
    ("changes", empty when the vault already held it all), what was not imported and why
    ("not_imported", by JSON path), "notes", and the rows by name."""
    context = _context()
    plan, project = import_keeper.read(
        data, context, project_name=project_name, owner_username=owner_username
    )
    result = apply_plan(plan, context, dry_run=dry_run)
    return {
        "project": project,
        "dry_run": dry_run,
        "changed": bool(context.changes),
        "changes": context.changes,
        "not_imported": [s.as_dict() for s in plan.skipped],
        "notes": plan.notes,
        **result,
    }
