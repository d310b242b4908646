"""A person sets up rotation from nothing in the browser and rotates a password in (local) AWS."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import make_configuration, make_pam_user, make_user
from tests.e2e.conftest import log_in, rotation_on_demand
from tests.emulator import ACCOUNT_ID

pytestmark = pytest.mark.django_db(transaction=True)

ROTATION_TIMEOUT_MS = 45_000
INITIAL_PASSWORD = "Initial-Passw0rd!"


def _watch_for_reloads(page: Page) -> list[str]:
    """Main-frame navigations from now on, plus a marker that a reload would wipe."""
    navigations: list[str] = []
    page.on(
        "framenavigated",
        lambda frame: navigations.append(frame.url) if frame == page.main_frame else None,
    )
    page.evaluate("() => { window.__samePage = true; }")
    return navigations


def _still_same_page(page: Page, navigations: list[str]) -> bool:
    return navigations == [] and page.evaluate("() => window.__samePage === true")


def _status_badge(page: Page):
    return page.locator("#rotation-status .status-line [data-rotation-status]")


def test_set_up_rotation_from_scratch_rotate_and_reveal_what_aws_holds(
    page, live_server, personas, emulator, gateway
):
    alice = make_user("alice")
    # A superuser named alice an administrator of the gateway's application.
    personas.application.administrators.add(alice)
    login_name = "e2e-alice-admin"
    emulator.create_user(login_name, password=INITIAL_PASSWORD)

    log_in(page, "alice")
    page.get_by_label("Folder name").fill("Cloud accounts")
    page.get_by_role("button", name="Create folder").click()
    expect(page.get_by_role("heading", name="Cloud accounts", level=1)).to_be_visible()
    # Her gateway may rotate the folder's records once she shares it to the application.
    page.get_by_role("link", name="Members").click()
    page.get_by_label("Application", exact=True).select_option(label=personas.application.name)
    page.get_by_role("button", name="Share", exact=True).click()
    expect(page.get_by_text("Shared “Cloud accounts” to the application")).to_be_visible()
    page.get_by_role("main").get_by_role("link", name="Cloud accounts").first.click()
    page.get_by_role("link", name="New PAM Configuration").click()
    page.get_by_label("Title").fill("Local AWS")
    page.get_by_label("Gateway", exact=True).select_option("default")
    page.get_by_label("Access key ID").fill("testing")
    page.get_by_label("Access secret key").fill("testing")
    page.get_by_label("Region names").fill("us-east-1")
    page.get_by_label("Endpoint URL").fill(emulator.endpoint)
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="Local AWS")).to_be_visible()

    # The gateway runs the test; the page shows its answer when it arrives.
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#connection-result")).to_contain_text(
        f"AWS account {ACCOUNT_ID}", timeout=ROTATION_TIMEOUT_MS
    )

    page.get_by_role("main").get_by_role("link", name="Cloud accounts").first.click()
    page.get_by_role("link", name="New PAM User").click()
    page.get_by_label("Title").fill("Alice's admin user")
    page.get_by_label("Login (IAM user name)").fill(login_name)
    page.get_by_label("ARN").fill(f"arn:aws:iam::{ACCOUNT_ID}:user/{login_name}")
    page.get_by_label("Password").fill(INITIAL_PASSWORD)
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="Alice's admin user")).to_be_visible()

    page.get_by_role("link", name="Password Rotation Settings").click()
    page.get_by_label("PAM Configuration").select_option(label="Local AWS")
    page.get_by_label("Schedule", exact=True).select_option("WEEKLY")
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_label("Time", exact=True).fill("09:30")
    page.get_by_label("Weekday", exact=True).select_option("WEDNESDAY")
    page.get_by_label("Length", exact=True).fill("24")
    for label in ("Minimum upper-case", "Minimum lower-case", "Minimum digits", "Minimum symbols"):
        page.get_by_label(label).fill("3")
    page.get_by_role("button", name="Show next runs").click()
    runs = page.locator("#next-runs li time")
    expect(runs).to_have_count(5)
    berlin = ZoneInfo("Europe/Berlin")
    for stamp in runs.evaluate_all("els => els.map(e => e.getAttribute('datetime'))"):
        local = datetime.fromisoformat(stamp).astimezone(berlin)
        assert (local.strftime("%A"), local.hour, local.minute) == ("Wednesday", 9, 30), stamp
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Password Rotation Settings saved.")).to_be_visible()
    expect(page.locator("#rotation-panel")).to_contain_text("Local AWS")

    navigations = _watch_for_reloads(page)
    page.get_by_role("button", name="Rotate", exact=True).click()
    expect(_status_badge(page)).to_have_text("Succeeded", timeout=ROTATION_TIMEOUT_MS)
    assert _still_same_page(page, navigations), navigations

    page.get_by_role("button", name="Reveal", exact=True).click()
    shown = page.locator("#password-value").inner_text()
    held = emulator.passwords()[login_name]
    assert shown == held
    assert held != INITIAL_PASSWORD
    assert len(held) == 24


def test_rotating_a_user_without_console_access_fails_with_the_reason_on_the_page(
    page, live_server, personas, emulator, gateway
):
    emulator.create_user("no-console-user", password=None)
    config = make_configuration(
        personas.folder, personas.gateway, endpoint=emulator.endpoint, access_secret_key="testing"
    )
    record = make_pam_user(personas.folder, "no-console-user", password="Old-Passw0rd!")
    rotation_on_demand(record, config)

    log_in(page, "editor")
    page.goto(f"/records/{record.uid}/")
    navigations = _watch_for_reloads(page)
    page.get_by_role("button", name="Rotate", exact=True).click()
    expect(_status_badge(page)).to_have_text("Failed", timeout=ROTATION_TIMEOUT_MS)
    expect(page.locator("#rotation-status").get_by_role("alert")).to_contain_text(
        'The IAM user "no-console-user" has no AWS Console access'
    )
    assert _still_same_page(page, navigations), navigations
    assert emulator.passwords()["no-console-user"] is None
