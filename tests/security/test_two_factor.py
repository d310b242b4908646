"""Two-factor sign-in: enrolment from the account page (QR code drawn by the vault, key as
text, confirmed by a code), recovery codes, the code step after the password,
VAULT_REQUIRE_2FA, and the admin console that always needs a verified session."""

from __future__ import annotations

import re
import time
from base64 import b32decode

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import PASSWORD, login, login_verified
from vault.models import AuditEvent
from vault.twofactor import SETUP_KEY

pytestmark = pytest.mark.django_db


def code_for(key_hex: str, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows for this key (now, or a step of 30 s later;
    a device accepts one step either side, and never the same step twice)."""
    totp = TOTP(bytes.fromhex(key_hex), step=30, t0=0, digits=6)
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def enrol(client: Client) -> tuple[TOTPDevice, list[str]]:
    client.get("/account/2fa/setup/")
    key = client.session[SETUP_KEY]
    response = client.post("/account/2fa/setup/", {"code": code_for(key)})
    assert response.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", response.content.decode())
    return TOTPDevice.objects.get(key=key), codes


def password_login(username: str, next_url: str = "") -> tuple[Client, object]:
    client = Client()
    data = {"username": username, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client, client.post("/login/", data)


def user_with_device(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


# --- enrolment ---------------------------------------------------------------------------------


def test_account_page_offers_two_factor_set_up(personas):
    html = login(personas.editor).get("/account/").content.decode()
    assert "Two-factor sign-in" in html
    assert 'href="/account/2fa/setup/"' in html


def test_set_up_page_draws_the_qr_code_itself_and_shows_the_key_as_text(personas):
    client = login(personas.editor)
    html = client.get("/account/2fa/setup/").content.decode()
    key = client.session[SETUP_KEY]
    assert re.search(r"<svg [^>]*class=\"qr\"[^>]*>\s*<path d=\"M", html)
    shown = re.search(r'id="totp-key">([A-Z2-7 ]+)<', html).group(1).replace(" ", "")
    assert b32decode(shown).hex() == key
    # Nothing is fetched from elsewhere: no image source, no outside URL.
    assert "<img" not in html
    assert not re.search(r"(src|href)=\"https?://", html)


def test_opening_the_set_up_page_writes_no_device(personas):
    login(personas.editor).get("/account/2fa/setup/")
    assert not TOTPDevice.objects.exists()


def test_right_code_turns_two_factor_on_and_shows_ten_recovery_codes_once(personas):
    client = login(personas.editor)
    device, codes = enrol(client)
    assert device.confirmed and device.user == personas.editor
    assert len(set(codes)) == 10
    stored = StaticToken.objects.filter(device__user=personas.editor)
    assert sorted(stored.values_list("token", flat=True)) == sorted(codes)
    assert AuditEvent.objects.filter(action="2fa.enabled", actor=personas.editor).exists()
    account = client.get("/account/").content.decode()
    assert not any(code in account for code in codes)
    assert 'id="recovery-left">10<' in account


def test_wrong_code_leaves_two_factor_off(personas):
    client = login(personas.editor)
    client.get("/account/2fa/setup/")
    response = client.post("/account/2fa/setup/", {"code": "000000"})
    assert response.status_code == 200
    assert "That code is not right" in response.content.decode()
    assert not TOTPDevice.objects.filter(confirmed=True).exists()
    assert not StaticDevice.objects.exists()


def test_enrolling_verifies_the_current_session(personas):
    client = login(personas.editor)
    enrol(client)
    assert client.get("/").status_code == 200


# --- signing in --------------------------------------------------------------------------------


def test_user_without_a_device_signs_in_with_the_password_alone(personas):
    client, response = password_login("editor")
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_password_step_asks_for_the_code_before_anything_else(personas):
    user_with_device(personas.editor)
    client, response = password_login("editor", next_url="/account/")
    assert response.status_code == 302
    assert response["Location"] == "/account/2fa/verify/?next=%2Faccount%2F"
    for url in ("/", f"/folders/{personas.folder.uid}/", "/account/", "/audit/"):
        refused = client.get(url)
        assert refused.status_code == 302
        assert refused["Location"].startswith("/account/2fa/verify/")


def test_unverified_script_request_gets_401_json(personas):
    user_with_device(personas.editor)
    client, _ = password_login("editor")
    response = client.get("/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert response.json()["error"] == "two_factor_required"


def test_right_code_finishes_signing_in_and_goes_to_next(personas):
    device = user_with_device(personas.editor)
    client, _ = password_login("editor", next_url="/account/")
    response = client.post(
        "/account/2fa/verify/", {"code": code_for(device.key), "next": "/account/"}
    )
    assert response["Location"] == "/account/"
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="login.second_factor", actor=personas.editor).exists()


def test_wrong_code_keeps_the_session_unverified_and_is_audited(personas):
    user_with_device(personas.editor)
    client, _ = password_login("editor")
    response = client.post("/account/2fa/verify/", {"code": "000000"})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert client.get("/").status_code == 302
    assert AuditEvent.objects.filter(action="login.second_factor_failed").exists()


def test_wrong_codes_are_counted_and_then_throttled(personas):
    device = user_with_device(personas.editor)
    client, _ = password_login("editor")
    client.post("/account/2fa/verify/", {"code": "000000"})
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
    # After a few more wrong codes the device makes the person wait (16 s after 5): even the
    # right code is refused until then.
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=5)
    response = client.post("/account/2fa/verify/", {"code": code_for(device.key)})
    assert "Too many wrong codes" in response.content.decode()
    assert client.get("/").status_code == 302


def test_verify_never_redirects_to_another_site(personas):
    device = user_with_device(personas.editor)
    client, _ = password_login("editor")
    response = client.post(
        "/account/2fa/verify/", {"code": code_for(device.key), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_a_recovery_code_signs_in_once(personas):
    enrolling = login(personas.editor)
    device, codes = enrol(enrolling)
    first, _ = password_login("editor")
    assert first.post("/account/2fa/verify/", {"code": codes[0].upper()}).status_code == 302
    assert first.get("/").status_code == 200
    event = AuditEvent.objects.filter(action="login.second_factor").latest("id")
    assert event.details == {"method": "recovery code"}
    second, _ = password_login("editor")
    second.post("/account/2fa/verify/", {"code": codes[0]})
    assert second.get("/").status_code == 302


def test_new_recovery_codes_replace_the_old_ones(personas):
    client = login(personas.editor)
    device, old_codes = enrol(client)
    response = client.post("/account/2fa/recovery-codes/")
    new_codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", response.content.decode())
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    later, _ = password_login("editor")
    later.post("/account/2fa/verify/", {"code": old_codes[1]})
    assert later.get("/").status_code == 302


def test_turning_two_factor_off_removes_the_devices(personas):
    client = login(personas.editor)
    enrol(client)
    response = client.post("/account/2fa/disable/")
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=personas.editor).exists()
    assert not StaticDevice.objects.filter(user=personas.editor).exists()
    assert AuditEvent.objects.filter(action="2fa.disabled").exists()
    _, response = password_login("editor")
    assert response["Location"] == "/"


# --- VAULT_REQUIRE_2FA -------------------------------------------------------------------------


def test_required_two_factor_sends_a_user_without_device_to_set_up(personas, settings):
    settings.VAULT_REQUIRE_2FA = True
    client, _ = password_login("viewer")
    response = client.get(f"/folders/{personas.folder.uid}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/2fa/setup/?next=")
    assert client.get("/account/2fa/setup/").status_code == 200


def test_required_two_factor_lets_the_user_in_after_enrolling(personas, settings):
    settings.VAULT_REQUIRE_2FA = True
    client, _ = password_login("viewer")
    enrol(client)
    assert client.get(f"/folders/{personas.folder.uid}/").status_code == 200


def test_required_two_factor_cannot_be_turned_off(personas, settings):
    settings.VAULT_REQUIRE_2FA = True
    client, _ = password_login("viewer")
    enrol(client)
    client.post("/account/2fa/disable/")
    assert TOTPDevice.objects.filter(user=personas.viewer).exists()


def test_without_the_requirement_a_user_without_device_is_not_stopped(personas, settings):
    settings.VAULT_REQUIRE_2FA = False
    client, _ = password_login("viewer")
    assert client.get(f"/folders/{personas.folder.uid}/").status_code == 200


# --- the admin console -------------------------------------------------------------------------


def test_superuser_without_two_factor_is_sent_to_set_it_up(personas):
    client = login(personas.superuser)
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/account/2fa/setup/?next=%2Fadmin%2F")


def test_superuser_signed_in_with_password_only_is_asked_for_the_code(personas):
    user_with_device(personas.superuser)
    client, _ = password_login("root")
    response = client.get("/admin/")
    assert response["Location"].startswith("/account/2fa/verify/")


def test_superuser_with_a_verified_session_enters_the_admin_console(personas):
    assert login_verified(personas.superuser).get("/admin/").status_code == 200


def test_verified_user_who_is_not_staff_is_still_refused(personas):
    response = login_verified(personas.editor).get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/login/?next=")


def test_admin_login_page_is_the_vault_login(db):
    response = Client().get("/admin/login/?next=/admin/")
    assert response["Location"] == "/login/?next=/admin/"
