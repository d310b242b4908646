"""A rotation length below the AWS account's password policy (issue 12, defect 6): once Test
connection has read the policy, the settings form says what the account requires and refuses a
shorter length, and the record shows the length a rotation actually generates, which is the
length of the password AWS then holds."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import make_configuration, make_pam_user
from tests.e2e.conftest import log_in, save_screenshots
from tests.rotation.conftest import make_settings

pytestmark = pytest.mark.django_db(transaction=True)

GATEWAY_TIMEOUT_MS = 45_000


def test_the_form_says_what_the_account_requires_and_the_record_what_is_generated(
    browsing, live_server, personas, emulator, gateway
):
    emulator.iam().update_account_password_policy(
        MinimumPasswordLength=20,
        RequireUppercaseCharacters=True,
        RequireLowercaseCharacters=True,
        RequireNumbers=True,
        RequireSymbols=True,
    )
    emulator.create_user("bob.deploy")
    config = make_configuration(personas.folder, personas.gateway, endpoint=emulator.endpoint)
    record = make_pam_user(personas.folder, "bob.deploy", password="Initial-Passw0rd!")
    # Saved before the account's policy was known (as `pam import` may): 12 characters.
    make_settings(record, config, length=12)

    page = browsing.new_page()
    log_in(page, "editor")
    page.goto(f"/configurations/{config.uid}/")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#connection-result")).to_contain_text(
        "minimum length 20", timeout=GATEWAY_TIMEOUT_MS
    )

    page.goto(f"/records/{record.uid}/")
    complexity = page.locator("#rotation-facts dd", has=page.locator("#complexity-source"))
    expect(complexity).to_contain_text("20 characters, at least 2 upper")
    expect(page.locator("#complexity-source")).to_contain_text("the settings ask for 12 characters")
    save_screenshots(page, "record-complexity-raised-by-policy")

    page.get_by_role("link", name="Password Rotation Settings").click()
    expect(page.locator("#account-policy")).to_contain_text(
        "requires: minimum length 20; requires upper-case, lower-case, digits, symbols"
    )
    page.get_by_role("button", name="Save").click()  # still 12
    expect(page.locator("#id_length_error")).to_contain_text("requires at least 20 characters")
    save_screenshots(page, "rotation-settings-below-account-policy", reload=False)
    page.get_by_label("Length").fill("20")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Password Rotation Settings saved.")).to_be_visible()
    expect(page.locator("#complexity-source")).to_contain_text(
        "Each password meets the AWS account's password policy"
    )

    # What the record says is what AWS gets.
    page.get_by_role("button", name="Rotate", exact=True).click()
    expect(page.locator("#rotation-status")).to_contain_text(
        "Succeeded", timeout=GATEWAY_TIMEOUT_MS
    )
    assert len(emulator.passwords()["bob.deploy"]) == 20
