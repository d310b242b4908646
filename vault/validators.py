"""Field validators shared by the web forms, the admin console and `pam import`.

Each raises django's ``ValidationError`` with a message a person can act on; the same message
appears as a field error in a form and after the JSON path in `pam import`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

# IAM user names: 1..64 of letters, digits and + = , . @ _ -  (case-sensitive).
IAM_LOGIN_RE = re.compile(r"[A-Za-z0-9+=,.@_-]{1,64}")
# arn:<partition>:iam::<12-digit account>:user/<optional path/>name. Paths are printable ASCII
# without spaces between slashes.
IAM_USER_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov):iam::(?P<account>\d{12}):"
    r"user/(?P<path>(?:[\x21-\x2e\x30-\x7e]+/)*)(?P<name>[A-Za-z0-9+=,.@_-]{1,64})$"
)
REGION_RE = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")
MAX_PASSWORD_LENGTH = 128
IAM_PATH_RE = re.compile(r"/(?:[\x21-\x2e\x30-\x7e]+/)*")
SCOPE_PATTERN_RE = re.compile(r"[A-Za-z0-9+=,.@_*?-]{1,64}")


def iam_user_name_from_arn(value: str) -> str | None:
    """The user name at the end of an IAM user ARN, or None if `value` is not one."""
    match = IAM_USER_ARN_RE.fullmatch(value or "")
    return match.group("name") if match else None


def validate_iam_user_arn(value: str) -> None:
    if not isinstance(value, str) or not IAM_USER_ARN_RE.fullmatch(value):
        raise ValidationError(
            "not an IAM user ARN: expected arn:<aws|aws-cn|aws-us-gov>:iam::<12-digit account>"
            ":user/<optional path/>name",
            code="invalid_arn",
        )


def validate_iam_login(value: str) -> None:
    if not isinstance(value, str) or not IAM_LOGIN_RE.fullmatch(value):
        raise ValidationError(
            "not an IAM user name: 1 to 64 letters, digits and + = , . @ _ -",
            code="invalid_login",
        )


def validate_arn_matches_login(arn: str, login: str) -> None:
    """The ARN's last path segment must be the login, exactly (IAM names are case-sensitive)."""
    name = iam_user_name_from_arn(arn)
    if name is None:
        validate_iam_user_arn(arn)
    if name != login:
        raise ValidationError(
            f'ARN user name "{name}" does not match login "{login}"', code="arn_login_mismatch"
        )


def validate_region_name(value: str) -> None:
    if not isinstance(value, str) or not REGION_RE.fullmatch(value):
        raise ValidationError(
            f'"{value}" is not an AWS region name (for example us-east-1)', code="invalid_region"
        )


def validate_endpoint_url(value: str) -> None:
    """An http(s) URL whose host AWS_ENDPOINT_ALLOWLIST allows; empty means "AWS's own
    endpoint" and is always allowed."""
    if value == "":
        return
    message = "endpoint URL must be an http:// or https:// URL with a host"
    if not isinstance(value, str) or any(c.isspace() for c in value):
        raise ValidationError(message, code="invalid_endpoint")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValidationError(message, code="invalid_endpoint") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(message, code="invalid_endpoint")
    if parts.username is not None or parts.password is not None:
        raise ValidationError(
            "endpoint URL must not contain a user name or password", code="invalid_endpoint"
        )
    if not endpoint_allowed(value):
        raise ValidationError(
            f"endpoint URL {endpoint_origin(value)} is not an allowed AWS endpoint: leave it "
            "empty to use AWS's own endpoint, or ask the vault's operator to add this host to "
            "AWS_ENDPOINT_ALLOWLIST",
            code="endpoint_not_allowed",
        )


# --- AWS_ENDPOINT_ALLOWLIST ---------------------------------------------------------------------
#
# The vault sends signed requests to a configuration's endpoint URL, so a URL may name only an
# allowed host, or anyone who may edit a configuration could make the gateway talk to internal
# addresses. A pattern is ``[http://|https://]host[:port]``: without a scheme only https, without
# a port only the scheme's default port, ``:*`` any port. In the host, a label ``*`` matches one
# DNS label and ``{region}`` one label shaped like an AWS region name (us-east-1).

