"""What people without edit rights see, and what a forged request gets."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rotation.models import Rotation
from tests.conftest import make_configuration, make_pam_user
from tests.e2e.conftest import log_in, rotation_on_demand

pytestmark = pytest.mark.django_db(transaction=True)

FORGE = """async ({rotate, reveal}) => {
  const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const post = (url) => fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: {"X-CSRFToken": token, "Accept": "application/json"},
  }).then((r) => r.status);
  return {rotate: await post(rotate), reveal: await post(reveal)};
}"""


@pytest.fixture
def rotated_record(personas):
    config = make_configuration(personas.folder, personas.gateway, endpoint="http://127.0.0.1:9")
    record = make_pam_user(personas.folder, "ViewedUser", password="Old-Passw0rd!")
    rotation_on_demand(record, config)
    return record


def test_a_viewer_sees_no_rotate_button_and_a_forged_rotate_gets_403(
    page, live_server, personas, rotated_record
):
    log_in(page, "viewer")
    page.goto(f"/records/{rotated_record.uid}/")
    expect(page.get_by_role("heading", name="Password rotation")).to_be_visible()
    expect(page.get_by_role("button", name="Rotate", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Password Rotation Settings")).to_have_count(0)

    statuses = page.evaluate(
        FORGE,
        {
            "rotate": f"/records/{rotated_record.uid}/rotate/",
            # The control: the same session and token are accepted where the viewer may act,
            # so the 403 is the permission check, not a CSRF failure.
            "reveal": f"/records/{rotated_record.uid}/reveal/",
        },
    )
    assert statuses == {"rotate": 403, "reveal": 200}
    assert not Rotation.objects.filter(pam_user=rotated_record).exists()


def test_an_outsider_gets_404_for_the_record_page(browsing, live_server, personas, rotated_record):
    page = browsing.new_page()
    log_in(page, "outsider")
    response = page.goto(f"/records/{rotated_record.uid}/")
    assert response.status == 404
    expect(page.get_by_text(rotated_record.title)).to_have_count(0)
