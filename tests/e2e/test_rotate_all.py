"""Rotate all on a folder, followed live on its progress page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import make_configuration, make_pam_user
from tests.e2e.conftest import log_in, rotation_on_demand
from vault.models import PamUser

pytestmark = pytest.mark.django_db(transaction=True)

N = 10
INITIAL_PASSWORD = "Initial-Passw0rd!"


def test_rotate_all_on_a_folder_of_ten_reaches_ten_of_ten_without_a_reload(
    page, live_server, personas, emulator, gateway
):
    config = make_configuration(
        personas.folder, personas.gateway, endpoint=emulator.endpoint, access_secret_key="testing"
    )
    logins = [f"batch-user-{i:02d}" for i in range(N)]
    for login in logins:
        emulator.create_user(login, password=INITIAL_PASSWORD)
        rotation_on_demand(make_pam_user(personas.folder, login, password=INITIAL_PASSWORD), config)

    log_in(page, "editor")
    page.goto(f"/folders/{personas.folder.uid}/")
    page.get_by_role("button", name="Rotate all", exact=True).click()
    page.locator("#rotate-all-confirm-button").click()  # the confirmation (test_rotate_all_confirm)
    expect(page.get_by_role("heading", name="Rotate all")).to_be_visible()
    landed = page.url
    page.evaluate("() => { window.__samePage = true; }")

    expect(page.locator("#batch-count")).to_have_text(f"{N}/{N}", timeout=60_000)
    expect(page.locator("#batch-succeeded")).to_have_text(str(N))
    expect(page.locator("#batch-failed")).to_have_text("0")
    expect(page.locator("#batch-finished")).to_have_text("Finished.")
    expect(page.locator("#batch-progress")).to_have_js_property("value", N)
    expect(page.locator("#batch-no-failures")).to_be_visible()
    assert page.url == landed and page.evaluate("() => window.__samePage === true")

    held = emulator.passwords()
    for record in PamUser.objects.filter(login__in=logins):
        assert record.get_secret("password") == held[record.login] != INITIAL_PASSWORD


def test_rotate_all_lists_a_failed_record_with_its_reason(
    page, live_server, personas, emulator, gateway
):
    config = make_configuration(
        personas.folder, personas.gateway, endpoint=emulator.endpoint, access_secret_key="testing"
    )
    for login, console in (("batch-ok", True), ("batch-no-console", False)):
        emulator.create_user(login, password=INITIAL_PASSWORD if console else None)
        rotation_on_demand(make_pam_user(personas.folder, login, password=INITIAL_PASSWORD), config)

    log_in(page, "editor")
    page.goto(f"/folders/{personas.folder.uid}/")
    page.get_by_role("button", name="Rotate all", exact=True).click()
    page.locator("#rotate-all-confirm-button").click()  # the confirmation (test_rotate_all_confirm)

    expect(page.locator("#batch-count")).to_have_text("2/2", timeout=60_000)
    expect(page.locator("#batch-failed")).to_have_text("1")
    failure = page.locator("#batch-failures li")
    expect(failure).to_have_count(1)
    expect(failure).to_contain_text("AWS user: batch-no-console")
    expect(failure).to_contain_text('The IAM user "batch-no-console" has no AWS Console access')
    expect(page.locator("#batch-no-failures")).to_be_hidden()
