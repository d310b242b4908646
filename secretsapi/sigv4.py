"""AWS Signature Version 4 verification for the secrets API: pure functions, no Django.

The canonical request is rebuilt from the request *as received* (method, raw path, raw query
string, the headers the client says it signed, the body's SHA-256), so any change to one of them
after signing changes the string to sign. Unlike AWS's own services, the path is not normalised
(dot segments, double slashes): the endpoint has one path, already normal, and a strict
comparison keeps "any change to the path is refused" literally true. The query string is taken
as sent, pairs sorted, as botocore signs a URL's query; the endpoint takes no query anyway.

Refusals raise SignatureError with the AWS error code and HTTP status an SDK expects; the
caller turns it into AWS's JSON error shape.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "secretsmanager"
TERMINATOR = "aws4_request"
# A signature is good for this long either side of the server's clock, as AWS's services allow.
MAX_SKEW = timedelta(minutes=5)
# Headers that must be among the signed ones: without host a signature could be replayed to
# another server, without x-amz-date the skew window means nothing.
REQUIRED_SIGNED = ("host", "x-amz-date")
# Headers that must be signed when they are sent (botocore signs both): the operation and how
# the body is read. Unsigned, a captured request could be replayed within the skew window as
# another operation (DescribeSecret's body sent as GetSecretValue).
SIGNED_WHEN_SENT = ("x-amz-target", "content-type")
# What an AWS region looks like (us-east-1, eu-west-2, us-gov-west-1, cn-north-1): the scope's
# region ends up in the secrets' ARNs, so not any string is taken.
REGION_RE = re.compile(r"[a-z]{2}(-[a-z0-9]+)+-\d+")
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
AMZ_DATE_RE = re.compile(r"\d{8}T\d{6}Z")
HEX_SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")
# The header that carries a payload hash; when sent it must be the body's.
CONTENT_SHA256 = "x-amz-content-sha256"

MISSING_TOKEN = "MissingAuthenticationTokenException"
INCOMPLETE = "IncompleteSignatureException"
INVALID = "InvalidSignatureException"
MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


class SignatureError(Exception):
    """A request whose signature cannot be accepted. `code` is AWS's error code."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _incomplete(message: str) -> SignatureError:
    return SignatureError(INCOMPLETE, message, 400)


def _invalid(message: str) -> SignatureError:
    return SignatureError(INVALID, message, 403)


