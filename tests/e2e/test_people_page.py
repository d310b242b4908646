"""Accounts in a browser (issue 12, "Missing things"): a superuser, signed in with a code, finds
People in the navigation, lifts a real sign-in lockout, adds a person with a temporary password
shown once; that person signs in with it and changes it on the account page."""

from __future__ import annotations

import re
import time

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import save_screenshots
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

NEW_PASSWORD = "Sturdy-Vault-Key-93!"


def _code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, step=30, t0=0, digits=6)
    totp.time = time.time()
    return f"{totp.token():06d}"


def _sign_in(page: Page, username: str, password: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_superuser_unlocks_a_lockout_and_adds_a_person_who_then_signs_in(browsing, personas):
    device = TOTPDevice.objects.create(
        user=personas.superuser, name="Authenticator app", confirmed=True
    )
    # Five wrong passwords for the editor through the sign-in page lock it.
    locked = browsing.new_page()
    for _ in range(5):
        _sign_in(locked, "editor", "wrong-password")
    _sign_in(locked, "editor", PASSWORD)
    expect(locked.locator("#locked-out")).to_be_visible()

    admin = browsing.new_page()
    _sign_in(admin, "root", PASSWORD)
    admin.get_by_label("Code").fill(_code(device))
    admin.get_by_role("button", name="Continue").click()
    expect(admin.get_by_role("heading", name="My folders")).to_be_visible()
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="People").click()
    expect(admin.get_by_role("heading", name=re.compile("^People"), level=1)).to_be_visible()

    editor = admin.locator("#person-editor")
    expect(editor.get_by_text("Sign-in locked")).to_be_visible()
    save_screenshots(admin, "people")
    editor.get_by_role("button", name="Unlock the sign-in of editor").click()
    expect(admin.get_by_text("editor may sign in again from every address.")).to_be_visible()
    expect(admin.locator("#person-editor").get_by_text("Sign-in locked")).to_have_count(0)

    _sign_in(locked, "editor", PASSWORD)
    expect(locked.get_by_role("heading", name="My folders")).to_be_visible()

    admin.get_by_label("Username").fill("newcomer")
    expect(
        admin.locator("#person-create-form").get_by_label(re.compile("temporary"))
    ).to_be_checked()
    admin.get_by_role("button", name="Add person").click()
    expect(admin.get_by_role("heading", name="Created newcomer")).to_be_visible()
    temporary = admin.locator("#temporary-password").inner_text().strip()
    assert len(temporary) >= 20
    save_screenshots(admin, "people-temporary-password", reload=False)

    newcomer = browsing.new_page()
    _sign_in(newcomer, "newcomer", temporary)
    expect(newcomer.get_by_role("heading", name="My folders")).to_be_visible()
    newcomer.get_by_role("navigation", name="Main").get_by_role("link", name="Account").click()
    newcomer.get_by_label("Current password").fill(temporary)
    newcomer.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    newcomer.get_by_label("New password again").fill(NEW_PASSWORD)
    newcomer.get_by_role("button", name="Change password").click()
    expect(newcomer.get_by_text("Your password is changed.")).to_be_visible()
    save_screenshots(newcomer, "account-password-changed", reload=False)
    newcomer.reload()
    expect(newcomer.get_by_role("heading", name="Your account")).to_be_visible()  # still signed in

    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"person.unlocked", "person.created", "account.password_changed"} <= actions
