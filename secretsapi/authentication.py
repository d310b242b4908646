"""Who is calling the secrets API: the client credential that signed the request.

`authenticate` finds the credential by the access key id of the SigV4 scope, verifies the
signature with its secret (secretsapi/sigv4.py), and refuses a revoked or expired credential, a
source address outside its allowed networks and a credential over its rate limit. Each refusal
raises Refused, which carries what the audit event needs.

The rate limit (SECRETS_API_RATE_LIMIT requests per second per credential) counts in Django's
cache, one counter per credential and second: no database write per request. With the default
local-memory cache each server process counts on its own (so gunicorn's N workers allow up to N
times the limit); point CACHES at a shared cache (Redis, Memcached) for one count across them.
"""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import F

from secretsapi import sigv4
from secretsapi.errors import ACCESS_DENIED, THROTTLING, UNRECOGNIZED_CLIENT, ApiError
from secretsapi.models import ClientCredential
from vault.prepared import PreparedQuery

# last_used_at/last_used_ip are written when the address changes or this long after the last
# write: "last used" to the minute, not a database write on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)
UNKNOWN_KEY_MESSAGE = "The security token included in the request is invalid."
KEY_ID_SHAPE = re.compile(r"[A-Za-z0-9]{1,128}")


class Refused(ApiError):
    """A request that is not let in. `credential` is the one named, when it exists."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int,
        *,
        reason: str,
        credential: ClientCredential | None = None,
        access_key_id: str = "",
    ) -> None:
        super().__init__(code, message, status)
        self.reason = reason
        self.credential = credential
        self.access_key_id = access_key_id


@dataclass(frozen=True)
class Caller:
    credential: ClientCredential
    region: str  # the region of the signature's scope: the secrets' ARNs name it
    ip: str | None


def address_allowed(ip: str | None, networks: list) -> bool:
    """True when no networks are set, or `ip` is in one of them. A network that does not parse
    (the credential services refuse those) allows nothing."""
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    # An IPv4 client seen by an IPv6 socket ("::ffff:10.0.0.1") is still that IPv4 address.
    mapped = getattr(address, "ipv4_mapped", None)
    candidates = [address] if mapped is None else [address, mapped]
    for text in networks:
        try:
            network = ipaddress.ip_network(str(text), strict=False)
        except ValueError:
            continue
        if any(a.version == network.version and a in network for a in candidates):
            return True
    return False


def rate_window() -> int:
    """The second the rate-limit counters count in."""
    return int(time.time())


def rate_limit_allows(credential: ClientCredential) -> bool:
    """Count this request against the credential's SECRETS_API_RATE_LIMIT (per second; 0
    means no limit): a counter per credential and wall-clock second in the cache."""
    limit = settings.SECRETS_API_RATE_LIMIT
    if limit <= 0:
        return True
    key = f"secretsapi:rate:{credential.pk}:{rate_window()}"
    # add() is a no-op when the key exists, so concurrent first requests of a second share it.
    cache.add(key, 0, timeout=5)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr: this request opens the second again
        cache.set(key, 1, timeout=5)
        count = 1
    return count <= limit


def _touch(credential: ClientCredential, ip: str | None, now: datetime) -> None:
    last = credential.last_used_at
    if last is not None and credential.last_used_ip == ip and now - last < LAST_USED_RESOLUTION:
        return
    ClientCredential.objects.filter(pk=credential.pk).update(last_used_at=now, last_used_ip=ip)
    credential.last_used_at, credential.last_used_ip = now, ip


# Every request looks its credential up by key id: compiled once (vault/prepared.py), with the
# application's name (`credential.application_name`), which every audit event of the request
# names.
_CREDENTIAL_BY_KEY = PreparedQuery(
    lambda access_key_id: (
        ClientCredential.objects.annotate(application_name=F("application__name"))
        .filter(access_key_id=access_key_id)
        .order_by()
    ),
    access_key_id=str,
)


def authenticate(
    request: sigv4.ReceivedRequest, ip: str | None, now: datetime | None = None
) -> Caller:
    """The verified caller of `request`, or Refused. One query for the credential (with its
    application's name); a write only to refresh last_used_at once a minute."""
    now = now or datetime.now(UTC)
    try:
        auth = sigv4.parse_authorization(request.headers.get("authorization"))
    except sigv4.SignatureError as exc:
        raise Refused(exc.code, exc.message, exc.status, reason="malformed signature") from None
    # A key id no credential can have (ours are letters and digits) is not looked up: the
    # database would refuse some of them (a NUL) rather than find nothing.
    shaped = KEY_ID_SHAPE.fullmatch(auth.access_key_id)
    found = _CREDENTIAL_BY_KEY.run(access_key_id=auth.access_key_id) if shaped else []
    if not found:
        raise Refused(
            UNRECOGNIZED_CLIENT,
            UNKNOWN_KEY_MESSAGE,
            400,
            reason="unknown access key id",
            access_key_id=auth.access_key_id,
        )
    credential = found[0]
    known = {"credential": credential, "access_key_id": credential.access_key_id}
    try:
        # The cheap checks first, so a request they refuse costs no decryption.
        sigv4.check_request(request, auth, now)
        sigv4.verify_signature(request, auth, credential.get_secret("secret_access_key"))
    except sigv4.SignatureError as exc:
        raise Refused(exc.code, exc.message, exc.status, reason="bad signature", **known) from None
    # Only a caller who proved they hold the secret learns why a known credential is refused.
    if credential.revoked_at is not None:
        raise Refused(
            UNRECOGNIZED_CLIENT,
            "The security token included in the request was revoked.",
            400,
            reason="revoked",
            **known,
        )
    if not credential.is_usable(now):
        raise Refused(
            UNRECOGNIZED_CLIENT,
            "The security token included in the request is expired.",
            400,
            reason="expired",
            **known,
        )
    if not address_allowed(ip, credential.allowed_networks):
        raise Refused(
            ACCESS_DENIED,
            f"Requests from {ip or 'an unknown address'} are not allowed for this access key: "
            "it is limited to its allowed networks.",
            400,
            reason="network not allowed",
            **known,
        )
    if not rate_limit_allows(credential):
        raise Refused(
            THROTTLING,
            f"Rate exceeded: at most {settings.SECRETS_API_RATE_LIMIT} requests per second "
            "for this access key.",
            400,
            reason="rate limited",
            **known,
        )
    _touch(credential, ip, now)
    return Caller(credential=credential, region=auth.region, ip=ip)
