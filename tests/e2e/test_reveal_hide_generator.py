"""The record page's reveal (Hide, hiding by itself, Copy on history rows, shown at once after
the password is confirmed) and the record form's password generator, in Chromium."""

from __future__ import annotations

import string
import time

import pytest
from playwright.sync_api import expect

from rotation.passwords import AWS_SYMBOLS
from tests.conftest import PASSWORD as PERSONA_PASSWORD
from tests.conftest import make_configuration
from tests.e2e.conftest import log_in, rotation_on_demand, save_screenshots
from vault import services
from vault.models import PamUser
from vault.security import PASSWORD_CONFIRMED_AT

pytestmark = pytest.mark.django_db(transaction=True)

OLDER = "Older-Passw0rd!"
CURRENT = "Current-Passw0rd!"
MASK = "••••••••"


@pytest.fixture
def record(personas):
    record = services.pam_user_create(
        folder=personas.folder,
        title="AWS user: Hidden",
        login="Hidden",
        distinguished_name="arn:aws:iam::123456789012:user/Hidden",
        password=OLDER,
        actor=personas.editor,
    )
    services.pam_user_set_password(record=record, password=CURRENT, set_by=personas.editor)
    record.save()
    return record


def test_reveal_hide_and_hiding_by_itself(browsing, live_server, personas, record, settings):
    settings.REVEAL_AUTO_HIDE_SECONDS = 3
    page = browsing.new_page()
    log_in(page, "editor")
    page.goto(f"/records/{record.uid}/")
    page.get_by_role("button", name="Reveal", exact=True).click()
    expect(page.locator("#password-value")).to_have_text(CURRENT)
    expect(page.locator(".auto-hide-note").first).to_contain_text("Hides in")
    save_screenshots(page, "record-revealed-hide", reload=False)
    # Hide: masked at once, and the page is the record page again with Reveal.
    page.get_by_role("link", name="Hide", exact=True).click()
    expect(page.locator("#password-value")).to_have_text(MASK)
    expect(page.get_by_role("button", name="Reveal", exact=True)).to_be_visible()
    assert CURRENT not in page.content()

    # Hiding by itself, after REVEAL_AUTO_HIDE_SECONDS.
    page.get_by_role("button", name="Reveal", exact=True).click()
    expect(page.locator("#password-value")).to_have_text(CURRENT)
    started = time.monotonic()
    expect(page.locator("#password-value")).to_have_text(MASK, timeout=8000)
    assert time.monotonic() - started >= 1.5
    expect(page.get_by_role("button", name="Reveal", exact=True)).to_be_visible()
    assert CURRENT not in page.content()


def test_copy_on_a_history_row(browsing, live_server, personas, record):
    page = browsing.new_page(permissions=["clipboard-read", "clipboard-write"])
    log_in(page, "editor")
    page.goto(f"/records/{record.uid}/")
    history = page.locator("#password-history")
    history.get_by_role("button", name="Copy the password set").last.click()
    expect(history.locator(".copy-status").last).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == OLDER
    # Copy shows nothing on the page.
    assert OLDER not in page.content()
    save_screenshots(page, "record-history-copy")


def test_reveal_after_confirming_the_password_is_shown_at_once(
    browsing, live_server, personas, record
):
    page = browsing.new_page()
    log_in(page, "viewer")
    # As if the password was entered long ago.
    from django.contrib.sessions.models import Session

    for session in Session.objects.all():
        data = session.get_decoded()
        data[PASSWORD_CONFIRMED_AT] = 0
        Session.objects.filter(pk=session.pk).update(session_data=Session.objects.encode(data))
    page.goto(f"/records/{record.uid}/")
    page.get_by_role("button", name="Reveal", exact=True).click()
    page.get_by_label("Password").fill(PERSONA_PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#password-value")).to_have_text(CURRENT)
    assert page.url.endswith(f"/records/{record.uid}/")


def _classes(password: str) -> tuple[int, int, int, int]:
    return (
        sum(c in string.ascii_uppercase for c in password),
        sum(c in string.ascii_lowercase for c in password),
        sum(c in string.digits for c in password),
        sum(c in AWS_SYMBOLS for c in password),
    )


def test_the_generator_fills_the_password_with_the_records_complexity(
    browsing, live_server, personas, record
):
    rotation_on_demand(record, make_configuration(personas.folder, personas.gateway))
    page = browsing.new_page()
    log_in(page, "editor")
    page.goto(f"/records/{record.uid}/edit/")
    expect(page.locator("#password-vault-only")).to_contain_text("changes the vault only")
    expect(page.get_by_role("button", name="Rotate instead")).to_be_visible()
    page.get_by_role("button", name="Generate a password").click()
    field = page.locator("#id_password")
    expect(field).to_have_attribute("type", "text")
    generated = field.input_value()
    assert len(generated) == 24
    assert all(n >= 2 for n in _classes(generated))
    expect(page.locator(".generator-status")).to_contain_text("Generated 24 characters")
    save_screenshots(page, "record-edit-generated", reload=False)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved the record")).to_be_visible()
    assert PamUser.objects.get(pk=record.pk).get_secret("password") == generated


def test_the_new_record_form_generates_with_the_default(browsing, live_server, personas):
    page = browsing.new_page()
    log_in(page, "editor")
    page.goto(f"/folders/{personas.folder.uid}/records/new/")
    page.get_by_role("button", name="Generate a password").click()
    expect(page.locator(".generator-status")).to_contain_text("Generated 32 characters")
    assert len(page.locator("#id_password").input_value()) == 32
    save_screenshots(page, "record-new-generated", reload=False)
