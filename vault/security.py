"""Sign-in protections shared by every page: the two-factor gate, "confirm your password"
before sensitive actions, the per-user reveal limit, the sign-in and confirm-password forms, and
the sign-in lockout page.

Imported by VaultConfig.ready(), which connects the signal receivers and registers the checks.
docs/security.md describes what an operator configures.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in
from django.core import checks
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

# Session keys. The password time is set by every sign-in and by the confirm page.
PASSWORD_CONFIRMED_AT = "vault_password_confirmed_at"
# True from the password step until a code is entered, for users who have a device.
SECOND_FACTOR_PENDING = "vault_second_factor_pending"
# When the session signed in (Unix seconds): the start of its absolute lifetime.
SIGNED_IN_AT = "vault_signed_in_at"

REVEAL_ACTION = "password.revealed"
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smh])\s*$")
RATE_UNITS = {"s": 1, "m": 60, "h": 3600}

# Pages an unverified session may open: to finish signing in, or to leave.
VERIFY_EXEMPT = frozenset({"login", "logout", "twofactor_verify"})
ENROL_EXEMPT = frozenset({"login", "logout", "twofactor_setup", "account_confirm"})


def wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def safe_next(request: HttpRequest, candidate: str | None, default: str = "home") -> str:
    """`candidate` if it is a path on this site (so never another site, and never something
    redirect() would take for a view name), else the URL of `default`."""
    if (
        candidate
        and candidate.startswith("/")
        and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return candidate
    return reverse(default)


def url_with_next(name: str, next_url: str) -> str:
    return f"{reverse(name)}?{urlencode({REDIRECT_FIELD_NAME: next_url})}"


# --- Password confirmation ---------------------------------------------------------------------


def mark_password_confirmed(request: HttpRequest) -> None:
    request.session[PASSWORD_CONFIRMED_AT] = int(time.time())


def password_is_recent(request: HttpRequest) -> bool:
    confirmed = request.session.get(PASSWORD_CONFIRMED_AT)
    if not isinstance(confirmed, int):
        return False
    return 0 <= time.time() - confirmed <= settings.VAULT_REAUTH_MINUTES * 60


def recent_password_required(return_to: str | None = None) -> Callable:
    """Decorator: the view runs only within VAULT_REAUTH_MINUTES of the last password entry;
    otherwise the person is sent to the confirm page, and a script (Accept: JSON) gets a 401
    naming it. After confirming, the person comes back to `return_to` (a URL name, given the
    view's `uid` if it has one; for POST-only views), or to this URL when it is None."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if password_is_recent(request):
                return view(request, *args, **kwargs)
            if return_to:
                back = reverse(return_to, kwargs={k: kwargs[k] for k in ("uid",) if k in kwargs})
            else:
                back = request.get_full_path()
            confirm_url = url_with_next("account_confirm", back)
            text = "Enter your password again to continue."
            if wants_json(request):
                return JsonResponse(
                    {
                        "error": "password_confirmation_required",
                        "message": text,
                        "confirm_url": confirm_url,
                    },
                    status=401,
                )
            messages.info(request, text)
            return redirect(confirm_url)

        return wrapped

    return decorator


# --- Reveal rate limit -------------------------------------------------------------------------


def parse_rate(text: str) -> tuple[int, int]:
    """ "20/10m" -> (20, 600): at most 20 in 600 seconds. Raises ValueError."""
    match = RATE_RE.fullmatch(text or "")
    if not match:
        raise ValueError(f'"{text}" is not a rate such as 20/10m (units s, m, h)')
    count, amount, unit = int(match[1]), int(match[2] or 1), match[3]
    if count < 1 or amount < 1:
        raise ValueError(f'"{text}": the count and the period must be at least 1')
    return count, amount * RATE_UNITS[unit]


def _window_text(seconds: int) -> str:
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


def reveal_rate_limited(view: Callable) -> Callable:
    """Decorator: refuse (429) a reveal when the person already revealed REVEAL_RATE_LIMIT
    passwords in its window. The audit log is the counter, so every worker process and every
    restart sees the same count, and the refusal is audited too.

    The count and the view's reveal (with its audit event) are one transaction, serialised per
    person: otherwise concurrent requests all count the same past reveals and all go through."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        with transaction.atomic():
            # PostgreSQL: the person's row lock makes their reveals wait for each other (and
            # nobody else's). SQLite: transaction_mode IMMEDIATE already makes every writing
            # transaction wait for the one before; select_for_update is a no-op there.
            user_model = get_user_model()
            list(user_model.objects.select_for_update().filter(pk=request.user.pk).values("pk"))
            return _reveal_within_limit(view, request, *args, **kwargs)

    return wrapped


def _reveal_within_limit(view: Callable, request: HttpRequest, *args, **kwargs) -> HttpResponse:
    from django.db.models import Q

    from vault.audit import REVEALED_ALONGSIDE, audit_record
    from vault.durations import wait_text
    from vault.models import AuditEvent

    limit, window = parse_rate(settings.REVEAL_RATE_LIMIT)
    now = timezone.now()
    recent = (
        AuditEvent.objects.filter(
            actor=request.user,
            action=REVEAL_ACTION,
            created_at__gt=now - timedelta(seconds=window),
        )
        # Passwords shown alongside a reveal are counted with it.
        .filter(Q(details__what__isnull=True) | ~Q(details__what=REVEALED_ALONGSIDE))
        .order_by("-created_at")
    )
    times = list(recent.values_list("created_at", flat=True)[:limit])
    if len(times) < limit:
        return view(request, *args, **kwargs)
    # The reveal that frees a slot is the oldest of the last `limit`.
    retry_after = max(1, int((times[-1] + timedelta(seconds=window) - now).total_seconds()) + 1)
    audit_record(
        "password.reveal_rate_limited",
        actor=request.user,
        request=request,
        details={"limit": settings.REVEAL_RATE_LIMIT, "path": request.path},
    )
    text = (
        f"Too many passwords revealed: at most {limit} in {_window_text(window)}. "
        f"Try again in {wait_text(retry_after)}."
    )
    if wants_json(request):
        response = JsonResponse({"error": "rate_limited", "message": text}, status=429)
    else:
        response = render(request, "vault/rate_limited.html", {"message": text}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


# --- NUL characters in addresses ---------------------------------------------------------------


class RejectNulMiddleware:
    """400 for a NUL character in the path or the query string. Such a value would reach a
    database query as a uid, a username or a search; PostgreSQL refuses NUL in text, which
    would be a server error. (Forms reject NUL in submitted fields with a field error.)"""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or any(
            "\x00" in key or "\x00" in value
            for key, values in request.GET.lists()
            for value in values
        ):
            return HttpResponse(
                "Bad request: the address contains a NUL character.\n",
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)


# --- Absolute session lifetime -----------------------------------------------------------------


def session_lifetime_text() -> str:
    hours = settings.SESSION_MAX_HOURS
    return (
        f"Your session ended: sessions last at most {hours} hour{'s' if hours != 1 else ''} "
        "after signing in. Sign in again."
    )


# --- Idle timeout ------------------------------------------------------------------------------

REFRESHED_AT = "vault_refreshed_at"
# How often a busy session's idle clock is restarted. Saving the session on every request
# (SESSION_SAVE_EVERY_REQUEST) made every page view a write transaction (three statements and
# a commit, which PostgreSQL flushes to disk); once a minute is enough for a 30-minute timeout:
# a session ends between SESSION_IDLE_MINUTES minus this and SESSION_IDLE_MINUTES after its
# last request.
IDLE_REFRESH_SECONDS = 60


class SessionIdleMiddleware:
    """Restarts a signed-in session's idle timeout (SESSION_COOKIE_AGE) at most once every
    IDLE_REFRESH_SECONDS: changing the session makes Django save it with a new expiry."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(timezone.now().timestamp())
            last = request.session.get(REFRESHED_AT)
            if not isinstance(last, int) or not 0 <= now - last < IDLE_REFRESH_SECONDS:
                request.session[REFRESHED_AT] = now
        return self.get_response(request)


class SessionLifetimeMiddleware:
    """Signs a session out SESSION_MAX_HOURS after sign-in, however active it is. The idle
    timeout alone lets a session in steady use (or a stolen cookie kept warm) live for ever.
    The person is sent to the sign-in page with a message and comes back afterwards; a
    script (Accept: JSON) gets a 401 naming the page."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            signed_in = request.session.get(SIGNED_IN_AT)
            now = int(time.time())
            if not isinstance(signed_in, int):
                # Signed in before this limit existed: its lifetime starts now rather than
                # signing everyone out at once on upgrade.
                request.session[SIGNED_IN_AT] = now
            elif now - signed_in > settings.SESSION_MAX_HOURS * 3600:
                return self._sign_out(request)
        return self.get_response(request)

    def _sign_out(self, request: HttpRequest) -> HttpResponse:
        from django.contrib.auth import logout

        back = request.get_full_path() if request.method == "GET" else reverse("home")
        logout(request)  # flushes the session: its row is deleted, not just forgotten
        text = session_lifetime_text()
        url = url_with_next("login", back)
        if wants_json(request):
            return JsonResponse(
                {"error": "session_expired", "message": text, "url": url}, status=401
            )
        messages.info(request, text)
        return redirect(url)


def end_other_sessions(request: HttpRequest) -> int:
    """Sign request.user out of every session but this one; returns how many ended.

    For changes that must not leave an older session behind (turning two-factor sign-in on
    or off): whoever made the change necessary may hold one. Sessions are rows in the
    database (Django's default SESSION_ENGINE) that name their user only inside the encoded
    data, so the unexpired ones are decoded; the idle timeout keeps them few."""
    from django.contrib.auth import SESSION_KEY
    from django.contrib.sessions.models import Session

    user_id = request.user._meta.pk.value_to_string(request.user)
    others = Session.objects.filter(expire_date__gt=timezone.now()).exclude(
        session_key=request.session.session_key
    )
    ended = [
        row.session_key
        for row in others.iterator(chunk_size=500)
        if row.get_decoded().get(SESSION_KEY) == user_id
    ]
    Session.objects.filter(session_key__in=ended).delete()
    return len(ended)


def signed_out_elsewhere(ended: int) -> str:
    """The sentence that tells the person `ended` other sessions were signed out."""
    if not ended:
        return ""
    return f" You were signed out of your {ended} other session{'s' if ended != 1 else ''}."


# --- Two-factor gate ---------------------------------------------------------------------------


def second_factor_pending(request: HttpRequest) -> bool:
    """Signed in with a password, but a code is still owed."""
    user = request.user
    if not user.is_authenticated or not request.session.get(SECOND_FACTOR_PENDING):
        return False
    # Right after login() request.user is a plain User, without OTPMiddleware's is_verified.
    is_verified = getattr(user, "is_verified", None)
    return not (is_verified and is_verified())


class TwoFactorMiddleware:
    """Until a signed-in session is verified by a code, every page except the code page (and
    logging out) redirects there: for users who have a device, and, with VAULT_REQUIRE_2FA, for
    everyone (to the set-up page first if they have none)."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated:
            return None
        pending = bool(request.session.get(SECOND_FACTOR_PENDING))
        if not pending and not settings.VAULT_REQUIRE_2FA:
            return None
        if user.is_verified():
            return None
        name = request.resolver_match.url_name if request.resolver_match else None
        if request.resolver_match and request.resolver_match.namespace:
            name = None  # the admin console is never exempt
        target = "twofactor_verify" if pending else "twofactor_setup"
        if name in (VERIFY_EXEMPT if pending else ENROL_EXEMPT):
            return None
        back = request.get_full_path() if request.method == "GET" else reverse("home")
        url = url_with_next(target, back)
        if wants_json(request):
            return JsonResponse(
                {"error": "two_factor_required", "message": "Finish signing in.", "url": url},
                status=401,
            )
        return redirect(url)


@receiver(user_logged_in, dispatch_uid="vault.security.on_login")
def _on_login(sender, request, user, **kwargs) -> None:
    if request is None or not hasattr(request, "session"):
        return
    from django_otp import user_has_device

    mark_password_confirmed(request)
    request.session[SIGNED_IN_AT] = int(time.time())
    request.session[SECOND_FACTOR_PENDING] = user_has_device(user)


# --- Sign-in forms -----------------------------------------------------------------------------

MAX_PASSWORD_INPUT = 4096


class LoginForm(AuthenticationForm):
    """Django's sign-in form with its lengths enforced: AuthenticationForm sets the username's
    max_length without a validator, so a username of any length reached authenticate() and
    django-axes' attempt log (a server error on PostgreSQL); a huge password would cost a slow
    hash for nothing."""

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        limit = self.fields["username"].max_length
        if len(username) > limit:
            raise forms.ValidationError(f"A username has at most {limit} characters.")
        return username

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if len(password) > MAX_PASSWORD_INPUT:
            raise forms.ValidationError("That password is too long.")
        return password

    def get_invalid_login_error(self) -> forms.ValidationError:
        # With LOCAL_PASSWORDS off a right password is refused too (vault/oidc.py): say so,
        # without saying whether this username is one of the break-glass accounts.
        if not settings.LOCAL_PASSWORDS:
            return forms.ValidationError(
                "Wrong username or password, or this account may not sign in with a password "
                "here: local passwords are turned off. Use single sign-on.",
                code="invalid_login",
            )
        return super().get_invalid_login_error()


class ConfirmPasswordForm(forms.Form):
    """The "confirm your password" page's form (vault/twofactor.py); here beside the sign-in
    form because the lockout page (below) shows either."""

    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=MAX_PASSWORD_INPUT,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


# --- Sign-in lockout (django-axes) -------------------------------------------------------------


def lockout_text() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return (
        "Too many failed attempts: signing in with this username from your address is "
        f"locked for {minutes} minutes. Try again later."
    )


def lockout_response(request: HttpRequest, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the page again, with the lockout message (HTTP 429). The same
    for a username that exists and one that does not."""
    # The account page's password change checks the current password like the confirm page.
    on_confirm_page = request.resolver_match and request.resolver_match.url_name in (
        "account_confirm",
        "account_password",
    )
    if on_confirm_page:
        form = ConfirmPasswordForm()
        template = "registration/confirm_password.html"
    else:
        username = request.POST.get("username", "")[:150]
        form = LoginForm(request, initial={"username": username})
        template = "registration/login.html"
    context = {
        "form": form,
        "locked_out": lockout_text(),
        "next": request.POST.get(REDIRECT_FIELD_NAME, "")[:2000],
    }
    return render(request, template, context, status=429)


def _on_locked_out(sender, request, username, ip_address, **kwargs) -> None:
    from vault.audit import audit_record

    audit_record(
        "login.locked_out",
        actor_kind="system",
        request=request,
        details={"username": (username or "")[:150], "ip_address": ip_address or ""},
    )


def connect() -> None:
    """Called from VaultConfig.ready()."""
    from axes.signals import user_locked_out

    user_locked_out.connect(_on_locked_out, dispatch_uid="vault.security.on_locked_out")


# --- System checks -----------------------------------------------------------------------------


@checks.register(checks.Tags.security)
def check_security_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    problems = []
    try:
        parse_rate(settings.REVEAL_RATE_LIMIT)
    except ValueError as exc:
        problems.append(checks.Error(f"REVEAL_RATE_LIMIT: {exc}", id="vault.E001"))
    if settings.VAULT_REAUTH_MINUTES < 1:
        problems.append(checks.Error("VAULT_REAUTH_MINUTES must be at least 1", id="vault.E002"))
    if settings.AXES_FAILURE_LIMIT < 1:
        problems.append(checks.Error("AXES_FAILURE_LIMIT must be at least 1", id="vault.E003"))
    if settings.SESSION_MAX_HOURS < 1:
        problems.append(checks.Error("SESSION_MAX_HOURS must be at least 1", id="vault.E005"))
    problems += _key_ring_errors()
    return problems


def _key_ring_errors() -> list[checks.CheckMessage]:
    """A malformed key would pass the settings and fail the first reveal or save; refuse it
    at start-up (`check`, `runserver`, `migrate`) instead, naming the key by position only."""
    from vault.crypto import key_ring_problems

    # With VAULT_ENCRYPTION_KEYS empty, the settings read the ring from the local key file.
    source = (
        "VAULT_ENCRYPTION_KEYS"
        if os.environ.get("VAULT_ENCRYPTION_KEYS", "").strip()
        else "VAULT_ENCRYPTION_KEYS (read from the key file, VAULT_KEY_FILE)"
    )
    return [
        checks.Error(
            f"{source}: {problem}",
            hint="A key is 32 random bytes in URL-safe base64: make one with "
            "`python manage.py pam genkey`.",
            id="vault.E004",
        )
        for problem in key_ring_problems(settings.VAULT_ENCRYPTION_KEYS)
    ]
