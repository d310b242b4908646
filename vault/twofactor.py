"""The account page, two-factor sign-in (TOTP with django-otp, plus recovery codes), the
"confirm your password" page, and the admin site that needs a verified session.

Devices: one TOTPDevice ("Authenticator app") and one StaticDevice ("Recovery codes") per
user. A TOTP device is created unconfirmed when set-up starts and confirmed by the first
valid code; only confirmed devices count for sign-in.
"""

from __future__ import annotations

import re
from base64 import b32encode

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, authenticate
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_otp import DEVICE_ID_SESSION_KEY, user_has_device
from django_otp import login as otp_login
from django_otp.admin import OTPAdminSite
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from vault.audit import audit_record
from vault.security import (
    SECOND_FACTOR_PENDING,
    ConfirmPasswordForm,
    end_other_sessions,
    mark_password_confirmed,
    recent_password_required,
    safe_next,
    signed_out_elsewhere,
    url_with_next,
)

RECOVERY_CODE_COUNT = 10
TOTP_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"
TOTP_RE = re.compile(r"\d{6}")
RECOVERY_RE = re.compile(r"[a-z2-7]{8}")
SETUP_KEY = "vault_totp_setup_key"  # session: the key being set up, until confirmed


# --- Forms -------------------------------------------------------------------------------------


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=64,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autocapitalize": "none",
                "spellcheck": "false",
                "inputmode": "text",
            }
        ),
    )

    def clean_code(self) -> str:
        # People type codes with spaces or dashes, and recovery codes in capitals.
        return re.sub(r"[\s-]", "", self.cleaned_data["code"]).lower()


# --- Devices -----------------------------------------------------------------------------------


