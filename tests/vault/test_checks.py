"""vault/checks.py: a SQLite too old for UPDATE ... RETURNING is refused in words."""

from __future__ import annotations

from vault import checks


def test_sqlite_older_than_3_35_is_refused_with_what_to_do(monkeypatch, settings):
    settings.DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "x"}}
    monkeypatch.setattr(checks.sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(checks.sqlite3, "sqlite_version", "3.34.1")
    [error] = checks.check_sqlite_version()
    assert error.id == "vault.E006" and "3.34.1" in error.msg and "3.35" in error.msg
    assert "PostgreSQL" in error.hint


def test_sqlite_3_35_and_postgresql_pass(monkeypatch, settings):
    monkeypatch.setattr(checks.sqlite3, "sqlite_version_info", (3, 35, 0))
    settings.DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "x"}}
    assert checks.check_sqlite_version() == []
    monkeypatch.setattr(checks.sqlite3, "sqlite_version_info", (3, 31, 1))
    settings.DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "x"}}
    assert checks.check_sqlite_version() == []
