"""The schedule widget in a browser (issue 12, defect 9; RUN_ONCE of issue 13): a PAM
Configuration's default schedule is chosen with the same fields as a record's, never typed as
JSON; only the fields of the chosen type show; a one-time run is chosen with a date and time."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rotation.models import RotationSettings
from tests.conftest import make_configuration, make_pam_user
from tests.e2e.conftest import log_in, save_screenshots

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway, access_key_id="AKIATEST")


def test_a_configurations_default_schedule_is_set_through_the_widget(
    page, live_server, personas, config
):
    log_in(page, "editor")
    page.goto(f"/configurations/{config.uid}/edit/")
    kind = page.get_by_label("Schedule", exact=True)
    expect(kind).to_have_value("ON_DEMAND")
    # On demand reads no other field; the JSON box is there only for those who choose it.
    for name in ("tz", "time", "weekday", "once_at", "cron", "default_rotation_schedule"):
        expect(page.locator(f"[data-field={name}]")).to_be_hidden()

    kind.select_option("WEEKLY")
    for name in ("tz", "time", "interval_count", "weekday"):
        expect(page.locator(f"[data-field={name}]")).to_be_visible()
    expect(page.locator("[data-field=once_at]")).to_be_hidden()
    expect(page.locator("[data-field=default_rotation_schedule]")).to_be_hidden()
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_label("Time", exact=True).fill("04:15")
    page.get_by_label("Weekday", exact=True).select_option("FRIDAY")
    save_screenshots(page, "configuration-default-schedule-widget", reload=False)
    page.get_by_role("button", name="Save").click()

    expect(page.locator("#default-schedule")).to_contain_text(
        "Weekly on Friday at 04:15 (Europe/Berlin)"
    )
    config.refresh_from_db()
    assert config.default_rotation_schedule == {
        "type": "WEEKLY",
        "time": "04:15:00",
        "tz": "Europe/Berlin",
        "intervalCount": 1,
        "weekday": "FRIDAY",
    }


def test_a_one_time_run_is_chosen_with_a_date_and_time(page, live_server, personas, config):
    record = make_pam_user(personas.folder, "once.user", password="Old-Passw0rd!")
    log_in(page, "editor")
    page.goto(f"/records/{record.uid}/rotation/")
    page.get_by_label("PAM Configuration").select_option(config.uid)
    page.get_by_label("Schedule", exact=True).select_option("RUN_ONCE")
    expect(page.locator("[data-field=once_at]")).to_be_visible()
    expect(page.locator("[data-field=time]")).to_be_hidden()
    page.get_by_label("Time zone").select_option("Etc/UTC")
    page.get_by_label("Date and time").fill("2031-05-01T09:00")
    # The next runs follow the fields as they change: the one run.
    expect(page.locator("ol#next-runs li")).to_have_count(1)
    expect(page.locator("ol#next-runs li")).to_contain_text("2031-05-01 09:00")
    save_screenshots(page, "rotation-settings-run-once", reload=False)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#rotation-facts")).to_contain_text("Once on 2031-05-01 at 09:00 (Etc/UTC)")
    rs = RotationSettings.objects.get(pam_user=record)
    assert rs.schedule == {"type": "RUN_ONCE", "time": "2031-05-01T09:00:00", "tz": "Etc/UTC"}
