"""Test connection in the browser: the button hands the test to the configuration's gateway (a
real `manage.py qcluster`) and the page shows the answer when it arrives, without a reload; with
no gateway running, the page says so."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import make_configuration
from tests.e2e.conftest import log_in
from tests.emulator import ACCOUNT_ID

pytestmark = pytest.mark.django_db(transaction=True)

GATEWAY_TIMEOUT_MS = 45_000


def test_test_connection_shows_the_gateways_answer_without_a_reload(
    page, live_server, personas, emulator, gateway
):
    config = make_configuration(personas.folder, personas.gateway, endpoint=emulator.endpoint)
    log_in(page, "editor")
    page.goto(f"/configurations/{config.uid}/")
    page.evaluate("() => { window.__samePage = true; }")

    page.get_by_role("button", name="Test connection").click()

    expect(page.locator("#connection-result")).to_contain_text(
        f"AWS account {ACCOUNT_ID}", timeout=GATEWAY_TIMEOUT_MS
    )
    expect(page.locator("#connection-result")).to_contain_text("Tested by the gateway “default”")
    assert page.evaluate("() => window.__samePage === true")


def test_without_a_gateway_the_page_says_it_was_never_seen(page, live_server, personas):
    config = make_configuration(personas.folder, personas.gateway, endpoint="http://127.0.0.1:9")
    log_in(page, "editor")
    page.goto(f"/configurations/{config.uid}/")

    page.get_by_role("button", name="Test connection").click()

    expect(page.locator("#connection-gateway-down")).to_contain_text(
        "The gateway “default” has never been seen"
    )
    expect(page.locator("[data-connection-status]")).to_have_text("Queued")
