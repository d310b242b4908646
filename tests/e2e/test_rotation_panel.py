"""The rotation panel of a record page and its settings page, as a person sees them (issue 12,
defects 7 and 8): a disabled rotation cannot be started and says why; a schedule that follows
the configuration's default says so, and what that default is now."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rotation.engine import DISABLED
from tests.conftest import make_configuration, make_pam_user
from tests.e2e.conftest import log_in, rotation_on_demand, save_screenshots

pytestmark = pytest.mark.django_db(transaction=True)

DAILY = {"type": "DAILY", "time": "03:00", "tz": "Europe/Berlin", "intervalCount": 1}


@pytest.fixture
def config(personas):
    config = make_configuration(personas.folder, personas.gateway)
    config.default_rotation_schedule = DAILY
    config.save()
    return config


def _fact(page, term: str):
    return page.locator("#rotation-facts dt", has_text=term).locator(
        "xpath=following-sibling::dd[1]"
    )


def test_disabled_rotation_has_a_disabled_rotate_button_with_the_reason(
    page, live_server, personas, config
):
    record = make_pam_user(personas.folder, "disabled.user", password="Old-Passw0rd!")
    rs = rotation_on_demand(record, config)
    rs.enabled = False
    rs.save()
    log_in(page, "editor")
    page.goto(f"/records/{record.uid}/")

    rotate = page.get_by_role("button", name="Rotate", exact=True)
    expect(rotate).to_be_visible()
    expect(rotate).to_be_disabled()
    expect(rotate).to_have_accessible_description(DISABLED)
    expect(page.locator("#rotate-unavailable")).to_be_visible()
    expect(_fact(page, "Next run")).to_have_text("none: rotation is disabled")
    save_screenshots(page, "record-rotation-disabled")


def test_inherited_schedule_says_it_follows_the_configurations_default(
    page, live_server, personas, config
):
    record = make_pam_user(personas.folder, "inheriting.user", password="Old-Passw0rd!")
    rs = rotation_on_demand(record, config)
    rs.use_configuration_schedule = True
    rs.save()
    log_in(page, "editor")
    page.goto(f"/records/{record.uid}/")
    expect(_fact(page, "Schedule")).to_have_text(
        "Follows the configuration’s default, which is now: Daily at 03:00 (Europe/Berlin)"
    )
    expect(page.get_by_role("button", name="Rotate", exact=True)).to_be_enabled()
    save_screenshots(page, "record-rotation-inherited-schedule")

    page.get_by_role("link", name="Password Rotation Settings").click()
    expect(page.locator("#schedule-source")).to_have_text(
        "Follows the default schedule of configuration “AWS IAM Configuration”, which is now: "
        "Daily at 03:00 (Europe/Berlin)"
    )
    expect(page.locator("ol#next-runs li")).to_have_count(5)
    save_screenshots(page, "rotation-settings-inherited-schedule")


def test_settings_page_shows_the_next_runs_when_the_only_error_is_elsewhere(
    page, live_server, personas, config
):
    record = make_pam_user(personas.folder, "erring.user", password="Old-Passw0rd!")
    log_in(page, "editor")
    page.goto(f"/records/{record.uid}/rotation/")
    page.get_by_label("Schedule", exact=True).select_option("DAILY")
    page.get_by_label("Length").fill("3")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("[data-field=length] .field-error")).to_be_visible()
    expect(page.get_by_text("Correct the errors above")).to_have_count(0)
    expect(page.locator("ol#next-runs li")).to_have_count(5)
    # The answer to a POST: screenshots without reloading it.
    save_screenshots(page, "rotation-settings-error-elsewhere", reload=False)
