"""The Gateways page in a browser (issue 12, "Missing things"): found in the navigation, each
gateway the person may see with its state, what it serves and runs, and how to run it; New PAM
Configuration starts on the online gateway."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from rotation.models import Rotation
from tests.conftest import make_configuration, make_pam_user
from tests.e2e.conftest import log_in, rotation_on_demand, save_screenshots
from vault.models import Gateway

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def served(personas):
    Gateway.objects.filter(pk=personas.gateway.pk).update(last_seen_at=timezone.now())
    Gateway.objects.create(name="gw-build", application=personas.application)  # never started
    config = make_configuration(personas.folder, personas.gateway, title="Production account")
    record = make_pam_user(personas.folder, "bob.deploy", password="Old-Passw0rd!")
    rotation_on_demand(record, config)
    Rotation.objects.create(pam_user=record, configuration=config, gateway_name="default")
    return config


def test_the_gateways_page_shows_state_work_and_how_to_run_each(
    browsing, live_server, personas, served
):
    page = browsing.new_page()
    log_in(page, "editor")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Gateways").click()
    expect(page.get_by_role("heading", name="Gateways", level=1)).to_be_visible()

    default = page.locator('[data-gateway="default"]')
    expect(default.get_by_text("online", exact=True)).to_be_visible()
    expect(default.get_by_role("link", name="Production account")).to_be_visible()
    expect(default.get_by_text("1 queued, 0 running")).to_be_visible()
    expect(default.get_by_role("link", name="AWS user: bob.deploy")).to_be_visible()
    expect(default.locator(".gateway-command")).to_have_text(
        "python manage.py pam gateway run default"
    )
    build = page.locator('[data-gateway="gw-build"]')
    expect(build.get_by_text("never seen", exact=True)).to_be_visible()
    expect(build.locator(".gateway-command")).to_have_text(
        "python manage.py pam gateway run gw-build"
    )
    # At 375 px the command wraps inside the page instead of running off it.
    page.set_viewport_size({"width": 375, "height": 800})
    box = build.locator(".gateway-command").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375
    save_screenshots(page, "gateways")


def test_someone_whose_folders_no_gateway_serves_sees_none(browsing, live_server, personas, served):
    page = browsing.new_page()
    log_in(page, "outsider")
    page.goto("/gateways/")
    expect(page.locator("[data-gateway]")).to_have_count(0)
    expect(page.get_by_text("No gateway serves a folder you are a member of")).to_be_visible()


def test_new_configuration_starts_on_the_online_gateway(browsing, live_server, personas, served):
    page = browsing.new_page()
    log_in(page, "editor")
    page.goto(f"/folders/{personas.folder.uid}/configurations/new/")
    expect(page.get_by_label("Gateway", exact=True)).to_have_value("default")
    save_screenshots(page, "configuration-new-online-gateway")
