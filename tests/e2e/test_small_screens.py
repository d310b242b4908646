"""Readable on a phone: no page scrolls sideways at 375 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rotation.models import Rotation
from tests.conftest import make_configuration, make_pam_user
from tests.e2e.conftest import log_in, rotation_on_demand, save_screenshots

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


# Every other page a person reaches from the navigation, with who opens it; each is saved at
# 1280 px and 375 px under test-artifacts/page-<name>-<width>.png for a reviewer.
MORE_PAGES = {
    "account": ("editor", lambda w: "/account/"),
    "notifications": ("editor", lambda w: "/account/notifications/"),
    "audit": ("manager", lambda w: "/audit/"),
    "gateways": ("editor", lambda w: "/gateways/"),
    "members": ("manager", lambda w: f"/folders/{w['folder'].uid}/members/"),
    "webhooks": ("manager", lambda w: f"/folders/{w['folder'].uid}/webhooks/"),
    "record new": ("editor", lambda w: f"/folders/{w['folder'].uid}/records/new/"),
    "record edit": ("editor", lambda w: f"/records/{w['record'].uid}/edit/"),
    "configuration new": ("editor", lambda w: f"/folders/{w['folder'].uid}/configurations/new/"),
    "configuration edit": ("editor", lambda w: f"/configurations/{w['config'].uid}/edit/"),
    "rotate all": ("editor", lambda w: f"/folders/{w['folder'].uid}/rotate-all/"),
    "search": ("editor", lambda w: "/search/?q=service"),
}
ALL_PAGES = {**{name: ("editor", url) for name, url in PAGES.items()}, **MORE_PAGES}


@pytest.mark.parametrize("name", list(ALL_PAGES))
def test_page_has_no_horizontal_scrolling_at_375px(browsing, live_server, busy_folder, name):
    persona, url = ALL_PAGES[name]
    page = browsing.new_page(viewport={"width": WIDTH, "height": 800})
    log_in(page, persona)
    response = page.goto(url(busy_folder))
    assert response is not None and response.status == 200, (
        f"{name}: {response and response.status}"
    )
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= WIDTH + TOLERANCE, f"{name} page is {width}px wide at a {WIDTH}px viewport"
    save_screenshots(page, "page-" + name.replace(" ", "-"))


# --- issue 12, defect 11: the chart opens on today; the Members table's buttons on screen ------

FITS = """(selector) => [...document.querySelectorAll(selector)].map((el) => {
  const box = el.getBoundingClientRect();
  return {name: el.getAttribute("aria-label") || el.id || el.textContent.trim(),
          left: box.left, right: box.right};
})"""


def test_rotation_chart_opens_scrolled_to_the_newest_days_at_375px(
    browsing, live_server, busy_folder
):
    page = browsing.new_page(viewport={"width": WIDTH, "height": 800})
    log_in(page, "editor")
    chart = page.locator(".chart-scroll")
    chart.scroll_into_view_if_needed()
    scroll = chart.evaluate(
        "(el) => ({left: el.scrollLeft, width: el.clientWidth, total: el.scrollWidth})"
    )
    assert scroll["total"] > scroll["width"], "the chart should be wider than the screen here"
    assert scroll["left"] > 0, "the chart opened on its oldest days"
    assert scroll["left"] + scroll["width"] >= scroll["total"] - TOLERANCE
    # Today's bar, the last day of the chart, lies inside the visible part of its box.
    box = chart.bounding_box()
    today = page.locator(".chart-svg .chart-day").last.evaluate(
        "(g) => { const r = g.getBBox(); const m = g.getScreenCTM();"
        " return {left: m.e + r.x * m.a, right: m.e + (r.x + r.width) * m.a}; }"
    )
    assert box["x"] - TOLERANCE <= today["left"] and today["right"] <= box["x"] + box["width"] + 1
    save_screenshots(page, "home")


def test_chart_is_not_scrolled_where_it_fits_at_1280px(browsing, live_server, busy_folder):
    page = browsing.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, "editor")
    scroll = page.locator(".chart-scroll").evaluate(
        "(el) => ({left: el.scrollLeft, width: el.clientWidth, total: el.scrollWidth})"
    )
    assert scroll["total"] <= scroll["width"] + TOLERANCE and scroll["left"] == 0


def test_members_buttons_and_permissions_are_on_screen_at_375px(
    browsing, live_server, busy_folder, personas
):
    page = browsing.new_page(viewport={"width": WIDTH, "height": 800})
    log_in(page, "manager")
    page.goto(f"/folders/{busy_folder['folder'].uid}/members/")
    buttons = page.evaluate(FITS, ".table.members button")
    assert len(buttons) == 2 * 3  # Save and Remove for editor, viewer and manager
    checkboxes = page.evaluate(FITS, ".table.members input[type=checkbox]")
    assert len(checkboxes) == 4 * 3
    off_screen = [b for b in buttons + checkboxes if b["left"] < 0 or b["right"] > WIDTH]
    assert off_screen == []
    # Each checkbox still says what it grants (its column header is out of sight when stacked).
    checkbox = page.get_by_label("Edit records (viewer)")
    label = page.locator(f"label[for={checkbox.get_attribute('id')}]")
    expect(label).to_be_visible()
    expect(label).to_have_text("Edit records (viewer)")  # " (viewer)" for screen readers only
    expect(checkbox).not_to_be_checked()
    label.click()
    expect(checkbox).to_be_checked()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= WIDTH + TOLERANCE
    save_screenshots(page, "members")
