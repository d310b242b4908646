"""System checks of what the database itself must offer (manage.py check, migrate, runserver
and `make run`).

Rotations are claimed with UPDATE ... RETURNING (vault/returning.py), and audit events are
written in bulk with their ids returned (their outbox rows refer to them): SQLite has both
from 3.35 (2021). Python links its own SQLite, so an older system library is refused here at
setup, in words, instead of failing every drain later with a syntax error.
"""

from __future__ import annotations

import sqlite3

from django.conf import settings
from django.core import checks

SQLITE_NEEDED = (3, 35, 0)


@checks.register(checks.Tags.compatibility)
def check_sqlite_version(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    uses_sqlite = any(
        db["ENGINE"] == "django.db.backends.sqlite3" for db in settings.DATABASES.values()
    )
    if not uses_sqlite or sqlite3.sqlite_version_info >= SQLITE_NEEDED:
        return []
    return [
        checks.Error(
            f"SQLite {sqlite3.sqlite_version} is too old: PAM Vault needs SQLite 3.35 or later "
            "(UPDATE ... RETURNING)",
            hint="Use a Python built against a newer SQLite, or PostgreSQL (DATABASE_URL).",
            id="vault.E006",
        )
    ]
