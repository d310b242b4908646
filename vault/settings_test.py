"""Settings for the test suite: the production settings with test-only environment defaults."""

import os
import tempfile

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
# A fixed test key, so tests never create a key file in the checkout.
os.environ.setdefault("VAULT_ENCRYPTION_KEYS", "dGVzdC1vbmx5LWtleS0wMDAwMDAwMDAwMDAwMDAwMDA=")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from vault.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests

# The test database is a file (not SQLite's in-memory default), so that real worker processes
# (`manage.py qcluster`) and live servers started by tests open the same database.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # One file per test run, so concurrent runs never share a database.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"vault-test-{os.getpid()}.sqlite3")
    }
ROTATION_RETRY_BACKOFF_SCALE = 0.05
# The AWS emulator, the fault proxy and the hostile servers of the tests listen on 127.0.0.1,
# each on a port picked at start.
AWS_ENDPOINT_ALLOWLIST = [*AWS_ENDPOINT_ALLOWLIST, "http://127.0.0.1:*"]  # noqa: F405
