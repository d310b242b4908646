"""Settings for the test suite: the production settings with test-only environment defaults."""

import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
# A fixed test key, so tests never create a key file in the checkout.
os.environ.setdefault("VAULT_ENCRYPTION_KEYS", "dGVzdC1vbmx5LWtleS0wMDAwMDAwMDAwMDAwMDAwMDA=")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from vault.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
