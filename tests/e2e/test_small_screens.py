"""Readable on a phone: no page scrolls sideways at 375 px."""

from __future__ import annotations

import pytest

from rotation.models import Rotation
from tests.conftest import make_configuration, make_pam_user
from tests.e2e.conftest import log_in, rotation_on_demand

pytestmark = pytest.mark.django_db(transaction=True)

WIDTH = 375
TOLERANCE = 1  # sub-pixel rounding


@pytest.fixture
def busy_folder(personas):
    """A folder with what makes pages wide: long names, ARNs, a rotation history with errors."""
    config = make_configuration(
        personas.folder,
        personas.gateway,
        endpoint="https://iam.vpce-0123456789abcdef0-abcdefgh.us-east-1.vpce.amazonaws.com",
        title="Production account with a rather long configuration title",
    )
    login = "service-account-with-a-long-iam-user-name-for-deployments"
    record = make_pam_user(personas.folder, login, password="Old-Passw0rd!")
    rotation_on_demand(record, config)
    for status, error in (
        (Rotation.FAILED, f'The IAM user "{login}" has no AWS Console access (no login profile).'),
        (Rotation.SUCCEEDED, ""),
    ):
        Rotation.objects.create(
            pam_user=record,
            configuration=config,
            gateway_name="default",
            trigger="on_demand",
            requested_by=personas.editor,
            status=status,
            error=error,
        )
    return {"folder": personas.folder, "record": record, "config": config}


PAGES = {
    "home": lambda w: "/",
    "folder": lambda w: f"/folders/{w['folder'].uid}/",
    "record": lambda w: f"/records/{w['record'].uid}/",
    "rotation settings": lambda w: f"/records/{w['record'].uid}/rotation/",
    "configuration": lambda w: f"/configurations/{w['config'].uid}/",
}


@pytest.mark.parametrize("name", list(PAGES))
def test_page_has_no_horizontal_scrolling_at_375px(browsing, live_server, busy_folder, name):
    page = browsing.new_page(viewport={"width": WIDTH, "height": 800})
    log_in(page, "editor")
    page.goto(PAGES[name](busy_folder))
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= WIDTH + TOLERANCE, f"{name} page is {width}px wide at a {WIDTH}px viewport"
