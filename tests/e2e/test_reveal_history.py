"""Reveal is post/redirect/get (issue 12, defect 4): after Reveal the address bar holds the record
page, Back and Forward never ask to resubmit and never show the password again, and opening the
reveal address itself is a page that says how to reveal."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import make_pam_user
from tests.e2e.conftest import log_in, save_screenshots
from vault import services
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Revealed-Passw0rd!"
MASKED = "••••••••"


def _reveals() -> int:
    return AuditEvent.objects.filter(action="password.revealed").count()


def test_back_and_forward_after_reveal_neither_resubmit_nor_show_it_again(
    browsing, live_server, personas
):
    record = make_pam_user(personas.folder, "RevealedUser", password=PASSWORD)
    page = browsing.new_page()
    log_in(page, "editor")
    record_url = f"{live_server.url}/records/{record.uid}/"
    page.goto(record_url)
    expect(page.locator("#password-value")).to_have_text(MASKED)

    page.get_by_role("button", name="Reveal", exact=True).click()
    expect(page.locator("#password-value")).to_have_text(PASSWORD)
    assert page.url == record_url  # not the POST-only /reveal/ address
    assert PASSWORD not in page.url
    save_screenshots(page, "record-revealed", reload=False)

    page.go_back()
    expect(page.locator("#password-value")).to_have_text(MASKED)
    assert page.url == record_url
    page.go_forward()
    # Shown once: coming back to the revealed entry shows the password masked, with no
    # "Confirm Form Resubmission" (a POST entry in the history would have asked).
    expect(page.locator("#password-value")).to_have_text(MASKED)
    assert page.url == record_url
    page.reload()
    expect(page.locator("#password-value")).to_have_text(MASKED)
    assert _reveals() == 1  # the one click, never again by navigating


def test_opening_the_reveal_address_is_a_page_with_the_button(browsing, live_server, personas):
    record = make_pam_user(personas.folder, "AddressUser", password=PASSWORD)
    page = browsing.new_page()
    log_in(page, "viewer")
    response = page.goto(f"/records/{record.uid}/reveal/")
    assert response.status == 405
    expect(page.get_by_role("heading", name="Reveal from the record page")).to_be_visible()
    expect(page.get_by_text(PASSWORD)).to_have_count(0)
    save_screenshots(page, "reveal-address")
    assert _reveals() == 0

    page.get_by_role("button", name="Reveal the password").click()
    expect(page).to_have_url(re.compile(rf"/records/{record.uid}/$"))
    expect(page.locator("#password-value")).to_have_text(PASSWORD)
    assert _reveals() == 1


def test_a_history_reveal_lands_on_the_history_and_back_shows_it_masked(
    browsing, live_server, personas
):
    record = services.pam_user_create(  # with its first password in the history
        folder=personas.folder,
        title="AWS user: HistoryUser",
        login="HistoryUser",
        distinguished_name="arn:aws:iam::123456789012:user/HistoryUser",
        password=PASSWORD,
        actor=personas.editor,
    )
    page = browsing.new_page()
    log_in(page, "editor")
    page.goto(f"/records/{record.uid}/")
    history = page.locator("#password-history")
    history.get_by_role("button", name=re.compile("^Reveal the password set")).first.click()
    expect(history.locator("code.secret.revealed")).to_have_text(PASSWORD)
    expect(page).to_have_url(re.compile(rf"/records/{record.uid}/#password-history$"))
    page.go_back()
    page.go_forward()
    expect(page.locator("#password-history code.secret.revealed")).to_have_count(0)