def _confirmed_totp(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def _recovery_device(user) -> StaticDevice | None:
    return StaticDevice.objects.filter(user=user, confirmed=True).first()


def _new_recovery_codes(user) -> list[str]:
    """Replace the user's recovery codes with new ones; returns them (shown once)."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


def _verify(user, code: str):
    """The confirmed device that accepts `code` (using it up, for a recovery code), or None.
    django-otp's throttling applies: after wrong codes a device refuses for a while."""
    if TOTP_RE.fullmatch(code):
        devices = TOTPDevice.objects.filter(user=user, confirmed=True)
    elif RECOVERY_RE.fullmatch(code):
        devices = StaticDevice.objects.filter(user=user, confirmed=True)
    else:
        return None
    with transaction.atomic():
        for device in devices.select_for_update():
            if device.verify_token(code):
                return device
    return None


def _throttled(user) -> bool:
    for model in (TOTPDevice, StaticDevice):
        for device in model.objects.filter(user=user, confirmed=True):
            allowed, _ = device.verify_is_allowed()
            if not allowed:
                return True
    return False


def qr_svg(text: str) -> str:
    """`text` as a QR code, an inline SVG made here (no outside service sees the secret)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    svg = image.to_string(encoding="unicode")
    return svg.replace(
        "<svg ", '<svg class="qr" role="img" aria-label="QR code for your authenticator app" ', 1
    )


def _grouped(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


# --- Account page ------------------------------------------------------------------------------


def account_context(request: HttpRequest) -> dict:
    """The account page's context (also for vault.people's password change, shown again with
    its errors)."""
    from vault import timezones
    from vault.forms import AccountPasswordForm, TimeZoneForm

    recovery = _recovery_device(request.user)
    return {
        "totp": _confirmed_totp(request.user),
        "recovery_left": recovery.token_set.count() if recovery else 0,
        "require_2fa": settings.VAULT_REQUIRE_2FA,
        "reauth_minutes": settings.VAULT_REAUTH_MINUTES,
        "password_form": AccountPasswordForm(user=request.user),
        "time_zone_form": TimeZoneForm(
            initial={"time_zone": request.session.get(timezones.SESSION_KEY, "")},
            browser_zone=request.COOKIES.get(timezones.COOKIE, ""),
        ),
    }


@login_required
@require_GET
def account(request: HttpRequest) -> HttpResponse:
    return render(request, "vault/profile.html", account_context(request))


@login_required
@never_cache
def account_confirm(request: HttpRequest) -> HttpResponse:
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"), "account")
    form = ConfirmPasswordForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        # authenticate() rather than check_password(): wrong passwords count towards the
        # sign-in lockout here too.
        user = authenticate(
            request,
            username=request.user.get_username(),
            password=form.cleaned_data["password"],
        )
        if user is not None and user.pk == request.user.pk:
            mark_password_confirmed(request)
            return redirect(next_url)
        form.add_error("password", "That is not your password.")
    return render(request, "registration/confirm_password.html", {"form": form, "next": next_url})


# --- Two-factor set-up, sign-in, recovery codes, turning off -----------------------------------


@login_required
@never_cache
@recent_password_required()
def twofactor_setup(request: HttpRequest) -> HttpResponse:
    user = request.user
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"), "account")
    if _confirmed_totp(user) is not None:
        if not user.is_verified():
            return redirect(url_with_next("twofactor_verify", next_url))
        messages.info(request, "Two-factor sign-in is already on.")
        return redirect("account")
    # The key waits in the session until a code confirms it, so opening this page writes no
    # device; the first code checked (right or wrong) saves an unconfirmed one, which counts
    # wrong codes for django-otp's throttling.
    key = request.session.get(SETUP_KEY)
    if request.method == "POST" and not key:
        messages.error(request, "The set-up expired; scan the new code and try again.")
        return redirect(url_with_next("twofactor_setup", next_url))
    if not key:
        key = request.session[SETUP_KEY] = random_hex(20)
    device = TOTPDevice.objects.filter(user=user, confirmed=False, key=key).first()
    if device is None:
        device = TOTPDevice(user=user, name=TOTP_NAME, key=key, confirmed=False)
    form = CodeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        code = form.cleaned_data["code"]
        if TOTP_RE.fullmatch(code) and device.verify_token(code):
            with transaction.atomic():
                TOTPDevice.objects.filter(user=user, confirmed=False).exclude(pk=device.pk).delete()
                device.confirmed = True
                device.save()
                codes = _new_recovery_codes(user)
                # A session opened before now never gave a code: it must not outlive the change.
                ended = end_other_sessions(request)
                audit_record(
                    "2fa.enabled",
                    actor=user,
                    request=request,
                    details={"other_sessions_ended": ended},
                )
            del request.session[SETUP_KEY]
            otp_login(request, device)
            request.session[SECOND_FACTOR_PENDING] = True
            messages.success(request, "Two-factor sign-in is on." + signed_out_elsewhere(ended))
            return render(
                request, "vault/2fa_recovery_codes.html", {"codes": codes, "next": next_url}
            )
        form.add_error("code", "That code is not right. Enter the 6-digit code the app shows now.")
    context = {
        "form": form,
        "qr": mark_safe(qr_svg(device.config_url)),  # SVG made by qr_svg, no user text in it
        "secret": _grouped(b32encode(device.bin_key).decode()),
        "issuer": settings.OTP_TOTP_ISSUER,
        "next": next_url,
    }
    return render(request, "vault/2fa_setup.html", context)


@login_required
@never_cache
def twofactor_verify(request: HttpRequest) -> HttpResponse:
    user = request.user
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if user.is_verified():
        return redirect(next_url)
    if not user_has_device(user):
        return redirect(url_with_next("twofactor_setup", next_url))
    form = CodeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        device = _verify(user, form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            request.session.cycle_key()  # a new session key for the fully signed-in session
            recovery = isinstance(device, StaticDevice)
            audit_record(
                "login.second_factor",
                actor=user,
                request=request,
                details={"method": "recovery code" if recovery else "authenticator app"},
            )
            if recovery:
                left = device.token_set.count()
                messages.warning(
                    request,
                    f"You signed in with a recovery code; {left} left. "
                    "Make new ones on your account page if you are running out.",
                )
            return redirect(next_url)
        audit_record("login.second_factor_failed", actor=user, request=request)
        if _throttled(user):
            form.add_error("code", "Too many wrong codes. Wait a minute, then try again.")
        else:
            form.add_error("code", "That code is not right, or was already used.")
    return render(request, "vault/2fa_verify.html", {"form": form, "next": next_url})


@login_required
@require_POST
@never_cache
@recent_password_required(return_to="account")
def twofactor_recovery_codes(request: HttpRequest) -> HttpResponse:
    user = request.user
    if _confirmed_totp(user) is None:
        messages.error(request, "Set up two-factor sign-in first.")
        return redirect("account")
    codes = _new_recovery_codes(user)
    audit_record("2fa.recovery_codes_replaced", actor=user, request=request)
    messages.success(request, "New recovery codes made; the old ones no longer work.")
    return render(
        request, "vault/2fa_recovery_codes.html", {"codes": codes, "next": reverse("account")}
    )


@login_required
@require_POST
@recent_password_required(return_to="account")
def twofactor_disable(request: HttpRequest) -> HttpResponse:
    user = request.user
    if settings.VAULT_REQUIRE_2FA:
        messages.error(request, "Two-factor sign-in is required here; it cannot be turned off.")
        return redirect("account")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        # A security setting changed: sessions opened elsewhere (perhaps by whoever made the
        # change necessary) end and must sign in again; this one, which just confirmed the
        # password, stays.
        ended = end_other_sessions(request)
        audit_record(
            "2fa.disabled", actor=user, request=request, details={"other_sessions_ended": ended}
        )
    request.session.pop(DEVICE_ID_SESSION_KEY, None)
    request.session[SECOND_FACTOR_PENDING] = False
    messages.success(request, "Two-factor sign-in is off." + signed_out_elsewhere(ended))
    return redirect("account")


# --- Admin console -----------------------------------------------------------------------------


class VaultAdminSite(OTPAdminSite):
    """Django's admin for staff whose session is verified by a code. Its own login page is
    replaced by the vault's: sign in, then the code (or set-up, for a staff user without one)."""

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        next_url = request.GET.get(REDIRECT_FIELD_NAME) or reverse(f"{self.name}:index")
        next_url = safe_next(request, next_url)
        user = request.user
        if self.has_permission(request):
            return redirect(next_url)
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return redirect_to_login(next_url, settings.LOGIN_URL)
        if user_has_device(user):
            return redirect(url_with_next("twofactor_verify", next_url))
        messages.info(request, "The admin console needs two-factor sign-in: set it up first.")
        return redirect(url_with_next("twofactor_setup", next_url))
