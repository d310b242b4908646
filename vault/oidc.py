"""Single sign-on with OpenID Connect (mozilla-django-oidc), beside local accounts: the
authentication backend (who an identity-provider person is here, their groups), the sign-in
views under /oidc/, the provider's own second factor, and local passwords turned off.

Everything here is inert while OIDC_RP_CLIENT_ID is unset: the views answer 404, the backend
authenticates nobody, the sign-in page shows no button. docs/sso.md describes the settings.

Who is who: a person is matched by the email address the provider gives (case-insensitive),
the address a pre-provisioned account was created with. The provider's subject (`sub`) is not
stored on the account (that would need a column, and so a vault migration); each sign-in's
audit event records it. Accounts created on first sign-in get a username from the
provider's `preferred_username` or the address's local part, made unique with a number.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from vault.audit import audit_record
from vault.security import SECOND_FACTOR_PENDING, mark_password_confirmed, url_with_next

LOGGER = logging.getLogger(__name__)

# Session key: the pk (as text) of the person whose provider sign-in carried its own second
# factor (an `amr` value in OIDC_MFA_AMR_VALUES). Counts for that person only, this session.
PROVIDER_SECOND_FACTOR = "vault_oidc_second_factor"
# Request attributes the backend leaves for the callback view (one request, no session).
_AMR_ATTR = "_vault_oidc_amr"
_SUBJECT_ATTR = "_vault_oidc_subject"
_REFUSAL_ATTR = "_vault_oidc_refusal"

# Settings that may come from the provider's discovery document instead, and its key for each.
DISCOVERED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
    "OIDC_OP_ISSUER": "issuer",
}
DISCOVERY_CACHE_SECONDS = 3600
_discovery_lock = threading.Lock()
_discovery_cache: dict[str, tuple[float, dict]] = {}

USERNAME_BAD = re.compile(r"[^\w.@+-]")


def sso_enabled() -> bool:
    return bool(getattr(settings, "OIDC_RP_CLIENT_ID", ""))


def provider_name() -> str:
    return getattr(settings, "OIDC_PROVIDER_NAME", "") or "single sign-on"


# --- Settings, explicit or discovered ------------------------------------------------------------


def discovery_document(url: str) -> dict:
    """The provider's /.well-known/openid-configuration, fetched once an hour at most (a failed
    fetch is not remembered: the next sign-in tries again)."""
    now = time.monotonic()
    with _discovery_lock:
        cached = _discovery_cache.get(url)
        if cached and now - cached[0] < DISCOVERY_CACHE_SECONDS:
            return cached[1]
    response = requests.get(
        url,
        timeout=settings.OIDC_TIMEOUT,
        verify=settings.OIDC_VERIFY_SSL,
        proxies=getattr(settings, "OIDC_PROXY", None),
    )
    response.raise_for_status()
    document = response.json()
    if not isinstance(document, dict):
        raise ImproperlyConfigured(f"OIDC_OP_DISCOVERY_URL {url} did not answer a JSON object")
    with _discovery_lock:
        _discovery_cache[url] = (now, document)
    return document


def forget_discovery() -> None:
    with _discovery_lock:
        _discovery_cache.clear()


def oidc_setting(attr: str, *default):
    """mozilla-django-oidc's get_settings, with the provider's endpoints taken from its
    discovery document (OIDC_OP_DISCOVERY_URL) when they are not set one by one."""
    if attr in DISCOVERED and not getattr(settings, attr, None):
        url = getattr(settings, "OIDC_OP_DISCOVERY_URL", "")
        if url:
            value = discovery_document(url).get(DISCOVERED[attr])
            if value:
                return value
        if default:
            return default[0]
        raise ImproperlyConfigured(f"{attr} is not set and OIDC_OP_DISCOVERY_URL does not name it")
    return import_from_settings(attr, *default)


# --- The provider's second factor ----------------------------------------------------------------


def amr_has_second_factor(amr) -> bool:
    """Whether an ID token's `amr` (RFC 8176 method names) says a second factor was used."""
    if isinstance(amr, str):
        amr = [amr]
    if not isinstance(amr, list | tuple):
        return False
    wanted = {value.lower() for value in settings.OIDC_MFA_AMR_VALUES}
    return any(isinstance(value, str) and value.lower() in wanted for value in amr)


class ProviderSecondFactor:
    """Stands for the provider's second factor as a django-otp device on `user.otp_device`, so
    that is_verified() (the admin console, the two-factor gate) counts it. Never stored:
    user_id is None, so django_otp.login() never persists it."""

    user_id = None
    confirmed = True
    persistent_id = "vault.oidc/provider"

    def __init__(self) -> None:
        self.name = f"Second factor at {provider_name()}"

    def __str__(self) -> str:
        return self.name


