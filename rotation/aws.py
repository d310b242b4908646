"""The only module that talks to AWS (boto3/botocore); it turns botocore's errors into ours.

Two error families, because the rotation state machine must know whether a password may be live:

- ``AwsRefused``: AWS's answer proves nothing changed and retrying will not help.
- ``AwsTransient``: worth retrying later. ``may_have_applied`` is True when the call was
  ``UpdateLoginProfile`` and the failure does not prove that AWS left the password unchanged.

Every message is a sentence a person can act on and never contains a password or secret key.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
import botocore.exceptions as bce
import botocore.loaders
import botocore.session
from botocore.parsers import ResponseParserError
from django.conf import settings
from django.core.exceptions import ValidationError

from vault.validators import validate_endpoint_url

if TYPE_CHECKING:
    from rotation.passwords import AccountPolicy
    from vault.models import PamConfiguration

logger = logging.getLogger(__name__)

# botocore logs whole request bodies at DEBUG, and UpdateLoginProfile's body holds the new
# password: keep botocore above DEBUG even when the root logger (or caplog) is turned down.
for _name in ("botocore", "boto3"):
    _lg = logging.getLogger(_name)
    if _lg.level == logging.NOTSET or _lg.level < logging.INFO:
        _lg.setLevel(logging.INFO)

# Failures to open a connection: the request never left this host.
NOTHING_SENT_ERRORS = (
    bce.EndpointConnectionError,
    bce.ConnectTimeoutError,
    bce.ProxyConnectionError,
)
# CALL_FAILURES: a botocore call can raise more than ClientError and BotoCoreError: a body that
# is not AWS's XML (an internal web page) raises botocore.parsers.ResponseParserError, which is
# neither. So every AWS call here catches Exception around the call itself and turns it into an
# AwsError (may_have_applied for UpdateLoginProfile): a rotation fails or retries cleanly, and
# neither a gateway task nor Test connection ever dies of an uncaught botocore error.
CLIENT_CACHE_SIZE = 64
VALUE_CACHE_SIZE = 1024
# EntityTemporarilyUnmodifiable: AWS asks us to come back shortly; total stays under 5 s.
UNMODIFIABLE_DELAYS = (0.25, 0.5, 1.0, 2.0)
# No new UpdateLoginProfile call starts this long after the first: one set_console_password
# must end well inside the rotation's lease (ROTATION_LEASE_SECONDS), or another worker could
# take the rotation over while this call can still change the password.
UPDATE_BUDGET_SECONDS = 30.0

ARN_RE = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):user/(?P<path>.+)$")
NOT_AUTHORIZED_RE = re.compile(
    r"not authorized to perform:?\s*(?P<action>[A-Za-z0-9-]+:[A-Za-z0-9*]+)"
)

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
# The request was rejected as a whole; AWS did not act on it.
REJECTED_RETRYABLE_CODES = THROTTLING_CODES | {
    "EntityTemporarilyUnmodifiable",
    "ConcurrentModification",
    "LimitExceeded",
}
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "NotAuthorized"}
)
BAD_CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "AuthFailure",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "InvalidSecurity",
    }
)
INVALID_REQUEST_CODES = frozenset(
    {
        "ValidationError",
        "InvalidInput",
        "InvalidParameterValue",
        "InvalidParameterCombination",
        "MalformedQueryString",
        "MissingParameter",
        "InvalidAction",
    }
)
# AWS failed to answer, or the connection was lost, after the request was (maybe) processed.
SERVER_FAILURE_CODES = frozenset(
    {"ServiceFailure", "ServiceUnavailable", "InternalFailure", "InternalError", "RequestTimeout"}
)
# The error codes CALL_HOOKS are told as they are; any other is "Other".
KNOWN_ERROR_CODES = (
    REJECTED_RETRYABLE_CODES
    | ACCESS_DENIED_CODES
    | BAD_CREDENTIAL_CODES
    | INVALID_REQUEST_CODES
    | SERVER_FAILURE_CODES
    | {"NoSuchEntity", "PasswordPolicyViolation", "EntityAlreadyExists", "Unknown"}
)

IAM_ACTIONS = {
    "GetLoginProfile": "iam:GetLoginProfile",
    "UpdateLoginProfile": "iam:UpdateLoginProfile",
    "GetAccountPasswordPolicy": "iam:GetAccountPasswordPolicy",
    "GetUser": "iam:GetUser",
    "GetCallerIdentity": "sts:GetCallerIdentity",
    "ListAccessKeys": "iam:ListAccessKeys",
    "CreateAccessKey": "iam:CreateAccessKey",
    "UpdateAccessKey": "iam:UpdateAccessKey",
    "DeleteAccessKey": "iam:DeleteAccessKey",
}


class AwsError(Exception):
    """An AWS call failed; ``message`` says what to do, ``code`` is AWS's error code or a tag."""

    may_have_applied = False

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message


class AwsRefused(AwsError):
    """AWS's answer proves nothing changed, and retrying will not help."""


class AwsTransient(AwsError):
    """Worth retrying later. ``may_have_applied``: the password change may have happened."""

    def __init__(self, message: str, code: str, *, may_have_applied: bool = False) -> None:
        super().__init__(message, code)
        self.may_have_applied = may_have_applied


@dataclass
class ConnectionReport:
    account_id: str
    arn: str
    policy: AccountPolicy | None
    region: str
    endpoint_url: str


# --- caches ---------------------------------------------------------------------------------


