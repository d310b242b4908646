"""Client credentials of applications: who may manage them, creating one (its secret is
returned once), revoking one, and the address clients are given.

The pages (secretsapi/manage_views.py) and `pam app credential` (secretsapi/cli.py) both act
through these services, so both check the same rule and write the same audit events. The rule
is vault/access.py's: an application's administrators manage its credentials (with the
"manage_gateways" policy when policies are enforced); a superuser who is not one of them makes
themselves one in the admin console first, as for sharing folders.
"""

from __future__ import annotations

import ipaddress
import secrets
import string
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.http import Http404, HttpRequest
from django.utils import timezone

from secretsapi.models import ClientCredential
from vault import access
from vault.audit import audit_record
from vault.models import Application

# The URL prefix of the endpoint (secretsapi/urls.py mounts it): with VAULT_BASE_URL in front
# it is the exact value for boto3's endpoint_url and the aws CLI's --endpoint-url.
ENDPOINT_PATH = "/aws/secretsmanager/"
# What clients name in their SigV4 credential scope; any name shaped like an AWS region is
# accepted by the endpoint (secretsapi/sigv4.py), but SDKs need one configured, and examples
# give this one.
EXAMPLE_REGION = "us-east-1"

ACCESS_KEY_PREFIX = "PVAK"  # "PAM Vault Access Key": recognisable in logs and secret scanners
ACCESS_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648 base32
ACCESS_KEY_RANDOM_CHARS = 16  # 80 bits
# Letters and digits only (238 bits): AWS's own secrets also use "/" and "+", which break
# copy-paste into shells and URLs for no gain in strength.
SECRET_ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 40

NAME_MAX = 200
EXPIRES_DAYS_MAX = 3650
NETWORKS_MAX = 50


class CredentialError(ValueError):
    """Bad input for a credential: the message says what is wrong and what to do."""


# --- who may ---------------------------------------------------------------------------------


def credential_for_administrator(user, app_uid: str, access_key_id: str) -> ClientCredential:
    """The credential `access_key_id` of the application `app_uid`, for its administrators
    (vault.access.application_for_administrator's rule); 404 for a key of another application."""
    application = access.application_for_administrator(user, app_uid)
    if not isinstance(access_key_id, str) or "\x00" in access_key_id:
        raise Http404("No such credential.")
    credential = ClientCredential.objects.filter(
        application=application, access_key_id=access_key_id
    ).first()
    if credential is None:
        raise Http404("No such credential.")
    return credential


def _check_actor(actor, actor_kind: str, application: Application) -> None:
    # The CLI is the operator on the vault host (actor_kind "cli"), who holds the database and
    # the key ring anyway; a person acts only on applications they manage.
    if actor_kind != "cli":
        access.require_application_manager(actor, application, "its client credentials")


# --- input -----------------------------------------------------------------------------------


def parse_networks(lines) -> list[str]:
    """CIDR strings from `lines` (an iterable of text, or text with one per line), normalised
    (a bare address is its /32 or /128); blank lines are skipped. Raises CredentialError
    naming the first bad entry."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    networks: list[str] = []
    for raw in lines:
        text = str(raw).strip()
        if not text:
            continue
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise CredentialError(
                f"“{text[:60]}” is not a network: give an address or a CIDR block such as "
                "10.0.0.0/8 or 2001:db8::/32, one per line."
            ) from None
        try:
            ipaddress.ip_network(text, strict=True)
        except ValueError:
            raise CredentialError(
                f"“{text}” has bits set after the prefix length: did you mean {network}?"
            ) from None
        if str(network) not in networks:
            networks.append(str(network))
    if len(networks) > NETWORKS_MAX:
        raise CredentialError(
            f"{len(networks)} allowed networks is too many (at most {NETWORKS_MAX}): "
            "give wider blocks."
        )
    return networks


def parse_expires_days(value) -> int | None:
    """Days until the credential expires (None: never). Raises CredentialError."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        days = int(str(value).strip())
    except ValueError:
        raise CredentialError(
            f"“{str(value)[:30]}” is not a number of days: give a whole number from 1 to "
            f"{EXPIRES_DAYS_MAX}, or nothing for a credential that does not expire."
        ) from None
    if not 1 <= days <= EXPIRES_DAYS_MAX:
        raise CredentialError(
            f"Expiry in {days} days is out of range: give 1 to {EXPIRES_DAYS_MAX} days, or "
            "nothing for a credential that does not expire."
        )
    return days


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if len(name) > NAME_MAX:
        raise CredentialError(f"The name is {len(name)} characters long: at most {NAME_MAX}.")
    if any(not ch.isprintable() for ch in name):
        raise CredentialError("The name may not hold control or invisible characters.")
    return name