class ProviderSecondFactorMiddleware:
    """After django-otp's OTPMiddleware: a session whose provider sign-in carried a second
    factor is verified, as if a code had been entered here."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        marked = request.session.get(PROVIDER_SECOND_FACTOR) if sso_enabled() else None
        if marked:
            from django.utils.functional import SimpleLazyObject

            user = request.user  # django-otp's lazy user: still not loaded here

            def verified():
                if (
                    user.is_authenticated
                    and str(user.pk) == marked
                    and getattr(user, "otp_device", None) is None
                ):
                    user.otp_device = ProviderSecondFactor()
                return user

            request.user = SimpleLazyObject(verified)
        return self.get_response(request)


# --- The authentication backend ------------------------------------------------------------------


class VaultOIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend: the ID token checked (signature, nonce, audience,
    issuer), the person matched by email, created on first sign-in when OIDC_CREATE_USER
    allows, the mapped groups set from the groups claim on every sign-in."""

    def __init__(self, *args, **kwargs) -> None:
        # No network and no settings checks here: Django builds every backend for every
        # sign-in (local ones too) and for every request of a session signed in through it.
        self.UserModel = get_user_model()

    @staticmethod
    def get_settings(attr, *args):
        return oidc_setting(attr, *args)

    def authenticate(self, request, **kwargs):
        # Only mozilla-django-oidc's callback passes a nonce: a local sign-in (username and
        # password) never reaches the provider, whatever its address holds.
        if request is None or "nonce" not in kwargs or not sso_enabled():
            return None
        try:
            self._load_provider_settings()
            return super().authenticate(request, **kwargs)
        except (
            requests.RequestException,
            ImproperlyConfigured,
            SuspiciousOperation,
            jwt.PyJWTError,
            KeyError,
            ValueError,
        ) as exc:
            # The provider unreachable, a refused code, a token that does not verify: a failed
            # sign-in with a message, never a server error.
            LOGGER.warning("OpenID Connect sign-in failed: %s", exc)
            refuse(request, f"The answer from {provider_name()} could not be used.")
            return None

    def _load_provider_settings(self) -> None:
        self.OIDC_OP_TOKEN_ENDPOINT = self.get_settings("OIDC_OP_TOKEN_ENDPOINT")
        self.OIDC_OP_USER_ENDPOINT = self.get_settings("OIDC_OP_USER_ENDPOINT")
        self.OIDC_OP_JWKS_ENDPOINT = self.get_settings("OIDC_OP_JWKS_ENDPOINT", None)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = getattr(settings, "OIDC_RP_IDP_SIGN_KEY", None)
        if self.OIDC_RP_SIGN_ALGO.startswith(("RS", "ES")) and not (
            self.OIDC_RP_IDP_SIGN_KEY or self.OIDC_OP_JWKS_ENDPOINT
        ):
            raise ImproperlyConfigured(
                f"{self.OIDC_RP_SIGN_ALGO} needs OIDC_OP_JWKS_ENDPOINT (or the discovery URL)"
            )

    def retrieve_matching_jwk(self, token):
        # A token without a `kid` is allowed when the provider publishes one key (OpenID
        # Connect Core 10.1); mozilla-django-oidc would fail on the missing header.
        if "kid" in jwt.get_unverified_header(token):
            return super().retrieve_matching_jwk(token)
        answer = requests.get(
            self.OIDC_OP_JWKS_ENDPOINT,
            verify=settings.OIDC_VERIFY_SSL,
            timeout=settings.OIDC_TIMEOUT,
            proxies=getattr(settings, "OIDC_PROXY", None),
        )
        answer.raise_for_status()
        keys = answer.json().get("keys") or []
        if len(keys) != 1:
            raise SuspiciousOperation("The ID token names no key (kid) and the provider has many.")
        return jwt.PyJWK(keys[0])

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        # mozilla-django-oidc checks neither the audience nor the issuer.
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("The ID token is for another client (aud).")
        issuer = self.get_settings("OIDC_OP_ISSUER", "")
        if issuer and payload.get("iss") != issuer:
            raise SuspiciousOperation("The ID token comes from another issuer (iss).")
        return payload

    def get_or_create_user(self, access_token, id_token, payload):
        # The ID token's own claims: `amr` belongs to it (not to userinfo).
        self.request.__dict__[_AMR_ATTR] = payload.get("amr")
        self.request.__dict__[_SUBJECT_ATTR] = payload.get("sub")
        claims = self.get_userinfo(access_token, id_token, payload)
        if not self.verify_claims(claims):
            return None
        users = list(self.filter_users_by_claims(claims)[:2])
        if len(users) > 1:
            refuse(
                self.request,
                "More than one account here has this email address; ask an administrator.",
            )
            return None
        if users:
            return self.update_user(users[0], claims)
        if not settings.OIDC_CREATE_USER:
            refuse(
                self.request,
                "There is no account here for this person; ask an administrator to create one "
                f"with the email address {claims['email'].strip()}.",
            )
            return None
        return self.create_user(claims)

    def get_userinfo(self, access_token, id_token, payload):
        claims = super().get_userinfo(access_token, id_token, payload)
        groups_claim = settings.OIDC_GROUPS_CLAIM
        if groups_claim and groups_claim not in claims and groups_claim in payload:
            claims[groups_claim] = payload[groups_claim]
        if claims.get("sub") != payload.get("sub"):
            # OpenID Connect Core 5.3.2: userinfo for another subject must not be used.
            raise SuspiciousOperation("The userinfo answer is for another subject.")
        return claims

    def verify_claims(self, claims) -> bool:
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            refuse(self.request, f"{provider_name()} did not give an email address.")
            return False
        # People are matched by email: one the provider does not vouch for (false, or left
        # out) could name someone else's account here.
        if claims.get("email_verified") is not True:
            refuse(self.request, f"{provider_name()} has not verified the email address.")
            return False
        return True

    def get_user(self, user_id):
        """The session's person, on every request: a deactivated account is signed out at
        once, as ModelBackend does for local sign-ins."""
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(email__iexact=claims["email"].strip())

    def create_user(self, claims):
        with transaction.atomic():
            user = self.UserModel.objects.create_user(
                self.get_username(claims),
                email=claims["email"].strip(),
                first_name=str(claims.get("given_name") or "")[:150],
                last_name=str(claims.get("family_name") or "")[:150],
            )  # no password: an unusable one, so only the provider signs this person in
            apply_group_mapping(user, claims)
            audit_record(
                "person.created",
                actor_kind="system",
                request=self.request,
                details={"username": user.username, "by": f"first sign-in ({provider_name()})"},
            )
        return user

    def update_user(self, user, claims):
        if not user.is_active:
            refuse(self.request, "This account is deactivated.")
            return None
        if (user.is_superuser or user.is_staff) and not settings.OIDC_SUPERUSERS:
            # An administrator's account is reached only by its own password and code, unless
            # the operator trusts the provider with it (OIDC_SUPERUSERS).
            refuse(
                self.request,
                "This account is an administrator's: sign in with its password (the vault's "
                "operator can allow single sign-on for administrators with OIDC_SUPERUSERS).",
            )
            return None
        with transaction.atomic():
            apply_group_mapping(user, claims)
        return user

    def get_username(self, claims) -> str:
        """A readable, unused username: preferred_username, else the address's local part."""
        preferred = claims.get("preferred_username")
        base = preferred if isinstance(preferred, str) and preferred.strip() else ""
        base = base or claims["email"].split("@", 1)[0]
        base = USERNAME_BAD.sub("-", base.strip())[:140] or "person"
        candidate, number = base, 1
        while self.UserModel.objects.filter(username__iexact=candidate).exists():
            number += 1
            candidate = f"{base}-{number}"
        return candidate


