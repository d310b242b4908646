"""Rotate all asks first, in a browser (issue 12, "Confirm Rotate all"): the folder's button opens
a confirmation saying how many records will be rotated and how many are skipped and why;
nothing is requested until it is confirmed, and Cancel requests nothing."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rotation import engine
from rotation.models import Rotation
from tests.conftest import make_configuration, make_pam_user
from tests.e2e.conftest import log_in, rotation_on_demand, save_screenshots
from vault.models import PamUser

pytestmark = pytest.mark.django_db(transaction=True)

INITIAL_PASSWORD = "Initial-Passw0rd!"


def test_rotate_all_says_how_many_before_it_rotates_them(
    page, live_server, personas, emulator, gateway
):
    config = make_configuration(
        personas.folder, personas.gateway, endpoint=emulator.endpoint, access_secret_key="testing"
    )
    for login in ("confirm-a", "confirm-b", "confirm-unmanaged"):
        emulator.create_user(login, password=INITIAL_PASSWORD)
        rotation_on_demand(make_pam_user(personas.folder, login, password=INITIAL_PASSWORD), config)
    PamUser.objects.filter(login="confirm-unmanaged").update(managed=False)
    make_pam_user(personas.folder, "confirm-bare", password=INITIAL_PASSWORD)  # no rotation set up

    log_in(page, "editor")
    page.goto(f"/folders/{personas.folder.uid}/")
    page.get_by_role("button", name="Rotate all", exact=True).click()

    expect(page.get_by_role("heading", name="Rotate all?")).to_be_visible()
    expect(page.locator("#confirm-rotate")).to_have_text("2")
    expect(page.locator("#confirm-skipped")).to_have_text("2")
    reasons = page.locator("#skip-reasons li")
    expect(reasons).to_have_count(2)
    expect(reasons.filter(has_text=engine.NOT_MANAGED)).to_have_count(1)
    expect(reasons.filter(has_text=engine.NOT_SET_UP)).to_have_count(1)
    assert not Rotation.objects.exists()  # opening the confirmation requests nothing
    save_screenshots(page, "rotate-all-confirm")

    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", name=personas.folder.name)).to_be_visible()
    assert not Rotation.objects.exists()

    page.get_by_role("button", name="Rotate all", exact=True).click()
    page.get_by_role("button", name="Rotate 2 PAM Users").click()
    expect(page.locator("#batch-count")).to_have_text("2/2", timeout=60_000)
    expect(page.locator("#batch-succeeded")).to_have_text("2")
    held = emulator.passwords()
    for record in PamUser.objects.filter(login__in=["confirm-a", "confirm-b"]):
        assert record.get_secret("password") == held[record.login] != INITIAL_PASSWORD
    assert held["confirm-unmanaged"] == INITIAL_PASSWORD
