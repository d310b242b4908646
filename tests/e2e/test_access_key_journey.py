"""A person discovers an AWS account's IAM users, imports one, sets up access-key rotation,
rotates it and reveals the new key, in Chromium, with a real gateway and the AWS emulator."""

from __future__ import annotations

import json
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.conftest import make_configuration
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT_MS = 45_000


def _secret_aws_holds(endpoint: str, key_id: str) -> str | None:
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=10) as resp:
        keys = json.load(resp)["iam"].get("AccessKey", [])
    return next((k["secret_access_key"] for k in keys if k["access_key_id"] == key_id), None)


def test_discover_import_set_up_key_rotation_rotate_and_reveal_the_new_key(
    page, live_server, personas, emulator, gateway
):
    config = make_configuration(
        personas.folder, personas.gateway, endpoint=emulator.endpoint, title="Local AWS"
    )
    emulator.create_user("ci-deployer", password=None)  # an application's user: keys only
    emulator.create_user("ops-admin")
    old_key = emulator.iam().create_access_key(UserName="ci-deployer")["AccessKey"]

    log_in(page, "editor")
    page.goto(f"/configurations/{config.uid}/")
    page.get_by_role("button", name="Discover IAM users").click()
    expect(page.get_by_role("heading", name="Discover IAM users")).to_be_visible()
    expect(page.locator("#discovery-status")).to_have_text("Succeeded", timeout=TIMEOUT_MS)
    row = page.locator("#discovered-users tr[data-user='ci-deployer']")
    expect(row).to_contain_text("Active")
    expect(row.locator("td").nth(4)).to_have_text("no")  # no console access

    row.get_by_role("checkbox", name="Select ci-deployer").check()
    page.get_by_label("Import into folder").select_option(label=personas.folder.name)
    page.get_by_role("button", name="Import selected").click()
    expect(page.get_by_text("Imported 1 IAM user into")).to_be_visible()
    row = page.locator("#discovered-users tr[data-user='ci-deployer']")
    row.get_by_role("link", name="AWS user: ci-deployer").click()
    expect(page.get_by_role("heading", name="AWS user: ci-deployer")).to_be_visible()

    page.get_by_role("link", name="Password Rotation Settings").click()
    page.get_by_label("Rotation method").select_option("iam_access_key")
    expect(page.locator("#access-key-grace")).to_be_visible()
    expect(page.locator("#password-complexity")).to_be_hidden()
    page.get_by_label("Deactivate the replaced key after (hours)").fill("12")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Password Rotation Settings saved.")).to_be_visible()

    page.get_by_role("button", name="Rotate", exact=True).click()
    status = page.locator("#rotation-status .status-line [data-rotation-status]")
    expect(status).to_have_text("Succeeded", timeout=TIMEOUT_MS)
    page.reload()
    key_id = page.locator("#access-key-id").inner_text()
    assert key_id and key_id != old_key["AccessKeyId"]
    page.get_by_role("button", name="Reveal the secret access key").click()
    shown = page.locator("#access-secret-value").inner_text()
    assert shown == _secret_aws_holds(emulator.endpoint, key_id)
    # The key the vault never held stays where it was: the user now has both.
    listed = emulator.iam().list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"]
    assert {k["AccessKeyId"] for k in listed} == {key_id, old_key["AccessKeyId"]}