def _new_access_key_id() -> str:
    while True:
        key = ACCESS_KEY_PREFIX + "".join(
            secrets.choice(ACCESS_KEY_ALPHABET) for _ in range(ACCESS_KEY_RANDOM_CHARS)
        )
        if not ClientCredential.objects.filter(access_key_id=key).exists():
            return key


def endpoint_url() -> str:
    """The exact value for boto3's endpoint_url and the aws CLI's --endpoint-url."""
    return settings.VAULT_BASE_URL.rstrip("/") + ENDPOINT_PATH


# --- services --------------------------------------------------------------------------------


@transaction.atomic
def credential_create(
    *,
    application: Application,
    name: str = "",
    expires_days: int | str | None = None,
    allowed_networks=(),
    actor,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> tuple[ClientCredential, str]:
    """A new client credential of `application` and its secret access key, which is returned
    only here: it is stored encrypted and never shown again. Raises PermissionDenied for an
    actor who does not administer the application, CredentialError for bad input (nothing is
    written then)."""
    _check_actor(actor, actor_kind, application)
    name = _clean_name(name)
    days = parse_expires_days(expires_days)
    networks = parse_networks(allowed_networks)
    now = timezone.now()
    secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    credential = ClientCredential(
        application=application,
        name=name,
        access_key_id=_new_access_key_id(),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        created_at=now,
        expires_at=now + timedelta(days=days) if days else None,
        allowed_networks=networks,
    )
    credential.set_secret("secret_access_key", secret)
    credential.save()
    audit_record(
        "credential.created",
        actor=actor,
        actor_kind=actor_kind,
        obj=credential,
        request=request,
        details={
            "application": application.name,
            "access_key_id": credential.access_key_id,
            "name": name,
            "expires_at": credential.expires_at.isoformat() if credential.expires_at else None,
            "allowed_networks": networks,
        },
    )
    return credential, secret


@transaction.atomic
def credential_revoke(
    *,
    credential: ClientCredential,
    actor,
    actor_kind: str = "user",
    request: HttpRequest | None = None,
) -> bool:
    """Revoke `credential` now: the endpoint refuses it from the next request. Returns False
    (and changes nothing) when it was already revoked, so pressing twice is harmless; the
    caller says so with already_revoked_message."""
    _check_actor(actor, actor_kind, credential.application)
    # The row lock makes two revokes at once one revoke and one "already revoked".
    locked = ClientCredential.objects.select_for_update().get(pk=credential.pk)
    if locked.revoked_at is not None:
        credential.revoked_at, credential.revoked_by_id = locked.revoked_at, locked.revoked_by_id
        return False
    locked.revoked_at = timezone.now()
    locked.revoked_by = actor if getattr(actor, "is_authenticated", False) else None
    locked.save(update_fields=["revoked_at", "revoked_by"])
    credential.revoked_at, credential.revoked_by = locked.revoked_at, locked.revoked_by
    audit_record(
        "credential.revoked",
        actor=actor,
        actor_kind=actor_kind,
        obj=credential,
        request=request,
        details={
            "application": credential.application.name,
            "access_key_id": credential.access_key_id,
            "name": credential.name,
        },
    )
    return True


def already_revoked_message(credential: ClientCredential) -> str:
    when = timezone.localtime(credential.revoked_at).strftime("%Y-%m-%d %H:%M:%S %Z")
    by = f" by {credential.revoked_by.username}" if credential.revoked_by else ""
    return f"The credential {credential.access_key_id} was already revoked on {when}{by}."
