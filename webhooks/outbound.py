"""Which URLs a webhook may post to: the AWS endpoint allow-list's rules (vault/validators.py),
with their own setting, WEBHOOK_URL_ALLOWLIST.

A webhook URL is an address the vault's workers will call, so whoever may add one could
otherwise make the gateways talk to internal services (SSRF). A URL is allowed when it matches
a WEBHOOK_URL_ALLOWLIST pattern (`[http://|https://]host[:port]`, `*` and `:*` as for
AWS_ENDPOINT_ALLOWLIST), or when it is https:// and every address its host resolves to is a
public one (no loopback, private, link-local, multicast or reserved address). Checked when a
webhook is saved and again before each delivery (DNS may have changed since).
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from vault.validators import (
    DEFAULT_PORTS,
    EndpointPattern,
    endpoint_origin,
    parse_endpoint_patterns,
)

MAX_URL_LENGTH = 500


@lru_cache(maxsize=8)
def _allowlist(patterns: tuple[str, ...]) -> tuple[EndpointPattern, ...]:
    return parse_endpoint_patterns(p for p in patterns if p.strip())


# IPv6 prefixes that carry an IPv4 address inside (NAT64, 6to4): Python counts them global,
# but a gateway on such a network reaches the IPv4 address they wrap, private or not.
_WRAPPING_IPV4 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("2002::/16"))


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped
    if ip.version == 6 and any(ip in network for network in _WRAPPING_IPV4):
        return False
    return ip.is_global and not ip.is_multicast


def _addresses(host: str, port: int) -> list[str]:
    try:
        return [ipaddress.ip_address(host).compressed]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({info[4][0] for info in infos})


def webhook_url_problem(value: str) -> str | None:
    """Why `value` may not be a webhook URL, or None when it may."""
    shape = "a webhook URL is an http:// or https:// URL with a host"
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        return shape
    if len(value) > MAX_URL_LENGTH:
        return f"a webhook URL is at most {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(value)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
    except ValueError:
        return shape
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return shape
    if parts.username is not None or parts.password is not None:
        return "a webhook URL must not contain a user name or password"
    host = parts.hostname
    patterns = _allowlist(tuple(settings.WEBHOOK_URL_ALLOWLIST))
    if any(p.matches(parts.scheme, host, port) for p in patterns):
        return None
    refused = (
        f"{endpoint_origin(value)} is not an allowed webhook address: use a public https:// "
        "address, or ask the vault's operator to add this host to WEBHOOK_URL_ALLOWLIST"
    )
    if parts.scheme != "https":
        return refused
    addresses = _addresses(host, port)
    if not addresses:
        return f"the host of {endpoint_origin(value)} does not resolve to an address"
    if not all(_public(a) for a in addresses):
        return refused
    return None


def validate_webhook_url(value: str) -> None:
    problem = webhook_url_problem(value)
    if problem:
        raise ValidationError(problem, code="webhook_url_not_allowed")