class _Lru:
    """A small thread-safe LRU with an optional time to live per entry."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> tuple[bool, Any]:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return False, None
            expires, value = item
            if expires and expires < time.monotonic():
                del self._data[key]
                return False, None
            self._data.move_to_end(key)
            return True, value

    def put(self, key: Any, value: Any, ttl: float | None = None) -> None:
        """Keep ``value`` for ``ttl`` seconds (None: until evicted; 0 or less: not at all)."""
        if ttl is not None and ttl <= 0:
            return
        expires = time.monotonic() + ttl if ttl is not None else 0.0
        with self._lock:
            self._data[key] = (expires, value)
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_clients = _Lru(CLIENT_CACHE_SIZE)
_values = _Lru(VALUE_CACHE_SIZE)
# boto3 sessions are not thread-safe; one shared session (its loaded service models make new
# clients cheap) guarded by a lock. Clients themselves are thread-safe once made.
_session_lock = threading.Lock()
_session: boto3.session.Session | None = None
# botocore's service descriptions (megabytes of JSON for IAM) are read once per process and
# kept by this loader, which every session shares: a session of its own would read them again
# (about 0.1 s per first client after clear_caches; the data never changes while we run).
_loader = botocore.loaders.create_loader()
_loader_lock = threading.Lock()


def _boto3_session() -> boto3.session.Session:
    core = botocore.session.get_session()
    core.register_component("data_loader", _loader)
    session = boto3.session.Session(botocore_session=core)
    # Each boto3 session appends its own data directory to the loader's path: keep one.
    with _loader_lock:
        _loader.search_paths[:] = list(dict.fromkeys(_loader.search_paths))
    return session


# Per-thread record of UpdateLoginProfile attempts inside botocore's retry loop: a final
# Throttling after an earlier dropped connection must not be reported as "nothing changed".
_attempts = threading.local()
_sleep = time.sleep  # tests replace it to check the waits without waiting

# Apps above rotation observe every AWS call made here (metrics: latency and error codes):
# name -> callable(action, seconds, code), action as "iam:UpdateLoginProfile", code "" when AWS
# answered without error. Filled in their ready(); rotation never imports them. The code is
# one of KNOWN_ERROR_CODES, an exception class name or "Other": an endpoint's answer may echo
# what it was sent (a password), so its own text never goes to an observer.
CALL_HOOKS: dict[str, Callable[[str, float, str], None]] = {}


def clear_caches() -> None:
    """Forget cached clients, account ids and password policies (tests use it)."""
    global _session
    with _session_lock:
        _session = None
    _clients.clear()
    _values.clear()


def _config_key(config: PamConfiguration) -> tuple:
    return (config.uid, config.updated_at)


# --- clients --------------------------------------------------------------------------------


def _where(config: PamConfiguration, service: str = "iam") -> str:
    if config.endpoint_url:
        return f"the endpoint {config.endpoint_url}"
    return f"AWS {service.upper()} in {config.region}"


def _botocore_config(attempts: int) -> botocore.config.Config:
    # total_max_attempts counts the first try; botocore's max_attempts would not.
    return botocore.config.Config(
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=settings.AWS_CONNECT_TIMEOUT,
        read_timeout=settings.AWS_READ_TIMEOUT,
    )


def _new_client(service: str, **kwargs: Any):
    """A boto3 client from the shared session, made under its lock (sessions are not
    thread-safe)."""
    global _session
    with _session_lock:
        if _session is None:
            _session = _boto3_session()
        return _session.client(service, **kwargs)


def preload() -> None:
    """Read botocore's descriptions of the services a gateway calls, once, in the gateway's
    first process. Its workers are forked from it and start with them in memory; otherwise each
    worker read them on its first rotation (0.3 to 0.5 s of CPU on 2 vCPU, issue 10's profile),
    and again after every recycle. Makes no request."""
    for service in ("iam", "sts"):
        _new_client(
            service,
            region_name="us-east-1",
            aws_access_key_id="preload",
            aws_secret_access_key="preload",
        )


def client(config: PamConfiguration, service: str, *, attempts: int | None = None):
    """A boto3 client for ``service`` with the configuration's credentials, region and endpoint.

    Cached per configuration version (uid, updated_at) and per AWS_* setting, because making a
    client costs tens of milliseconds and a rotation must cost a few. ``attempts`` overrides
    AWS_MAX_ATTEMPTS: 1 for a call that must never be sent twice by botocore's retries. The endpoint URL is checked
    against AWS_ENDPOINT_ALLOWLIST first, every time: the web checked it when the configuration
    was saved, but the allowlist may have changed since.
    """
    _check_endpoint(config)
    retry_settings = (
        attempts or settings.AWS_MAX_ATTEMPTS,
        settings.AWS_CONNECT_TIMEOUT,
        settings.AWS_READ_TIMEOUT,
    )
    key = (*_config_key(config), service, retry_settings)
    found, value = _clients.get(key)
    if found:
        return value
    kwargs: dict[str, Any] = {
        "region_name": config.region,
        "endpoint_url": config.endpoint_url or None,
        "config": _botocore_config(retry_settings[0]),
    }
    if not config.uses_instance_role:
        secret = _secret_key(config)
        if not config.access_key_id or not secret:
            raise AwsRefused(
                f'Configuration "{config.title}" has no complete access key: enter both the '
                "access key ID and the access secret key, or USE_INSTANCE_ROLE in both fields.",
                "MissingCredentials",
            )
        kwargs["aws_access_key_id"] = config.access_key_id
        kwargs["aws_secret_access_key"] = secret
    try:
        made = _new_client(service, **kwargs)
    except ValueError as exc:
        # botocore says "Invalid endpoint: <url>" or names the bad region; neither holds a secret.
        if config.endpoint_url and "endpoint" in str(exc).lower():
            raise _invalid_endpoint(config) from None
        raise AwsRefused(
            f'The region "{config.region}" of configuration "{config.title}" is not valid. '
            "Enter an AWS region name such as us-east-1.",
            "InvalidRegion",
        ) from None
    except bce.BotoCoreError as exc:
        raise AwsRefused(
            f'Could not set up an AWS client for configuration "{config.title}" '
            f"({type(exc).__name__}). Check its region and endpoint URL.",
            type(exc).__name__,
        ) from None
    if service == "iam":
        made.meta.events.register("needs-retry.iam.UpdateLoginProfile", _observe_update_attempt)
    made.meta.events.register("before-call", _call_started)
    made.meta.events.register("after-call", _call_answered)
    made.meta.events.register("after-call-error", _call_raised)
    _clients.put(key, made)
    return made


# --- call observers (CALL_HOOKS) --------------------------------------------------------------


def _call_started(model, context: dict, **_: Any) -> None:
    # after-call-error is not given the operation: keep it with the start time.
    action = f"{model.service_model.endpoint_prefix}:{model.name}"
    context["vault_call"] = (action, time.monotonic())


def _call_answered(http_response=None, parsed=None, context=None, **_: Any) -> None:
    code = ""
    if http_response is not None and http_response.status_code >= 300:
        code = str(((parsed or {}).get("Error") or {}).get("Code") or "Unknown")
        code = code if code in KNOWN_ERROR_CODES else "Other"
    _call_observed(context, code)


def _call_raised(exception=None, context=None, **_: Any) -> None:
    _call_observed(context, type(exception).__name__)


def _call_observed(context: dict | None, code: str) -> None:
    if not CALL_HOOKS or not context or "vault_call" not in context:
        return
    action, started = context["vault_call"]
    seconds = time.monotonic() - started
    for name, hook in list(CALL_HOOKS.items()):
        try:
            hook(action, seconds, code)
        except Exception:  # an observer's failure must never fail or change an AWS call
            logger.exception("AWS call hook %s failed", name)


def _check_endpoint(config: PamConfiguration) -> None:
    """The endpoint URL is a URL that AWS_ENDPOINT_ALLOWLIST allows (empty: AWS's own)."""
    if not config.endpoint_url:
        return
    try:
        validate_endpoint_url(config.endpoint_url)
    except ValidationError as exc:
        if exc.code != "endpoint_not_allowed":
            raise _invalid_endpoint(config) from None
        raise AwsRefused(
            f'The endpoint URL {config.endpoint_url} of configuration "{config.title}" is not '
            "an allowed AWS endpoint on this vault (AWS_ENDPOINT_ALLOWLIST); nothing was sent. "
            "Edit the configuration and leave the endpoint URL empty to use AWS's own endpoint, "
            "or ask the vault's operator to allow this host.",
            "EndpointNotAllowed",
        ) from None


def _invalid_endpoint(config: PamConfiguration) -> AwsRefused:
    return AwsRefused(
        f'The endpoint URL "{config.endpoint_url}" of configuration "{config.title}" is '
        "not valid. Enter a full URL such as https://iam.amazonaws.com, or leave it empty.",
        "InvalidEndpoint",
    )


def _secret_key(config: PamConfiguration) -> str:
    try:
        return config.get_secret("access_secret_key")
    except Exception as exc:  # vault.crypto.CryptoError; its message names keys, not secrets
        raise AwsRefused(
            f'The access secret key of configuration "{config.title}" cannot be decrypted '
            f"({exc}). Enter the secret key again.",
            "SecretUnreadable",
        ) from None


def _observe_update_attempt(response=None, caught_exception=None, **_: Any) -> None:
    if not getattr(_attempts, "tracking", False):
        return
    if caught_exception is not None:
        if not _nothing_sent(caught_exception):
            _attempts.ambiguous = True
    elif response is not None and response[0] is not None and response[0].status_code >= 500:
        _attempts.ambiguous = True


def _nothing_sent(exc: BaseException) -> bool:
    # Only failures to open a connection prove the request never left; SSLError and anything
    # after the connection opened (closed, read timeout) may have reached AWS.
    return isinstance(exc, NOTHING_SENT_ERRORS)


# --- error translation ----------------------------------------------------------------------


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    return text


def _translate(
    exc: Exception,
    config: PamConfiguration,
    operation: str,
    *,
    login: str = "",
    mutating: bool = False,
    secrets: tuple[str, ...] = (),
) -> AwsError:
    """Our error for a botocore exception raised by ``operation``."""
    if isinstance(exc, AwsError):
        return exc
    action = IAM_ACTIONS.get(operation, operation)
    where = _where(config, action.split(":")[0])
    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        aws_message = _scrub(str(error.get("Message") or ""), secrets)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return _translate_client_error(
            config, operation, action, code, aws_message, status, login=login, mutating=mutating
        )
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return AwsRefused(
            f'No AWS credentials found for configuration "{config.title}": it uses '
            "USE_INSTANCE_ROLE but the gateway host has no instance role or default credentials. "
            "Attach an IAM role to the gateway host, or enter an access key ID and secret key.",
            "NoCredentials",
        )
    if isinstance(exc, bce.CredentialRetrievalError):
        return AwsTransient(
            f'Could not fetch the instance role credentials for configuration "{config.title}" '
            "from the gateway host. Check the host's instance role and metadata service.",
            "CredentialRetrievalError",
        )
    if isinstance(exc, bce.ParamValidationError):
        # Its text may quote parameter values (the password), so it is not repeated here.
        return AwsRefused(
            f"The request for {action} was not valid (a parameter is missing or malformed); "
            "nothing was sent to AWS.",
            "ParamValidationError",
        )
    if isinstance(exc, bce.NoRegionError | bce.UnknownEndpointError | bce.InvalidRegionError):
        return AwsRefused(
            f'The region "{config.region}" of configuration "{config.title}" is not valid. '
            "Enter an AWS region name such as us-east-1.",
            "InvalidRegion",
        )
    if _nothing_sent(exc):
        timeout = isinstance(exc, bce.ConnectTimeoutError)
        return AwsTransient(
            f"Could not connect to {where} for {action}"
            + (f" within {settings.AWS_CONNECT_TIMEOUT:g} s" if timeout else "")
            + "; nothing was sent. Check the endpoint URL and the gateway's network.",
            "ConnectTimeout" if timeout else "EndpointConnectionError",
        )
    if isinstance(exc, bce.ReadTimeoutError):
        return AwsTransient(
            f"{where[0].upper()}{where[1:]} did not answer {action} within "
            f"{settings.AWS_READ_TIMEOUT:g} s" + _maybe_applied_note(mutating, operation),
            "ReadTimeout",
            may_have_applied=mutating,
        )
    if isinstance(exc, bce.ConnectionClosedError):
        return AwsTransient(
            f"The connection to {where} closed before AWS answered {action}"
            + _maybe_applied_note(mutating, operation),
            "ConnectionClosed",
            may_have_applied=mutating,
        )
    if isinstance(exc, ResponseParserError):
        # Not a BotoCoreError. Its text quotes the body, which is not repeated here.
        if config.endpoint_url:
            hint = f'check that the endpoint URL of configuration "{config.title}" names AWS'
        else:
            hint = "a proxy between the gateway and AWS may have answered instead"
        return AwsTransient(
            f"{where[0].upper()}{where[1:]} answered {action} with something that is not an AWS "
            f"answer (not the XML AWS sends): {hint}" + _maybe_applied_note(mutating, operation),
            "ResponseParserError",
            may_have_applied=mutating,
        )
    return AwsTransient(
        f"The call {action} to {where} failed ({type(exc).__name__})"
        + _maybe_applied_note(mutating, operation),
        type(exc).__name__,
        may_have_applied=mutating,
    )


def _maybe_applied_note(mutating: bool, operation: str) -> str:
    if mutating and operation in KEY_OPERATIONS:
        return (
            "; AWS may have made the change, so the vault reads the user's access keys again "
            "before it goes on"
        )
    if mutating:
        return (
            "; the new password may have been applied, so the vault tries again with that "
            "same password"
        )
    return ". Try again later."


def _translate_client_error(
    config: PamConfiguration,
    operation: str,
    action: str,
    code: str,
    aws_message: str,
    status: int,
    *,
    login: str,
    mutating: bool,
) -> AwsError:
    if code == "NoSuchEntity" and operation in ("GetLoginProfile", "UpdateLoginProfile"):
        # AWS gives the same code for a missing user and for a user without a login profile.
        if not _user_exists(config, login):
            return AwsRefused(_no_such_user_message(config, login), code)
        return AwsRefused(no_console_access_message(login), code)
    if code == "NoSuchEntity" and operation == "GetUser":
        return AwsRefused(_no_such_user_message(config, login), code)
    if code == "NoSuchEntity" and operation in (*KEY_OPERATIONS, "ListAccessKeys"):
        if not _user_exists(config, login):
            return AwsRefused(_no_such_user_message(config, login), code)
        # A tag of our own: the key is gone, the user is there (retiring it is then done).
        return AwsRefused(
            f'AWS has no such access key for the IAM user "{login}".', "NoSuchAccessKey"
        )
    if code in ACCESS_DENIED_CODES or "not authorized to perform" in aws_message:
        found = NOT_AUTHORIZED_RE.search(aws_message)
        refused = found.group("action") if found else action
        return AwsRefused(
            f'AWS refused {refused} to the credentials of configuration "{config.title}" '
            f"({_who(config)}). Grant {refused} to the configuration's credentials "
            "(in an IAM policy) and try again.",
            code,
        )
    if code in BAD_CREDENTIAL_CODES:
        return AwsRefused(_bad_credentials_message(config, code), code)
    if code == "PasswordPolicyViolation":
        return AwsRefused(
            "AWS rejected the new password because it does not meet the account's password "
            f"policy ({aws_message or 'no details'}). Raise the record's password complexity "
            "to match the policy.",
            code,
        )
    if code in INVALID_REQUEST_CODES:
        return AwsRefused(
            f"AWS rejected {action} as invalid: {aws_message or code}. Check the record's "
            "login and the configuration.",
            code,
        )
    if code in THROTTLING_CODES:
        return AwsTransient(
            f"AWS throttled {action} ({code}): too many requests to this account. "
            "It will work when the request rate drops; try again later.",
            code,
        )
    if code == "EntityTemporarilyUnmodifiable":
        return AwsTransient(
            f'AWS is still applying another change to the IAM user "{login}" '
            "(EntityTemporarilyUnmodifiable). Try again in a minute.",
            code,
        )
    if code in REJECTED_RETRYABLE_CODES:
        return AwsTransient(
            f"AWS rejected {action} for now ({code}: {aws_message}). Try again later.", code
        )
    if status >= 500 or code in SERVER_FAILURE_CODES:
        return AwsTransient(
            f"AWS failed to process {action} ({code}, HTTP {status})"
            + _maybe_applied_note(mutating, operation),
            code,
            may_have_applied=mutating,
        )
    return AwsTransient(
        f"AWS answered {action} with an unexpected error ({code}: {aws_message})"
        + _maybe_applied_note(mutating, operation),
        code,
        may_have_applied=mutating,
    )


def no_console_access_message(login: str) -> str:
    return (
        f'The IAM user "{login}" has no AWS Console access (no login profile), so its console '
        "password cannot be rotated. An administrator must enable console access for this user "
        "and set at least a temporary password in the AWS console first."
    )


def _no_such_user_message(config: PamConfiguration, login: str) -> str:
    try:
        account = f"AWS account {caller_account(config)}"
    except AwsError:
        account = f'the AWS account of configuration "{config.title}"'
    return (
        f'The IAM user "{login}" does not exist in {account}. Check the record\'s login '
        "(IAM user names are case-sensitive) and its ARN."
    )


def _who(config: PamConfiguration) -> str:
    if config.uses_instance_role:
        return "the gateway host's instance role"
    return f"access key ID {config.access_key_id}"


def _bad_credentials_message(config: PamConfiguration, code: str) -> str:
    if config.uses_instance_role:
        return (
            f"AWS does not accept the instance role credentials of the gateway host ({code}): "
            "they are not valid or have expired. Check the role used by configuration "
            f'"{config.title}".'
        )
    if code == "SignatureDoesNotMatch":
        problem = "the access secret key does not match it"
    else:
        problem = "it is not valid or has expired"
    return (
        f"AWS does not accept the access key ID {config.access_key_id} of configuration "
        f'"{config.title}" ({code}): {problem}. Enter a current access key ID and secret key '
        "in the configuration."
    )


def _call(
    config: PamConfiguration,
    service: str,
    operation: str,
    *,
    login: str = "",
    mutating: bool = False,
    secrets: tuple[str, ...] = (),
    **params: Any,
) -> dict:
    api = client(config, service)
    method: Callable[..., dict] = getattr(api, _snake(operation))
    try:
        return method(**params)
    except Exception as exc:  # noqa: BLE001 - see CALL_FAILURES
        raise _translate(
            exc, config, operation, login=login, mutating=mutating, secrets=secrets
        ) from None


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


KEY_OPERATIONS = frozenset({"CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey"})

# --- public calls ---------------------------------------------------------------------------


def _caller_identity(config: PamConfiguration) -> dict:
    return _call(config, "sts", "GetCallerIdentity")


def caller_account(config: PamConfiguration) -> str:
    """The account id the configuration's credentials belong to (cached for a few minutes)."""
    key = ("account", *_config_key(config))
    found, value = _values.get(key)
    if found:
        return value
    account = _account_of(config, _caller_identity(config))
    _values.put(key, account, settings.AWS_POLICY_CACHE_SECONDS)
    return account


def _account_of(config: PamConfiguration, identity: dict) -> str:
    account = str(identity.get("Account") or "")
    if not re.fullmatch(r"\d{12}", account):
        where = _where(config, "sts")
        raise AwsTransient(
            f"{where[0].upper()}{where[1:]} answered sts:GetCallerIdentity without an AWS "
            f'account id: check the endpoint URL of configuration "{config.title}". '
            "Try again later.",
            "InvalidResponse",
        )
    return account


def _fetch_policy(config: PamConfiguration) -> AccountPolicy | None:
    iam = client(config, "iam")
    try:
        answer = iam.get_account_password_policy()
    except bce.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
            return None  # the account has no custom password policy
        raise _translate(exc, config, "GetAccountPasswordPolicy") from None
    except Exception as exc:  # noqa: BLE001 - see CALL_FAILURES
        raise _translate(exc, config, "GetAccountPasswordPolicy") from None
    from rotation.passwords import AccountPolicy  # here: passwords.py need not load boto3

    return AccountPolicy.from_aws(answer.get("PasswordPolicy"))


def account_password_policy(config: PamConfiguration) -> AccountPolicy | None:
    """The account's password policy, or None when it has none (cached for a few minutes)."""
    key = ("policy", *_config_key(config))
    found, value = _values.get(key)
    if found:
        return value
    policy = _fetch_policy(config)
    _values.put(key, policy, settings.AWS_POLICY_CACHE_SECONDS)
    return policy


def parse_arn(arn: str) -> tuple[str, str, str]:
    """(partition, account id, user name) of an IAM user ARN; ValueError when it is not one."""
    found = ARN_RE.fullmatch(arn or "")
    if not found:
        raise ValueError(arn)
    return found["partition"], found["account"], found["path"].rsplit("/", 1)[-1]


def check_account(config: PamConfiguration, *, arn: str, login: str = "") -> None:
    """The ARN names an IAM user (``login``, when given) in the configuration's account."""
    try:
        _partition, account, name = parse_arn(arn)
    except ValueError:
        raise AwsRefused(
            f'The record\'s ARN "{arn}" is not an IAM user ARN. Enter it as '
            "arn:aws:iam::<12-digit account id>:user/<user name>.",
            "InvalidArn",
        ) from None
    if login and name != login:
        raise AwsRefused(
            f'The record\'s ARN names the IAM user "{name}" but its login is "{login}". '
            "Make them the same (IAM user names are case-sensitive).",
            "ArnLoginMismatch",
        )
    actual = caller_account(config)
    if account != actual:
        raise AwsRefused(
            f"The record's ARN is in account {account} but the configuration's credentials "
            f'belong to account {actual} (configuration "{config.title}"). Choose a '
            f"configuration for account {account}, or correct the record's ARN.",
            "WrongAccount",
        )


def check_target(config: PamConfiguration, *, login: str, arn: str) -> None:
    """The record can be rotated with this configuration: right account, has a console login."""
    check_account(config, arn=arn, login=login)
    iam = client(config, "iam")
    try:
        iam.get_login_profile(UserName=login)
    except bce.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchEntity" and not _user_exists(
            config, login
        ):
            raise AwsRefused(_no_such_user_message(config, login), "NoSuchEntity") from None
        raise _translate(exc, config, "GetLoginProfile", login=login) from None
    except Exception as exc:  # noqa: BLE001 - see CALL_FAILURES
        raise _translate(exc, config, "GetLoginProfile", login=login) from None


def _user_exists(config: PamConfiguration, login: str) -> bool:
    """False only when AWS says the user does not exist; any other answer counts as yes."""
    try:
        client(config, "iam").get_user(UserName=login)
    except bce.ClientError as exc:
        return exc.response.get("Error", {}).get("Code") != "NoSuchEntity"
    except Exception:  # noqa: BLE001 - see CALL_FAILURES; only a clear "no" counts
        return True
    return True


def user_path(config: PamConfiguration, *, login: str) -> str:
    """The IAM path AWS holds for the user (GetUser), e.g. "/" or "/rotated/team-a/"."""
    answer = _call(config, "iam", "GetUser", login=login, UserName=login)
    return str(answer.get("User", {}).get("Path") or "/")


def set_console_password(config: PamConfiguration, *, login: str, password: str) -> bool:
    """Set the IAM user's console password (UpdateLoginProfile, no reset required).

    Returns True when it succeeded after an earlier attempt went unanswered (that request may
    still reach AWS later). Raises AwsRefused when AWS proves nothing changed, AwsTransient
    otherwise; its ``may_have_applied`` is True when any attempt may have reached AWS
    unanswered.
    """
    iam = client(config, "iam")
    _attempts.tracking = True
    _attempts.ambiguous = False
    started = time.monotonic()
    try:
        for delay in (*UNMODIFIABLE_DELAYS, None):
            try:
                iam.update_login_profile(
                    UserName=login, Password=password, PasswordResetRequired=False
                )
                return bool(getattr(_attempts, "ambiguous", False))
            except bce.ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                in_budget = time.monotonic() - started + (delay or 0) < UPDATE_BUDGET_SECONDS
                if code == "EntityTemporarilyUnmodifiable" and delay is not None and in_budget:
                    _sleep(delay)
                    continue
                error = _translate_update(exc, config, login, password)
            except Exception as exc:  # noqa: BLE001 - see CALL_FAILURES
                error = _translate_update(exc, config, login, password)
            raise _after_ambiguity(error, getattr(_attempts, "ambiguous", False)) from None
    finally:
        _attempts.tracking = False
        _attempts.ambiguous = False


def _translate_update(
    exc: Exception, config: PamConfiguration, login: str, password: str
) -> AwsError:
    secrets = (password, "" if config.uses_instance_role else _secret_key(config))
    return _translate(
        exc, config, "UpdateLoginProfile", login=login, mutating=True, secrets=secrets
    )


def _after_ambiguity(error: AwsError, ambiguous: bool) -> AwsError:
    """An answer about the last attempt says nothing about an earlier one that went unanswered."""
    if not ambiguous or error.may_have_applied or error.code == "NoSuchEntity":
        return error
    # e.g. a retry refused as password reuse after the first attempt applied the password.
    return AwsTransient(
        "An earlier attempt of iam:UpdateLoginProfile went unanswered, so the new password may "
        f"have been applied; AWS then answered: {error.message}",
        error.code,
        may_have_applied=True,
    )


# --- access keys (the "IAM User access key" method, rotation/methods/iam_access_key.py) -------


@dataclass(frozen=True)
class AccessKey:
    key_id: str
    status: str  # "Active" or "Inactive"
    created: datetime | None


def list_access_keys(config: PamConfiguration, *, login: str) -> list[AccessKey]:
    """The IAM user's access keys (at most two), oldest first."""
    answer = _call(config, "iam", "ListAccessKeys", login=login, UserName=login)
    keys = [
        AccessKey(
            key_id=str(item.get("AccessKeyId", "")),
            status=str(item.get("Status", "")),
            created=item.get("CreateDate"),
        )
        for item in answer.get("AccessKeyMetadata", [])
    ]
    return sorted(keys, key=lambda k: (k.created is None, k.created or 0, k.key_id))


def create_access_key(config: PamConfiguration, *, login: str) -> tuple[str, str]:
    """A new access key for the user: (key id, secret). Sent once, never retried by botocore:
    a retry after a lost answer would make a second key. A lost answer is AwsTransient with
    ``may_have_applied``: the key may exist, and its secret is then unknowable."""
    api = client(config, "iam", attempts=1)
    try:
        answer = api.create_access_key(UserName=login)
    except bce.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "LimitExceeded":
            raise AwsTransient(
                f'The IAM user "{login}" already has two access keys (LimitExceeded): the '
                "vault reads its keys again and makes room before it tries again.",
                "LimitExceeded",
            ) from None
        raise _translate(exc, config, "CreateAccessKey", login=login, mutating=True) from None
    except Exception as exc:  # noqa: BLE001 - see CALL_FAILURES
        raise _translate(exc, config, "CreateAccessKey", login=login, mutating=True) from None
    key = answer.get("AccessKey") or {}
    key_id, secret = str(key.get("AccessKeyId") or ""), str(key.get("SecretAccessKey") or "")
    if not key_id or not secret:
        raise AwsTransient(
            f"{_where(config)} answered iam:CreateAccessKey without a key id and secret: the "
            "key may exist; the vault reads the user's keys again before it tries again.",
            "InvalidResponse",
            may_have_applied=True,
        )
    return key_id, secret


def set_access_key_status(
    config: PamConfiguration, *, login: str, key_id: str, active: bool
) -> None:
    """Activate or deactivate one of the user's keys (doing it twice is harmless)."""
    _call(
        config,
        "iam",
        "UpdateAccessKey",
        login=login,
        mutating=True,
        UserName=login,
        AccessKeyId=key_id,
        Status="Active" if active else "Inactive",
    )


def delete_access_key(config: PamConfiguration, *, login: str, key_id: str) -> bool:
    """Delete one of the user's keys. False when AWS no longer has it (already deleted); an
    AwsRefused with code NoSuchEntity when the user itself does not exist."""
    try:
        _call(
            config,
            "iam",
            "DeleteAccessKey",
            login=login,
            mutating=True,
            UserName=login,
            AccessKeyId=key_id,
        )
    except AwsRefused as exc:
        if exc.code == "NoSuchAccessKey":
            return False
        raise
    return True


def key_identity(config: PamConfiguration, *, key_id: str, secret: str) -> str:
    """The ARN that AWS says the access key belongs to (sts:GetCallerIdentity signed with it).

    AwsRefused with code InvalidClientTokenId (or SignatureDoesNotMatch) while AWS does not
    accept the key yet: a new key takes a few seconds to reach every AWS endpoint."""
    _check_endpoint(config)
    try:
        # Not cached like client(): a key is checked a few times, once per rotation.
        sts = _new_client(
            "sts",
            region_name=config.region,
            endpoint_url=config.endpoint_url or None,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=_botocore_config(settings.AWS_MAX_ATTEMPTS),
        )
        answer = sts.get_caller_identity()
    except bce.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code") or "Unknown")
        if code in BAD_CREDENTIAL_CODES:
            raise AwsRefused(
                f"AWS does not accept the new access key {key_id} yet ({code}).", code
            ) from None
        raise _translate(exc, config, "GetCallerIdentity", secrets=(secret,)) from None
    except Exception as exc:  # noqa: BLE001 - see CALL_FAILURES
        raise _translate(exc, config, "GetCallerIdentity", secrets=(secret,)) from None
    return str(answer.get("Arn") or "")


def probe_key_permissions(config: PamConfiguration, *, login: str) -> dict[str, str | None]:
    """For a dry run: each IAM action an access-key rotation needs -> None when the
    configuration's credentials may call it, else why not. Nothing changes: Update and Delete
    are asked about a key id that cannot exist (AWS checks permission before existence), and
    CreateAccessKey, which cannot be asked without making a key, is left to the rotation."""
    absent = "AKIA" + "0" * 16
    probes: dict[str, Callable[[], object]] = {
        "iam:ListAccessKeys": lambda: list_access_keys(config, login=login),
        "iam:UpdateAccessKey": lambda: set_access_key_status(
            config, login=login, key_id=absent, active=False
        ),
        "iam:DeleteAccessKey": lambda: delete_access_key(config, login=login, key_id=absent),
        "sts:GetCallerIdentity": lambda: caller_account(config),
    }
    found: dict[str, str | None] = {}
    for action, probe in probes.items():
        try:
            probe()
        except AwsError as exc:
            if exc.code in ACCESS_DENIED_CODES or exc.code in BAD_CREDENTIAL_CODES:
                found[action] = exc.message
                continue
            if exc.code != "NoSuchAccessKey":
                found[action] = exc.message
                continue
        found[action] = None
    return found


def test_connection(config: PamConfiguration) -> ConnectionReport:
    """GetCallerIdentity and GetAccountPasswordPolicy, uncached: what the configuration reaches."""
    identity = _caller_identity(config)
    return ConnectionReport(
        account_id=_account_of(config, identity),
        arn=str(identity.get("Arn", "")),
        policy=_fetch_policy(config),
        region=config.region,
        endpoint_url=config.endpoint_url,
    )


# pytest would collect a module-level function named test_* from a test's namespace.
test_connection.__test__ = False  # type: ignore[attr-defined]


def emulator_seed(
    endpoint_url: str,
    *,
    console_passwords: dict[str, str | None],
    password_policy: dict | None = None,
) -> None:
    """Arrange a local AWS emulator for the demo (`make run`): IAM users, their console
    passwords (None: no console access) and the account password policy. Idempotent."""
    iam = _boto3_session().client(
        "iam",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="demo-access-key",
        aws_secret_access_key="demo-secret-key",
    )
    for login, password in console_passwords.items():
        try:
            iam.create_user(UserName=login)
        except bce.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "EntityAlreadyExists":
                raise
        if password is None:
            continue
        try:
            iam.create_login_profile(UserName=login, Password=password)
        except bce.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "EntityAlreadyExists":
                raise
            iam.update_login_profile(UserName=login, Password=password)
    if password_policy:
        iam.update_account_password_policy(**password_policy)


# --- Discovery (rotation/discovery.py): ListUsers pages and the IAM credential report ---------
#
# Read-only calls: nothing here changes AWS, so every failure is refused or transient, never
# "may have applied". Each function counts the requests it sends (botocore's retries included)
# in a CallCount, which the discovery job adds to its aws_calls.

IAM_ACTIONS.update(
    {
        "ListUsers": "iam:ListUsers",
        "GenerateCredentialReport": "iam:GenerateCredentialReport",
        "GetCredentialReport": "iam:GetCredentialReport",
    }
)
# AWS's largest ListUsers page.
LIST_USERS_MAX_ITEMS = 1000
# Waits between GenerateCredentialReport polls while AWS builds the report (about 16 s in all;
# AWS builds one in seconds for most accounts). Past them the discovery is resumed later.
REPORT_POLL_DELAYS = (0.5, 1.0, 2.0, 4.0, 4.0, 4.0)
# GetCredentialReport's own "not ready" answers: worth asking again, nothing is wrong.
REPORT_NOT_READY_CODES = frozenset({"ReportInProgress", "ReportNotPresent", "ReportExpired"})
_REPORT_ABSENT = frozenset({"", "N/A", "no_information", "not_supported"})


@dataclass
class CallCount:
    """AWS requests sent for one piece of work (retries included)."""

    n: int = 0

    def add(self, answer: dict) -> dict:
        self.n += 1 + int((answer.get("ResponseMetadata") or {}).get("RetryAttempts") or 0)
        return answer


@dataclass
class UsersPage:
    users: list[dict]  # user_name, user_id, arn, path, created_at (datetime or None)
    next_marker: str  # "" on the last page


@dataclass
class ReportRow:
    """One IAM user's line of the credential report."""

    console_access: bool | None
    password_last_used: datetime | None
    # [{"status": "Active"|"Inactive", "created": ISO, "last_used": ISO|None}]
    access_keys: list[dict]


def _counted_call(config: PamConfiguration, count: CallCount, operation: str, **params) -> dict:
    try:
        return count.add(_call(config, "iam", operation, **params))
    except AwsError:
        count.n += 1  # botocore's retries of a failed call are not reported; one at least
        raise


def list_users_page(
    config: PamConfiguration,
    *,
    count: CallCount,
    marker: str = "",
    max_items: int = LIST_USERS_MAX_ITEMS,
    path_prefix: str = "",
) -> UsersPage:
    """One page of ListUsers (MaxItems, Marker; PathPrefix when given)."""
    params: dict[str, Any] = {"MaxItems": max_items}
    if marker:
        params["Marker"] = marker
    if path_prefix:
        params["PathPrefix"] = path_prefix
    answer = _counted_call(config, count, "ListUsers", **params)
    users = [
        {
            "user_name": str(u.get("UserName") or ""),
            "user_id": str(u.get("UserId") or ""),
            "arn": str(u.get("Arn") or ""),
            "path": str(u.get("Path") or "/"),
            "created_at": u.get("CreateDate"),
        }
        for u in answer.get("Users") or []
        if u.get("UserName") and u.get("Arn")
    ]
    more = bool(answer.get("IsTruncated")) and bool(answer.get("Marker"))
    return UsersPage(users=users, next_marker=str(answer.get("Marker") or "") if more else "")


def credential_report(config: PamConfiguration, *, count: CallCount) -> dict[str, ReportRow]:
    """The account's IAM credential report by user name: GenerateCredentialReport polled until
    COMPLETE (bounded, REPORT_POLL_DELAYS), then GetCredentialReport. AwsTransient when AWS has
    not finished it in time (the discovery reads it again later)."""
    for delay in (*REPORT_POLL_DELAYS, None):
        answer = _counted_call(config, count, "GenerateCredentialReport")
        if str(answer.get("State") or "").upper() == "COMPLETE":
            break
        if delay is None:
            raise AwsTransient(
                "AWS has not finished the IAM credential report of configuration "
                f'"{config.title}" after {sum(REPORT_POLL_DELAYS):g} s. The discovery reads it '
                "again later.",
                "ReportInProgress",
            )
        _sleep(delay)
    try:
        answer = _counted_call(config, count, "GetCredentialReport")
    except AwsError as exc:
        if exc.code in REPORT_NOT_READY_CODES:
            raise AwsTransient(
                f"AWS's IAM credential report is not ready ({exc.code}). The discovery reads "
                "it again later.",
                exc.code,
            ) from None
        raise
    content = answer.get("Content") or b""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
    return parse_credential_report(text)


def _report_time(value: str | None) -> datetime | None:
    if value is None or value.strip() in _REPORT_ABSENT:
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_credential_report(text: str) -> dict[str, ReportRow]:
    """The credential report's CSV by user name (the root account's line left out). A column
    the report lacks gives None ("not known"), never a guess."""
    import csv
    import io

    rows: dict[str, ReportRow] = {}
    for line in csv.DictReader(io.StringIO(text)):
        name = (line.get("user") or "").strip()
        if not name or name == "<root_account>":
            continue
        enabled = (line.get("password_enabled") or "").strip().lower()
        keys = []
        for n in (1, 2):
            active = (line.get(f"access_key_{n}_active") or "").strip().lower()
            created = _report_time(line.get(f"access_key_{n}_last_rotated"))
            if created is None and active != "true":
                continue  # no such key
            used = _report_time(line.get(f"access_key_{n}_last_used_date"))
            keys.append(
                {
                    "status": "Active" if active == "true" else "Inactive",
                    "created": created.isoformat() if created else None,
                    "last_used": used.isoformat() if used else None,
                }
            )
        rows[name] = ReportRow(
            console_access={"true": True, "false": False}.get(enabled),
            password_last_used=_report_time(line.get("password_last_used")),
            access_keys=keys,
        )
    return rows
