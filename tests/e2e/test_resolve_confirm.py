"""The may-be-live choice in Chromium: the warning says rotating again also resolves it and
that AWS cannot be asked which password it accepts; keeping the current password (which
discards the pending one) asks on a page of its own first."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rotation.models import Rotation
from tests.conftest import make_configuration, make_pam_user
from tests.e2e.conftest import log_in, rotation_on_demand, save_screenshots

pytestmark = pytest.mark.django_db(transaction=True)

PENDING = "Pending-Passw0rd!"


@pytest.fixture
def failed(personas):
    record = make_pam_user(personas.folder, "MaybeLive", password="Current-Passw0rd!")
    config = make_configuration(personas.folder, personas.gateway)
    rotation_on_demand(record, config)
    rotation = Rotation(
        pam_user=record,
        configuration=config,
        gateway_name=personas.gateway.name,
        trigger="on_demand",
        status=Rotation.FAILED,
        pending_may_be_live=True,
        error="AWS did not answer",
    )
    rotation.save()
    rotation.set_secret("pending_password", PENDING)
    rotation.save()
    return rotation


def test_discarding_a_may_be_live_password_is_confirmed_first(
    browsing, live_server, personas, failed
):
    record = failed.pam_user
    page = browsing.new_page()
    log_in(page, "editor")
    page.goto(f"/records/{record.uid}/")
    warning = page.locator(".may-be-live")
    expect(warning).to_contain_text("Rotating again also resolves it")
    expect(warning).to_contain_text("no way to test a console password")
    warning.get_by_role("button", name="Keep the current password").click()
    expect(page.get_by_role("heading", name="Discard the pending password?")).to_be_visible()
    save_screenshots(page, "resolve-confirm", reload=False)
    failed.refresh_from_db()
    assert failed.resolved_at is None  # nothing yet

    page.get_by_role("link", name="Cancel").click()
    expect(page.locator(".may-be-live")).to_be_visible()
    page.locator(".may-be-live").get_by_role("button", name="Keep the current password").click()
    page.get_by_role("button", name="Discard the pending password").click()
    expect(page.get_by_text("the possibly-live one was discarded")).to_be_visible()
    expect(page.locator(".may-be-live")).to_have_count(0)
    failed.refresh_from_db()
    assert failed.resolved_at is not None


def test_reveal_shows_the_possibly_live_password_with_its_own_copy(
    browsing, live_server, personas, failed
):
    """Both passwords AWS may hold can be revealed and copied (the reveal is the audited step)."""
    record = failed.pam_user
    page = browsing.new_page(permissions=["clipboard-read", "clipboard-write"])
    log_in(page, "editor")
    page.goto(f"/records/{record.uid}/")
    page.get_by_role("button", name="Reveal", exact=True).click()
    candidate = page.locator("#revealed-candidates li").first
    expect(candidate.locator("[data-candidate-password]")).to_have_text(PENDING)
    candidate.get_by_role("button", name="Copy").click()
    expect(candidate.locator(".copy-status")).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == PENDING
