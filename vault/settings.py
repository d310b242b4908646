"""Every setting comes from the environment (or a `.env` file in the checkout).

Defaults are safe for production: with DEBUG off the app insists on a SECRET_KEY and an
encryption key, and turns on secure cookies, HSTS and the SSL redirect.
"""

import sys
from datetime import timedelta
from pathlib import Path

import environ

from vault.crypto import load_or_create_key_file
from vault.validators import AWS_ENDPOINT_DEFAULTS, parse_endpoint_patterns

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
ENV_FILE = BASE_DIR / ".env"
if ENV_FILE.exists():
    # Variables already in the environment win over the file.
    environ.Env.read_env(str(ENV_FILE), overwrite=False)


def _refuse_to_start(message: str) -> None:
    sys.stderr.write(f"vault: {message}\n")
    raise SystemExit(1)


DEBUG = env.bool("DEBUG", default=False)
# `pam genkey` makes the very key the refusal below asks for, so it must run without one.
_MAKING_A_KEY = sys.argv[1:3] == ["pam", "genkey"]

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if DEBUG or _MAKING_A_KEY:
        SECRET_KEY = "insecure-development-only-secret-key-do-not-use-in-production"
    else:
        _refuse_to_start("SECRET_KEY is not set; set it (a long random string) or set DEBUG=1.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Encryption keys (see vault/crypto.py) ---------------------------------------------------
VAULT_ENCRYPTION_KEYS = env.list("VAULT_ENCRYPTION_KEYS", default=[])
VAULT_KEY_FILE = env.str("VAULT_KEY_FILE", default="")
if not VAULT_ENCRYPTION_KEYS:
    if VAULT_KEY_FILE or DEBUG:
        VAULT_ENCRYPTION_KEYS = [
            load_or_create_key_file(Path(VAULT_KEY_FILE or BASE_DIR / ".vault-key"))
        ]
    elif not _MAKING_A_KEY:
        _refuse_to_start(
            "VAULT_ENCRYPTION_KEYS is not set; generate one with "
            "`python manage.py pam genkey` and set VAULT_ENCRYPTION_KEYS "
            "(or DEBUG=1 for a local key file)."
        )

INSTALLED_APPS = [
    # django.contrib.admin, with a site that needs a verified two-factor session (vault/adminsite.py)
    "vault.adminsite.VaultAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "csp",
    "django_q",
    "vault",
    "rotation",
    # Apps above rotation (docs/architecture.md): they may import vault and rotation, never the
    # reverse.
    "events",
    # Consumers of events and readers of the state (issue 16): above events.
    "notifications",
    "webhooks",
    "metrics",
    "secretsapi",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "vault.security.RejectNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After sessions: pages show times in the person's zone (vault/timezones.py).
    "vault.timezones.PersonTimeZoneMiddleware",
    # After auth and messages: signs out a session older than SESSION_MAX_HOURS, with a message.
    "vault.security.SessionLifetimeMiddleware",
    # Restarts the idle timeout, at most once a minute (not a write on every page view).
    "vault.security.SessionIdleMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # After OTPMiddleware: sends a signed-in but unverified session to the code page.
    "vault.security.TwoFactorMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Includes every app's `urls` module; it names none of them (vault/root_urls.py).
ROOT_URLCONF = "vault.root_urls"
WSGI_APPLICATION = "vault.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: SQLite in the checkout unless DATABASE_URL says otherwise ---------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# A gateway process (`qcluster`, `pam gateway run` and the cluster it starts) must never wait
# for the database without end: its heartbeat, lease recovery and rotations stop meanwhile.
GATEWAY_PROCESS = sys.argv[1:2] == ["qcluster"] or sys.argv[1:4] == ["pam", "gateway", "run"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL plus IMMEDIATE transactions: workers and the web process write concurrently
    # without "database is locked" errors. `timeout` is how long a writer waits for the lock
    # before it gets "database is locked" (SQLite's only wait: there is no network).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": env.float("SQLITE_BUSY_TIMEOUT", default=20),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend plus a read timeout (vault/dbbackend/base.py). The defaults find a dead
    # or black-holed connection within about 25 s (docs/deployment.md, "Database timeouts"); a
    # value given in DATABASE_URL's query string wins over the environment's.
    DATABASES["default"]["ENGINE"] = "vault.dbbackend"
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    for _option, _value in {
        "connect_timeout": env.int("DB_CONNECT_TIMEOUT", default=10),
        "keepalives": 1,
        # Idle 10 s, then a probe every 5 s; 3 unanswered: the connection is dead (25 s).
        "keepalives_idle": env.int("DB_KEEPALIVES_IDLE", default=10),
        "keepalives_interval": env.int("DB_KEEPALIVES_INTERVAL", default=5),
        "keepalives_count": env.int("DB_KEEPALIVES_COUNT", default=3),
        # Data sent and not acknowledged for this long (ms): the connection is dead.
        "tcp_user_timeout": env.int("DB_TCP_USER_TIMEOUT_MS", default=25000),
    }.items():
        _db_options.setdefault(_option, _value)
    if GATEWAY_PROCESS:
        # The server cancels a statement after this (the longest a gateway runs, a scheduler
        # batch of 1,000 due records, takes well under a second), and the gateway gives up on
        # an answer that has not come 10 s later: the server's own cancellation, when it can
        # still answer, arrives first. Not for the web (gunicorn's --timeout ends a stuck
        # request) nor for `migrate` and other commands, whose statements may rightly be long.
        _statement_ms = int(env.float("GATEWAY_DB_STATEMENT_TIMEOUT", default=20) * 1000)
        _startup = _db_options.get("options", "")
        if "statement_timeout" not in _startup:
            _db_options["options"] = f"{_startup} -c statement_timeout={_statement_ms}".strip()
        _db_options.setdefault("read_timeout", env.float("GATEWAY_DB_READ_TIMEOUT", default=30))
        # The claim's read planned once per connection (vault/dbbackend/base.py); 0 behind a
        # pooler that cannot keep prepared statements (docs/deployment.md).
        _db_options.setdefault(
            "prepared_statements", env.bool("DB_PREPARED_STATEMENTS", default=True)
        )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# A form whose CSRF token is out of date gets the product's 403 page, saying what to do.
CSRF_FAILURE_VIEW = "vault.views.csrf_failure"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security: production defaults, switchable behind a TLS-terminating proxy ---------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_MINUTES", default=30) * 60
# The idle clock restarts at most once a minute (vault.security.SessionIdleMiddleware), not on
# every request: a page view writes nothing.
SESSION_SAVE_EVERY_REQUEST = False
# Absolute lifetime: a session ends this long after sign-in however busy it is, which the idle
# timeout above cannot do (vault.security.SessionLifetimeMiddleware).
SESSION_MAX_HOURS = env.int("SESSION_MAX_HOURS", default=12)

# --- Sign-in: lockout, two-factor, password confirmation, reveal limit (docs/security.md) ----
AUTHENTICATION_BACKENDS = [
    # Refuses a locked-out username+address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend; with LOCAL_PASSWORDS off, superusers only (vault/oidc.py).
    "vault.oidc.LocalPasswordBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_VERBOSE = False  # no banner from every process at start
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
# The pair is locked, not the account: nobody can lock a colleague out from elsewhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "vault.security.lockout_response"
# The address is REMOTE_ADDR (django-ipware is not installed): a client cannot pick its own
# address with X-Forwarded-For. Behind a proxy, have the proxy server set REMOTE_ADDR.
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
OTP_TOTP_ISSUER = env.str("OTP_ISSUER", default="PAM Vault")
# The admin console shows neither TOTP keys nor recovery codes.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
VAULT_REQUIRE_2FA = env.bool("VAULT_REQUIRE_2FA", default=False)
# Revealing a password or changing rotation settings asks for the password again after this.
VAULT_REAUTH_MINUTES = env.int("VAULT_REAUTH_MINUTES", default=5)
# At most N reveals per user in a window: "20/10m" (units s, m, h).
REVEAL_RATE_LIMIT = env.str("REVEAL_RATE_LIMIT", default="20/10m")
# Enforcement policies (docs/security.md): off, edit rights on a record let a person set up
# and run its rotation; on, each action also needs its vault.<policy> permission (via Groups).
VAULT_ENFORCE_POLICIES = env.bool("VAULT_ENFORCE_POLICIES", default=False)

# django-csp: nothing inline, nothing from another origin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- Rotation and gateways ------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
ROTATION_LEASE_SECONDS = env.int("ROTATION_LEASE_SECONDS", default=300)
ROTATION_MAX_ATTEMPTS = env.int("ROTATION_MAX_ATTEMPTS", default=5)
# How long a rotation waits for AWS to accept a new access key (it takes a few seconds to
# reach every endpoint) before it counts the attempt as failed and tries again later.
ROTATION_KEY_VERIFY_SECONDS = env.float("ROTATION_KEY_VERIFY_SECONDS", default=30.0)
# How far AWS's clock (a key's CreateDate) may be from this host's: a key the vault does not
# hold counts as made by a rotation's lost request only inside that request's time window,
# widened by this; the check of an ended rotation waits this long too.
ROTATION_KEY_CLOCK_SKEW_SECONDS = env.int("ROTATION_KEY_CLOCK_SKEW_SECONDS", default=120)
# Seconds between attempts are 1, 2, 4, 8, 8 ... times this scale (tests set it to 0).
ROTATION_RETRY_BACKOFF_SCALE = env.float("ROTATION_RETRY_BACKOFF_SCALE", default=1.0)
# How long a request to AWS that went unanswered may still be applied: AWS refuses a signed
# request that reaches it more than 5 minutes after the time it was signed with (SigV4), plus a
# minute for the gateway's clock running ahead of AWS's. No other rotation of the record acts
# before it has passed (docs/architecture.md, "Requests that went unanswered").
ROTATION_UNANSWERED_WINDOW_SECONDS = env.int("ROTATION_UNANSWERED_WINDOW_SECONDS", default=360)
GATEWAY_OFFLINE_SECONDS = env.int("GATEWAY_OFFLINE_SECONDS", default=120)
AWS_POLICY_CACHE_SECONDS = env.int("AWS_POLICY_CACHE_SECONDS", default=300)
AWS_CONNECT_TIMEOUT = env.float("AWS_CONNECT_TIMEOUT", default=5)
AWS_READ_TIMEOUT = env.float("AWS_READ_TIMEOUT", default=10)
AWS_MAX_ATTEMPTS = env.int("AWS_MAX_ATTEMPTS", default=4)
# Hosts a configuration's endpoint URL may name, comma-separated `[http://]host[:port]` patterns
# (vault/validators.py); the default is AWS's own IAM and STS endpoints. `make run` adds its
# local emulator.
AWS_ENDPOINT_ALLOWLIST = env.list("AWS_ENDPOINT_ALLOWLIST", default=list(AWS_ENDPOINT_DEFAULTS))
try:
    parse_endpoint_patterns(AWS_ENDPOINT_ALLOWLIST)
except ValueError as _exc:
    _refuse_to_start(f"AWS_ENDPOINT_ALLOWLIST has a malformed entry: {_exc}")

Q_CLUSTER = {
    # The plain `qcluster` serves the gateway named "default"; Q_CLUSTER_NAME=X serves gateway X.
    "name": "default",
    "workers": env.int("Q_WORKERS", default=2),
    # `timeout` kills a task that runs longer (a rotation with every retry of a slow AWS fits
    # in it); `retry` must be larger so the broker never hands a running task to a second
    # worker. A killed task is safe: its rotation is recovered when its lease runs out.
    "timeout": env.int("Q_TIMEOUT", default=900),
    "retry": env.int("Q_RETRY", default=960),
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 500,
    "ack_failures": True,
    "poll": 0.1,
    "label": "Gateways (django-q2)",
    "log_level": env.str("Q_LOG_LEVEL", default="INFO"),
    "ALT_CLUSTERS": {},
}
# Redis calls cannot hang either: redis-py waits for ever by default, so a black-holed Redis
# would hold a Rotate click (its enqueue after the commit) until gunicorn kills the worker, and
# a gateway's pusher with it. The broker's blocking read (BLPOP) waits 1 s, well inside these.
REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=5)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=10)


def url_with_defaults(url: str, **defaults: object) -> str:
    """``url`` with query parameters added for those of ``defaults`` it does not set itself."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query = {**{k: str(v) for k, v in defaults.items()}, **query}
    return urlunsplit(parts._replace(query=urlencode(query)))


if REDIS_URL:
    Q_CLUSTER["redis"] = url_with_defaults(
        REDIS_URL,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        socket_keepalive="true",
    )
else:
    Q_CLUSTER["orm"] = "default"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django-q": {"level": env.str("Q_LOG_LEVEL", default="INFO")},
        # botocore logs whole request bodies (new passwords included) at DEBUG: never below INFO.
        "botocore": {"level": "INFO"},
        "boto3": {"level": "INFO"},
        "urllib3": {"level": "INFO"},
    },
}

# --- webhooks (webhooks/, docs/webhooks.md) ---
# Hosts a webhook URL may name besides public https:// addresses: comma-separated
# `[http://]host[:port]` patterns, as AWS_ENDPOINT_ALLOWLIST (e.g. http://127.0.0.1:* for a
# receiver on this machine). Internal and loopback addresses are refused unless listed here.
WEBHOOK_URL_ALLOWLIST = env.list("WEBHOOK_URL_ALLOWLIST", default=[])
try:
    parse_endpoint_patterns(WEBHOOK_URL_ALLOWLIST)
except ValueError as _exc:
    _refuse_to_start(f"WEBHOOK_URL_ALLOWLIST has a malformed entry: {_exc}")
# Seconds a delivery may wait to connect and for each read of the answer.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5)
# Attempts per delivery (30 s, 1 min, 2 min ... at most 6 h apart: about 14 hours for 12).
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=12)

# --- metrics (/metrics, issue 16) ---
# GET /metrics answers a request with `Authorization: Bearer <METRICS_TOKEN>`, or from an
# address in METRICS_ALLOWED_NETWORKS (CIDRs, REMOTE_ADDR); with neither set it is not served.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
try:
    import ipaddress as _ipaddress

    for _network in METRICS_ALLOWED_NETWORKS:
        _ipaddress.ip_network(_network, strict=False)
except ValueError as _exc:
    _refuse_to_start(f"METRICS_ALLOWED_NETWORKS has a malformed entry: {_exc}")
# A gateway writes its AWS call latencies and errors at most this often (seconds; 0: at each
# call), and at every tick.
METRICS_AWS_FLUSH_SECONDS = env.float("METRICS_AWS_FLUSH_SECONDS", default=10)

# --- Single sign-on: OpenID Connect (vault/oidc.py, docs/sso.md) ---
# Off (no button, /oidc/ answers 404, nobody signs in through it) while OIDC_RP_CLIENT_ID is
# unset. The provider's endpoints come from OIDC_OP_DISCOVERY_URL, or one by one below.
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET", default="")
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", default="single sign-on")
OIDC_OP_DISCOVERY_URL = env.str("OIDC_OP_DISCOVERY_URL", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
# The ID token's `iss` must be this (from the discovery document when unset there).
OIDC_OP_ISSUER = env.str("OIDC_OP_ISSUER", default="")
OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile")
OIDC_USE_PKCE = env.bool("OIDC_USE_PKCE", default=True)
# Send the client secret with HTTP Basic (client_secret_basic) instead of in the form body.
OIDC_TOKEN_USE_BASIC_AUTH = env.bool("OIDC_TOKEN_USE_BASIC_AUTH", default=False)
# Calls to the provider never wait for ever (seconds: connect and read).
OIDC_TIMEOUT = env.float("OIDC_TIMEOUT", default=10)
OIDC_VERIFY_SSL = env.bool("OIDC_VERIFY_SSL", default=True)
# On, a person unknown here gets an account at first sign-in; off, only accounts created
# beforehand (matched by email address) may sign in.
OIDC_CREATE_USER = env.bool("OIDC_CREATE_USER", default=False)
# Superusers and staff signing in through the provider (matched by a verified email): off by
# default, so that an identity at the provider never reaches an administrator's account.
OIDC_SUPERUSERS = env.bool("OIDC_SUPERUSERS", default=False)
# The claim listing the person's groups at the provider, and provider group=Django group pairs
# (`OIDC_GROUP_MAP=vault-admins=Vault admins,vault-ops=Operators`): every sign-in sets the
# person's membership of the mapped Django groups (and so their enforcement policies).
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_GROUP_MAP = env.dict("OIDC_GROUP_MAP", default={})
# `amr` values (RFC 8176) that mean the provider asked a second factor: then this vault does
# not ask its own.
OIDC_MFA_AMR_VALUES = env.list("OIDC_MFA_AMR_VALUES", default=["mfa", "otp", "hwk"])
# Off: only superusers (break-glass accounts) may sign in with a local password.
LOCAL_PASSWORDS = env.bool("LOCAL_PASSWORDS", default=True)
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
OIDC_STORE_ACCESS_TOKEN = False
OIDC_STORE_ID_TOKEN = False
AUTHENTICATION_BACKENDS.append("vault.oidc.VaultOIDCBackend")
# Right after django-otp's: a provider sign-in that carried a second factor counts as verified.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django_otp.middleware.OTPMiddleware") + 1,
    "vault.oidc.ProviderSecondFactorMiddleware",
)
TEMPLATES[0]["OPTIONS"]["context_processors"].append("vault.oidc.sso_context")

# --- notifications by email (notifications app, docs/operations.md) ---
# EMAIL_URL: smtp://user:password@host:587 (smtp+tls://, smtp+ssl://), consolemail://,
# filemail:///dir (one file per mail), or mbox:///path/mail.log (appended, what `make run`
# uses). Without it: the console under DEBUG, else Django's default (SMTP on localhost:25).
EMAIL_URL = env.str("EMAIL_URL", default="consolemail://" if DEBUG else "")
if EMAIL_URL.startswith("mbox://"):
    EMAIL_BACKEND = "notifications.backends.MboxBackend"
    EMAIL_FILE_PATH = EMAIL_URL.removeprefix("mbox://")
elif EMAIL_URL:
    vars().update(environ.Env.email_url_config(EMAIL_URL))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="PAM Vault <pam-vault@localhost>")
# An SMTP server that does not answer must not hold a gateway's worker for long.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# The address people open the vault at: mails link to the page that fixes what they report.
VAULT_BASE_URL = env.str("VAULT_BASE_URL", default="http://127.0.0.1:8000")
# Daily digests go out at the first gateway tick after this hour (TIME_ZONE), once a day.
NOTIFICATIONS_DIGEST_HOUR = env.int("NOTIFICATIONS_DIGEST_HOUR", default=8)

# --- the record page's reveal (issue 12) ---
# A revealed password is masked again after this many seconds on the page (static/js/reveal.js);
# 0 leaves it shown until Hide or the next page.
REVEAL_AUTO_HIDE_SECONDS = env.int("REVEAL_AUTO_HIDE_SECONDS", default=30)

# --- the Secrets Manager-compatible API (issue 15, secretsapi/) ---
# Requests per second per client credential; more are answered with AWS's ThrottlingException.
# Counted in the cache (CACHES): per server process with the default local-memory cache, across
# processes with a shared one. 0 turns the limit off.
SECRETS_API_RATE_LIMIT = env.int("SECRETS_API_RATE_LIMIT", default=100)
