"""A rotation queued on a gateway that never runs no longer blocks its record (issue 12, defect
1): the home page lists it under "Needs attention" with the command that starts the gateway,
and the record page's Cancel rotation button ends it, after which the record rotates again and
the configuration it used can be deleted."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rotation.models import Rotation
from tests.conftest import make_configuration, make_pam_user
from tests.e2e.conftest import log_in, rotation_on_demand, save_screenshots
from vault.models import Gateway, PamConfiguration

pytestmark = pytest.mark.django_db(transaction=True)


def test_cancel_a_rotation_waiting_on_a_gateway_that_never_runs(page, live_server, personas):
    gw2 = Gateway.objects.create(name="gw2", application=personas.application)
    stuck = make_configuration(personas.folder, gw2, title="Never started")
    record = make_pam_user(personas.folder, "stuck.user", password="Old-Passw0rd!")
    rotation_on_demand(record, stuck)

    log_in(page, "editor")
    page.goto(f"/records/{record.uid}/")
    page.get_by_role("button", name="Rotate", exact=True).click()
    status = page.locator("#rotation-status")
    expect(status.locator("[data-rotation-status]")).to_have_text("Queued")
    expect(page.locator("#gateway-never-seen")).to_contain_text(
        "python manage.py pam gateway run gw2"
    )
    cancel = page.get_by_role("button", name="Cancel rotation")
    expect(cancel).to_be_visible()
    expect(cancel).to_have_accessible_description(
        "It has not started: cancelling ends it as failed and the record keeps its current "
        "password."
    )

    # The home page says what waits, on which gateway, and what to do.
    page.goto("/")
    waiting = page.locator("#dashboard-waiting")
    expect(waiting.get_by_role("link", name="AWS user: stuck.user")).to_be_visible()
    expect(waiting).to_contain_text("The gateway “gw2” is offline (never seen)")
    expect(waiting.locator("code").first).to_have_text("python manage.py pam gateway run gw2")
    save_screenshots(page, "home-rotation-waiting-on-offline-gateway")

    waiting.get_by_role("link", name="AWS user: stuck.user").click()
    save_screenshots(page, "record-rotation-queued-gateway-never-seen")
    page.get_by_role("button", name="Cancel rotation").click()

    expect(
        page.get_by_text("Rotation cancelled: the record keeps its current password.")
    ).to_be_visible()
    expect(status.locator("[data-rotation-status]")).to_have_text("Failed")
    expect(status.locator(".msg-error")).to_have_text("Cancelled by editor before it started.")
    expect(page.get_by_role("button", name="Cancel rotation")).to_have_count(0)
    expect(page.get_by_role("button", name="Rotate", exact=True)).to_be_enabled()
    save_screenshots(page, "record-rotation-cancelled", reload=False)
    assert Rotation.objects.get(pam_user=record).status == Rotation.FAILED

    # Nothing waits any more, and the configuration it used can go once no record names it.
    page.goto("/")
    expect(page.locator("#dashboard-waiting")).to_have_count(0)
    record.rotation_settings.configuration = make_configuration(
        personas.folder, personas.gateway, title="Working"
    )
    record.rotation_settings.save()
    page.goto(f"/configurations/{stuck.uid}/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Deleted the configuration “Never started”.")).to_be_visible()
    assert not PamConfiguration.objects.filter(pk=stuck.pk).exists()