@dataclass(frozen=True)
class ReceivedRequest:
    """What the server received. `path` and `query` are as on the wire (percent-encoded);
    `headers` maps lower-case names to values (repeated headers joined with commas)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class Authorization:
    """The parsed `Authorization` header."""

    access_key_id: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...] = field(default_factory=tuple)
    signature: str = ""

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


def parse_authorization(header: str | None) -> Authorization:
    """Parse `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
    SignedHeaders=a;b, Signature=hex`. Raises SignatureError."""
    if not header:
        raise SignatureError(MISSING_TOKEN, "Missing Authentication Token", 400)
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _incomplete(f"Unsupported signing algorithm; use {ALGORITHM}.")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep or name in parts:
            raise _incomplete(f"Authorization header is malformed near '{item.strip()[:40]}'.")
        parts[name] = value.strip()
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if not parts.get(n)]
    if missing or len(parts) != 3:
        raise _incomplete(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
            "parameters, and nothing else."
        )
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or not all(scope) or scope[4] != TERMINATOR:
        raise _incomplete(
            "Credential must have the form ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request."
        )
    signed = tuple(parts["SignedHeaders"].split(";"))
    if any(not name or name != name.lower().strip() for name in signed) or len(set(signed)) != len(
        signed
    ):
        raise _incomplete("SignedHeaders must be distinct lower-case header names.")
    signature = parts["Signature"]
    if not HEX_SIGNATURE_RE.fullmatch(signature):
        raise _incomplete("Signature must be 64 lower-case hexadecimal digits.")
    access_key_id, date, region, service, _ = scope
    return Authorization(access_key_id, date, region, service, signed, signature)


def parse_amz_date(value: str | None) -> datetime:
    if not value or not AMZ_DATE_RE.fullmatch(value):
        raise _incomplete("The X-Amz-Date header is missing or not of the form YYYYMMDDTHHMMSSZ.")
    try:
        return datetime.strptime(value, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise _incomplete(f"X-Amz-Date {value} is not a valid date.") from None


def check_request(request: ReceivedRequest, auth: Authorization, now: datetime) -> None:
    """Everything but the signature itself: the scope's service, region and date, the signed
    headers required and present, the clock-skew window, the payload hash header. Cheap, and
    needs no secret, so it runs before the credential's secret is decrypted."""
    if auth.service != SERVICE:
        raise _invalid(f"Credential should be scoped to correct service: '{SERVICE}'.")
    if len(auth.region) > 40 or not REGION_RE.fullmatch(auth.region):
        raise _invalid(
            f"Credential should be scoped to a valid region, not '{auth.region[:40]}' "
            "(a region such as us-east-1)."
        )
    for name in REQUIRED_SIGNED:
        if name not in auth.signed_headers:
            raise _invalid(f"The '{name}' header must be signed (SignedHeaders lacks it).")
    for name in SIGNED_WHEN_SENT:
        if name in request.headers and name not in auth.signed_headers:
            raise _invalid(f"The '{name}' header is sent, so it must be signed.")
    for name in auth.signed_headers:
        if name not in request.headers:
            raise _invalid(f"The signed header '{name}' is not in the request.")
    amz_date = request.headers["x-amz-date"]
    signed_at = parse_amz_date(amz_date)
    if auth.date != amz_date[:8]:
        raise _invalid(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{auth.date}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    if signed_at < now - MAX_SKEW:
        raise _invalid(
            f"Signature expired: {amz_date} is now earlier than "
            f"{(now - MAX_SKEW).strftime(AMZ_DATE_FORMAT)} "
            f"({now.strftime(AMZ_DATE_FORMAT)} - 5 min.)"
        )
    if signed_at > now + MAX_SKEW:
        raise _invalid(
            f"Signature not yet current: {amz_date} is still later than "
            f"{(now + MAX_SKEW).strftime(AMZ_DATE_FORMAT)} "
            f"({now.strftime(AMZ_DATE_FORMAT)} + 5 min.)"
        )
    sent_hash = request.headers.get(CONTENT_SHA256)
    if sent_hash is not None and not hmac.compare_digest(
        sent_hash.strip().encode(), payload_hash(request.body).encode()
    ):
        raise _invalid("The provided 'x-amz-content-sha256' header does not match the body.")


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_path(path: str) -> str:
    # As botocore and AWS's other SDKs do for every service but S3: the path as sent is
    # URI-encoded once more ("/a%20b" -> "/a%2520b").
    return quote(path or "/", safe="/~")


def canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = [pair.partition("=") for pair in query.split("&")]
    return "&".join(f"{key}={value}" for key, value in sorted((k, v) for k, _, v in pairs))


def canonical_header_value(value: str) -> str:
    return " ".join(value.split())


def canonical_request(request: ReceivedRequest, signed_headers: tuple[str, ...]) -> str:
    headers = "".join(
        f"{name}:{canonical_header_value(request.headers[name])}\n" for name in signed_headers
    )
    return "\n".join(
        [
            request.method.upper(),
            canonical_path(request.path),
            canonical_query(request.query),
            headers,
            ";".join(signed_headers),
            payload_hash(request.body),
        ]
    )


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def expected_signature(request: ReceivedRequest, auth: Authorization, secret: str) -> str:
    canonical = canonical_request(request, auth.signed_headers)
    to_sign = string_to_sign(request.headers["x-amz-date"], auth.scope, canonical)
    key = signing_key(secret, auth.date, auth.region, auth.service)
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_signature(request: ReceivedRequest, auth: Authorization, secret: str) -> None:
    """Raise SignatureError unless `auth.signature` is `request`'s signature by `secret`.
    Only the signature: check_request must have passed first (verify does both)."""
    expected = expected_signature(request, auth, secret)
    if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
        raise _invalid(MISMATCH_MESSAGE)


def verify(
    request: ReceivedRequest, auth: Authorization, secret: str, now: datetime | None = None
) -> None:
    """Raise SignatureError unless `auth` is a valid signature of `request` by `secret`,
    made within MAX_SKEW of `now` (default: the current time)."""
    check_request(request, auth, now or datetime.now(UTC))
    verify_signature(request, auth, secret)
