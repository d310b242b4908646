"""Production settings from the environment: refusing to start without keys, passing
`check --deploy`, and the development key file. Each case is a fresh `manage.py` process with
every relevant variable set explicitly, so a developer's `.env` cannot change the outcome."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from vault import crypto

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_SECRET_KEY = "x7Qp-9vLr2Zt8Kd4Wm6Ns1Hb3Jf5Gc0Yq-aE7uR2oI9pL4sD6fG8hJ1kZ3xC5vB7n"

SETTINGS_VARIABLES = (
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "USE_X_FORWARDED_PROTO",
    "CSRF_TRUSTED_ORIGINS",
)


def run_manage(tmp_path: Path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    for name in SETTINGS_VARIABLES:
        env.pop(name, None)  # the settings' own defaults apply unless a test sets it
    env.update(
        DJANGO_SETTINGS_MODULE="vault.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'settings.sqlite3'}",
        # Set, even if empty, so values from a developer's .env file do not apply.
        DEBUG="0",
        SECRET_KEY="",
        ALLOWED_HOSTS="",
        VAULT_ENCRYPTION_KEYS="",
        VAULT_KEY_FILE="",
        REDIS_URL="",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(variables)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_without_encryption_keys_refuses_with_one_line(tmp_path):
    result = run_manage(
        tmp_path, "check", SECRET_KEY=PRODUCTION_SECRET_KEY, ALLOWED_HOSTS="vault.example"
    )
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "VAULT_ENCRYPTION_KEYS" in lines[0] and "pam genkey" in lines[0]
    assert "Traceback" not in result.stderr


def test_production_without_secret_key_refuses_with_one_line(tmp_path):
    result = run_manage(tmp_path, "check", VAULT_ENCRYPTION_KEYS=crypto.generate_key())
    assert result.returncode != 0
    assert len(result.stderr.splitlines()) == 1
    assert "SECRET_KEY" in result.stderr


def test_production_settings_pass_the_deploy_check(tmp_path):
    result = run_manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=PRODUCTION_SECRET_KEY,
        ALLOWED_HOSTS="vault.example",
        VAULT_ENCRYPTION_KEYS=crypto.generate_key(),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_genkey_works_before_any_key_is_configured(tmp_path):
    # The refusal message tells the operator to run `pam genkey`; that must work in production.
    result = run_manage(
        tmp_path, "pam", "genkey", SECRET_KEY=PRODUCTION_SECRET_KEY, ALLOWED_HOSTS="vault.example"
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.splitlines()[-1]
    assert crypto._decode_key(key)


def test_development_creates_a_private_key_file_and_says_so_once(tmp_path):
    key_file = tmp_path / "dev.key"
    first = run_manage(tmp_path, "pam", "genkey", DEBUG="1", VAULT_KEY_FILE=str(key_file))
    assert first.returncode == 0, first.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.stderr.count("created a new local encryption key") == 1
    assert str(key_file) in first.stderr
    stored = key_file.read_text().strip()
    assert crypto._decode_key(stored)

    second = run_manage(tmp_path, "pam", "genkey", DEBUG="1", VAULT_KEY_FILE=str(key_file))
    assert second.returncode == 0
    assert "created a new local encryption key" not in second.stderr
    assert key_file.read_text().strip() == stored


def test_development_key_file_is_git_ignored():
    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".vault-key" in ignored and ".env" in ignored