def refuse(request, reason: str) -> None:
    """Remember why this sign-in was refused, for the callback's message (first reason wins)."""
    if request is not None and _REFUSAL_ATTR not in request.__dict__:
        request.__dict__[_REFUSAL_ATTR] = reason


def apply_group_mapping(user, claims: dict) -> None:
    """Set the person's membership of every Django group named in OIDC_GROUP_MAP from the
    groups claim: in it when one of its provider groups is in the claim, out of it otherwise.
    Groups the mapping does not name are managed here and left alone. Never staff or
    superuser: those stay local decisions."""
    mapping: dict[str, str] = settings.OIDC_GROUP_MAP
    if not mapping:
        return
    claimed = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(claimed, str):
        claimed = [claimed]
    claimed = {value for value in claimed if isinstance(value, str)}
    wanted = {django for idp, django in mapping.items() if idp in claimed}
    for name in set(mapping.values()):
        group, _ = Group.objects.get_or_create(name=name)
        if name in wanted:
            user.groups.add(group)
        else:
            user.groups.remove(group)


# --- Local passwords -----------------------------------------------------------------------------


class LocalPasswordBackend(ModelBackend):
    """Django's username-and-password backend; with LOCAL_PASSWORDS off, only superusers (the
    break-glass accounts) may sign in with a password."""

    def user_can_authenticate(self, user) -> bool:
        if not super().user_can_authenticate(user):
            return False
        return local_password_allowed(user)