# AWS's own IAM and STS host names in the partitions the vault knows (aws, aws-us-gov, aws-cn):
# global, regional, FIPS, dual-stack and interface VPC endpoint names, from botocore's endpoint
# rules. Narrower than *.amazonaws.com on purpose: other AWS customers control names there
# (bucket websites, API Gateway, load balancers, EC2 hosts), and some resolve to private
# addresses. https only: a certificate for these names proves the other end is AWS.
AWS_ENDPOINT_DEFAULTS = (
    "iam.amazonaws.com",
    "iam-fips.amazonaws.com",
    "iam.us-gov.amazonaws.com",
    "iam.{region}.amazonaws.com",
    "iam-fips.{region}.amazonaws.com",
    "iam.global.api.aws",
    "iam-fips.global.api.aws",
    "iam.us-gov.api.aws",
    "iam.{region}.api.aws",
    "iam-fips.{region}.api.aws",
    "sts.amazonaws.com",
    "sts.{region}.amazonaws.com",
    "sts-fips.{region}.amazonaws.com",
    "sts.{region}.api.aws",
    "sts-fips.{region}.api.aws",
    "*.iam.{region}.vpce.amazonaws.com",
    "*.sts.{region}.vpce.amazonaws.com",
    "*.sts-fips.{region}.vpce.amazonaws.com",
    "iam-fips.amazonaws.com.cn",
    "iam.{region}.amazonaws.com.cn",
    "iam.global.api.amazonwebservices.com.cn",
    "iam-fips.api.amazonwebservices.com.cn",
    "sts.{region}.amazonaws.com.cn",
    "sts-fips.{region}.amazonaws.com.cn",
    "sts.{region}.api.amazonwebservices.com.cn",
    "sts-fips.{region}.api.amazonwebservices.com.cn",
    "*.iam.{region}.vpce.amazonaws.com.cn",
    "*.sts.{region}.vpce.amazonaws.com.cn",
)
DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL_RE = re.compile(r"[a-z0-9_-]+")
_LABEL_PATTERN_RE = re.compile(r"[a-z0-9_-]+|\*|\{region\}")
_REGION_LABEL_RE = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")


@dataclass(frozen=True)
class EndpointPattern:
    scheme: str
    host: str  # an IP address, or dot-separated labels / label patterns
    port: int | None  # None: any port

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if scheme != self.scheme or (self.port is not None and port != self.port):
            return False
        if _ip(self.host) is not None:
            return _ip(self.host) == _ip(host)
        want, have = self.host.split("."), host.split(".")
        return len(want) == len(have) and all(map(_label_matches, want, have))


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _label_matches(pattern: str, label: str) -> bool:
    if pattern == "*":
        return bool(_LABEL_RE.fullmatch(label))
    if pattern == "{region}":
        return bool(_REGION_LABEL_RE.fullmatch(label))
    return pattern == label


def _parse_pattern(text: str) -> EndpointPattern:
    raw = text.strip().lower()
    scheme, found, rest = raw.partition("://")
    if not found:
        scheme, rest = "https", raw
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"{text!r}: the scheme must be http:// or https://")
    rest = rest.removesuffix("/")
    if rest.startswith("["):
        host, bracket, port_text = rest[1:].partition("]")
        if not bracket or _ip(host) is None or (port_text and not port_text.startswith(":")):
            raise ValueError(f"{text!r}: not an IPv6 address in brackets")
        port_text = port_text[1:]
    else:
        host, _, port_text = rest.partition(":")
        labels = host.split(".")
        if not all(_LABEL_PATTERN_RE.fullmatch(label) for label in labels):
            raise ValueError(
                f"{text!r}: a host is letters, digits, hyphens and dots; a label may be * or "
                "{region}; no path"
            )
        if labels[-1] in ("*", "{region}"):
            raise ValueError(f"{text!r}: the last label of the host must be a name")
    if port_text == "":
        port = DEFAULT_PORTS[scheme]
    elif port_text == "*":
        port = None
    elif port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535, or *")
    return EndpointPattern(scheme, host, port)


def parse_endpoint_patterns(patterns: Iterable[str]) -> tuple[EndpointPattern, ...]:
    """The parsed AWS_ENDPOINT_ALLOWLIST; ValueError names the first malformed entry."""
    parsed = []
    for text in patterns:
        if not text.strip():
            raise ValueError("an empty entry (two commas in a row?)")
        parsed.append(_parse_pattern(text))
    return tuple(parsed)


@lru_cache(maxsize=8)
def _allowlist(patterns: tuple[str, ...]) -> tuple[EndpointPattern, ...]:
    return parse_endpoint_patterns(p for p in patterns if p.strip())


