"""Production settings, in a fresh `manage.py` process with only the variables an operator
must set: Django's deploy check (with django-axes', django-otp's and django-csp's checks) is
clean, and the security settings have their production values."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from vault import crypto

ROOT = Path(__file__).resolve().parents[2]

DUMP = """
import base64
import json
from django.conf import settings as s
print(json.dumps({
    "apps": s.INSTALLED_APPS,
    "middleware": s.MIDDLEWARE,
    "backends": s.AUTHENTICATION_BACKENDS,
    "hashers": s.PASSWORD_HASHERS,
    "validators": len(s.AUTH_PASSWORD_VALIDATORS),
    "ssl_redirect": s.SECURE_SSL_REDIRECT,
    "session_secure": s.SESSION_COOKIE_SECURE,
    "session_httponly": s.SESSION_COOKIE_HTTPONLY,
    "session_samesite": s.SESSION_COOKIE_SAMESITE,
    "session_age": s.SESSION_COOKIE_AGE,
    "csrf_secure": s.CSRF_COOKIE_SECURE,
    "csrf_httponly": s.CSRF_COOKIE_HTTPONLY,
    "hsts": s.SECURE_HSTS_SECONDS,
    "hsts_subdomains": s.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "frame": s.X_FRAME_OPTIONS,
    "nosniff": s.SECURE_CONTENT_TYPE_NOSNIFF,
    "referrer": s.SECURE_REFERRER_POLICY,
    "axes_limit": s.AXES_FAILURE_LIMIT,
    "axes_cooloff": s.AXES_COOLOFF_TIME.total_seconds(),
    "require_2fa": s.VAULT_REQUIRE_2FA,
    "reveal_limit": s.REVEAL_RATE_LIMIT,
    "csp": s.CONTENT_SECURITY_POLICY,
}))
"""


def run_manage(tmp_path: Path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    # Only what an operator sets; nothing from the developer's environment or .env applies.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        DJANGO_SETTINGS_MODULE="vault.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="vault.example",
        VAULT_ENCRYPTION_KEYS=crypto.generate_key(),
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


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> dict:
    result = run_manage(tmp_path_factory.mktemp("deploy"), "shell", "-c", DUMP)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_deploy_check_passes_with_warnings_as_failures(tmp_path):
    result = run_manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_deploy_check_includes_the_security_apps(production):
    for app in ("axes", "csp", "django_otp", "django_otp.plugins.otp_totp"):
        assert app in production["apps"]
    assert production["backends"][0] == "axes.backends.AxesStandaloneBackend"
    middleware = production["middleware"]
    assert middleware[-1] == "axes.middleware.AxesMiddleware"
    assert "csp.middleware.CSPMiddleware" in middleware
    auth = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    otp = middleware.index("django_otp.middleware.OTPMiddleware")
    gate = middleware.index("vault.security.TwoFactorMiddleware")
    assert auth < otp < gate


def test_production_cookies_are_secure_http_only_and_same_site(production):
    assert production["session_secure"] and production["csrf_secure"]
    assert production["session_httponly"] and production["csrf_httponly"]
    assert production["session_samesite"] == "Lax"
    assert production["session_age"] == 30 * 60


def test_production_sends_hsts_and_redirects_to_https(production):
    assert production["ssl_redirect"]
    assert production["hsts"] >= 31536000 and production["hsts_subdomains"]


def test_production_headers(production):
    assert production["frame"] == "DENY"
    assert production["nosniff"]
    assert production["referrer"] == "same-origin"
    directives = production["csp"]["DIRECTIVES"]
    assert directives["script-src"] == ["'self'"] and directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]


def test_production_hashes_passwords_with_argon2_and_validates_them(production):
    assert production["hashers"][0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert production["validators"] == 4


def test_production_sign_in_defaults(production):
    assert production["axes_limit"] == 5
    assert production["axes_cooloff"] == 15 * 60
    assert production["require_2fa"] is False
    assert production["reveal_limit"] == "20/10m"


def test_sign_in_settings_come_from_the_environment(tmp_path):
    result = run_manage(
        tmp_path,
        "shell",
        "-c",
        DUMP,
        AXES_FAILURE_LIMIT="3",
        AXES_COOLOFF_MINUTES="60",
        VAULT_REQUIRE_2FA="1",
        REVEAL_RATE_LIMIT="5/h",
        SESSION_IDLE_MINUTES="10",
    )
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["axes_limit"] == 3
    assert values["axes_cooloff"] == 3600
    assert values["require_2fa"] is True
    assert values["reveal_limit"] == "5/h"
    assert values["session_age"] == 600


def test_a_bad_reveal_limit_fails_the_check(tmp_path):
    result = run_manage(tmp_path, "check", REVEAL_RATE_LIMIT="lots")
    assert result.returncode != 0
    assert "vault.E001" in result.stderr and "REVEAL_RATE_LIMIT" in result.stderr


def test_a_malformed_encryption_key_fails_the_deploy_check_without_showing_it(tmp_path):
    result = run_manage(tmp_path, "check", "--deploy", VAULT_ENCRYPTION_KEYS="notakey")
    assert result.returncode != 0
    assert "vault.E004" in result.stderr
    assert "VAULT_ENCRYPTION_KEYS: key 1 of 1 is not valid base64" in result.stderr
    assert "notakey" not in result.stdout + result.stderr


def test_a_key_of_the_wrong_length_is_named_by_its_position(tmp_path):
    short = base64.urlsafe_b64encode(b"sixteen-byte-key").decode()
    keys = f"{crypto.generate_key()},{short}"
    result = run_manage(tmp_path, "check", VAULT_ENCRYPTION_KEYS=keys)
    assert result.returncode != 0
    assert "VAULT_ENCRYPTION_KEYS: key 2 of 2 is 16 bytes, not 32" in result.stderr
    assert short not in result.stdout + result.stderr


def test_a_blank_entry_in_the_key_ring_fails_the_check(tmp_path):
    result = run_manage(tmp_path, "check", VAULT_ENCRYPTION_KEYS=f"{crypto.generate_key()}, ")
    assert result.returncode != 0
    assert "VAULT_ENCRYPTION_KEYS: key 2 of 2 is empty" in result.stderr