def local_password_allowed(user) -> bool:
    return bool(settings.LOCAL_PASSWORDS or getattr(user, "is_superuser", False))


# --- Views ---------------------------------------------------------------------------------------


class SignInView(OIDCAuthenticationRequestView):
    """GET /oidc/authenticate/?next=...: off to the provider."""

    def __init__(self, *args, **kwargs) -> None:
        # The endpoint is resolved per request (discovery may be needed), not at start.
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    @staticmethod
    def get_settings(attr, *args):
        return oidc_setting(attr, *args)

    def dispatch(self, request, *args, **kwargs):
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        try:
            self.OIDC_OP_AUTH_ENDPOINT = self.get_settings("OIDC_OP_AUTHORIZATION_ENDPOINT")
        except (requests.RequestException, ImproperlyConfigured, ValueError) as exc:
            LOGGER.warning("OpenID Connect provider not reachable: %s", exc)
            messages.error(request, f"{provider_name()} cannot be reached; try again later.")
            return redirect("login")
        return super().get(request)

    def get_extra_params(self, request):
        params = dict(super().get_extra_params(request))
        if request.GET.get("confirm") and request.user.is_authenticated:
            # Confirming who you are (before a reveal): the provider must ask again, not
            # answer from its own session.
            params["prompt"] = "login"
            params["max_age"] = "0"
        return params


class CallbackView(OIDCAuthenticationCallbackView):
    """GET /oidc/callback/: the provider's answer. Signs the person in (or confirms them),
    records it, and applies the second-factor rule (docs/sso.md)."""

    @staticmethod
    def get_settings(attr, *args):
        return oidc_setting(attr, *args)

    def dispatch(self, request, *args, **kwargs):
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        return super().dispatch(request, *args, **kwargs)

    @property
    def failure_url(self):
        return url_with_next("login", self.request.session.get("oidc_login_next") or "/")

    def login_failure(self):
        request = self.request
        reason = request.__dict__.get(_REFUSAL_ATTR)
        if request.GET.get("error"):
            reason = f"{provider_name()} did not sign you in ({request.GET['error'][:100]})."
        text = f"Sign-in with {provider_name()} failed."
        messages.error(request, f"{text} {reason}" if reason else text)
        audit_record(
            "login.sso_refused",
            actor_kind="system",
            request=request,
            details={
                "provider": provider_name(),
                "subject": str(request.__dict__.get(_SUBJECT_ATTR) or "")[:255],
                "reason": (reason or "")[:300],
            },
        )
        return redirect(self.failure_url)

    def login_success(self):
        request = self.request
        was_signed_in = request.user.is_authenticated and request.user == self.user
        response = super().login_success()  # login() (a new session) unless already this user
        amr = request.__dict__.get(_AMR_ATTR)
        provider_factor = amr_has_second_factor(amr)
        mark_password_confirmed(request)  # the provider confirmed who this is, just now
        if provider_factor:
            request.session[PROVIDER_SECOND_FACTOR] = str(self.user.pk)
            request.session[SECOND_FACTOR_PENDING] = False
        elif not was_signed_in:
            request.session.pop(PROVIDER_SECOND_FACTOR, None)
        audit_record(
            "login.sso_confirmed" if was_signed_in else "login.sso",
            actor=self.user,
            request=request,
            details={
                "provider": provider_name(),
                "subject": str(request.__dict__.get(_SUBJECT_ATTR) or "")[:255],
                "amr": [str(v)[:20] for v in amr] if isinstance(amr, list) else [],
                "second_factor": "at the provider" if provider_factor else "",
            },
        )
        if request.session.get(SECOND_FACTOR_PENDING):
            # As after a password: the session is not verified until a code is entered here.
            return redirect(url_with_next("twofactor_verify", response.url))
        if not was_signed_in:
            messages.success(request, f"Logged in as {self.user.username}.")
        return response


urlpatterns = [
    path("callback/", CallbackView.as_view(), name="oidc_authentication_callback"),
    path("authenticate/", SignInView.as_view(), name="oidc_authentication_init"),
]


def sso_context(request: HttpRequest) -> dict:
    """Template context: `sso` (the provider's name) when single sign-on is on."""
    if not sso_enabled():
        return {"sso": None}
    return {"sso": {"name": provider_name(), "local_passwords": settings.LOCAL_PASSWORDS}}