def _origin(value: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def endpoint_origin(value: str) -> str:
    """scheme://host:port of an endpoint URL, as it is checked against the allowlist."""
    origin = _origin(value)
    if origin is None:
        return value
    scheme, host, port = origin
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def endpoint_allowed(value: str) -> bool:
    """True when AWS_ENDPOINT_ALLOWLIST allows the endpoint URL ``value`` (empty: AWS itself).

    Called by the validator (web form, admin console, `pam import`) and again by the gateway
    before it makes a client, so a configuration saved under an older allowlist is refused."""
    if value == "":
        return True
    origin = _origin(value)
    if origin is None:
        return False
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None:
        return False
    patterns = _allowlist(tuple(settings.AWS_ENDPOINT_ALLOWLIST))
    return any(pattern.matches(*origin) for pattern in patterns)


def validate_password_text(value: str) -> None:
    """AWS console passwords: at most 128 characters of printable ASCII (empty = none)."""
    if not isinstance(value, str):
        raise ValidationError("password must be text", code="invalid_password")
    if len(value) > MAX_PASSWORD_LENGTH:
        raise ValidationError(
            f"password is longer than {MAX_PASSWORD_LENGTH} characters", code="password_too_long"
        )
    if any(not (" " <= c <= "~") for c in value):
        raise ValidationError(
            "password may contain only printable ASCII characters", code="password_not_ascii"
        )


ACCESS_KEY_ID_RE = re.compile(r"^\w{1,128}$", re.ASCII)


def validate_access_key_id(value: str) -> None:
    """An AWS access key id (letters, digits, _), or USE_INSTANCE_ROLE, which matches too."""
    if not isinstance(value, str) or not ACCESS_KEY_ID_RE.fullmatch(value):
        raise ValidationError(
            "not an access key ID: letters and digits only (or USE_INSTANCE_ROLE)",
            code="invalid_access_key_id",
        )


# An IAM user's own access key id, as AWS makes them (AKIA..., 16 to 128 characters of upper-case
# letters and digits); a configuration's USE_INSTANCE_ROLE means nothing for a user.
USER_ACCESS_KEY_ID_RE = re.compile(r"[A-Z0-9]{16,128}", re.ASCII)


def validate_user_access_key_id(value: str) -> None:
    """A PAM User's access key id (not USE_INSTANCE_ROLE: that is a configuration's)."""
    if not isinstance(value, str) or not USER_ACCESS_KEY_ID_RE.fullmatch(value):
        raise ValidationError(
            "not an access key ID: 16 to 128 upper-case letters and digits, as AWS shows it "
            "(e.g. AKIAIOSFODNN7EXAMPLE)",
            code="invalid_access_key_id",
        )


def validate_secret_key_text(value: str) -> None:
    """An AWS secret access key: at most 128 printable ASCII characters."""
    if not isinstance(value, str) or len(value) > 128 or any(not (" " <= c <= "~") for c in value):
        raise ValidationError(
            "a secret key is at most 128 printable ASCII characters", code="invalid_secret_key"
        )


def validate_iam_path_prefix(value: str) -> None:
    """A configuration's target scope: an IAM path such as /rotated/ (empty: any path)."""
    if value and (not isinstance(value, str) or not IAM_PATH_RE.fullmatch(value)):
        raise ValidationError(
            "an IAM path starts and ends with /, e.g. /rotated/ or /teams/ops/ "
            "(printable ASCII, no spaces)",
            code="invalid_path",
        )


def normalize_scope_user_pattern(value: str) -> str:
    """Comma-separated IAM user names or * ? patterns, as "a, b*"; ValidationError if bad."""
    if not isinstance(value, str):
        raise ValidationError("user names must be text", code="invalid_pattern")
    patterns = [p.strip() for p in value.split(",") if p.strip()]
    for pattern in patterns:
        if not SCOPE_PATTERN_RE.fullmatch(pattern):
            raise ValidationError(
                f'"{pattern}" is not an IAM user name or pattern: letters, digits, '
                "+ = . @ _ - and the wildcards * and ?",
                code="invalid_pattern",
            )
    return ", ".join(patterns)


# Gateway names. A gateway's name is also its internal name: the django-q2 cluster that serves
# it (Q_CLUSTER_NAME, the broker's queue key), its minute tick's schedule ("gateway-tick:" +
# name, at most 100 characters in django-q2) and the argument of `pam gateway run NAME`. So a
# new name may be a display name such as Keeper's "Project1 Gateway", but only of characters
# that are safe in all of those: ASCII letters and digits, single spaces and - _ . #, beginning
# and ending with a letter or digit (never "-", which a command line reads as an option), at
# most 87 characters. ASCII only: no look-alike letters, no invisible or bidi characters.
# Names are unique ignoring case (checked where a gateway is created), so "project1 gateway"
# cannot sit beside "Project1 Gateway". Gateways already stored keep their names.
GATEWAY_NAME_MAX_LENGTH = 87
GATEWAY_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.#-]| (?! ))*")


def validate_gateway_name(value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError("a gateway name must not be empty", code="invalid_gateway_name")
    if len(value) > GATEWAY_NAME_MAX_LENGTH:
        raise ValidationError(
            f"a gateway name is at most {GATEWAY_NAME_MAX_LENGTH} characters",
            code="invalid_gateway_name",
        )
    if not GATEWAY_NAME_RE.fullmatch(value) or not value[-1].isalnum():
        raise ValidationError(
            "a gateway name is ASCII letters, digits, single spaces and - _ . #, beginning and "
            'ending with a letter or digit (e.g. "Project1 Gateway")',
            code="invalid_gateway_name",
        )
