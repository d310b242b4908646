"""The top navigation and the audit log page in a browser (issue 12, defects 10 and 12): the
signed-in username is text beside Log out, not inside the button; those who may read the audit
log find it in the navigation, one sentence per event with its details behind a toggle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.conftest import make_pam_user
from tests.e2e.conftest import log_in, save_screenshots
from vault.audit import audit_record
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("width", [1280, 375])
def test_username_is_shown_beside_the_log_out_button(browsing, live_server, personas, width):
    page = browsing.new_page(viewport={"width": width, "height": 800})
    log_in(page, "manager")
    nav = page.get_by_role("navigation", name="Main")
    log_out = nav.get_by_role("button", name="Log out", exact=True)
    expect(log_out).to_have_text("Log out")
    user = nav.locator(".nav-user")
    expect(user).to_be_visible()
    expect(user).to_contain_text("manager")
    # Beside it, not inside it: the two boxes do not overlap, and both are on screen.
    button_box, user_box = log_out.bounding_box(), user.bounding_box()
    overlap = min(button_box["x"] + button_box["width"], user_box["x"] + user_box["width"]) - max(
        button_box["x"], user_box["x"]
    )
    same_line = abs(button_box["y"] - user_box["y"]) < button_box["height"]
    assert not (same_line and overlap > 0)
    assert 0 <= user_box["x"] and user_box["x"] + user_box["width"] <= width
    assert 0 <= button_box["x"] and button_box["x"] + button_box["width"] <= width
    if width == 1280:
        save_screenshots(page, "navigation")


def test_audit_log_is_in_the_navigation_only_for_those_who_may_read_it(
    browsing, live_server, personas
):
    editor = browsing.new_page()
    log_in(editor, "editor")
    editor_nav = editor.get_by_role("navigation", name="Main")
    expect(editor_nav.get_by_role("link", name="Audit log")).to_have_count(0)

    manager = browsing.new_page()
    log_in(manager, "manager")
    manager.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    expect(manager.get_by_role("heading", name="Audit log", level=1)).to_be_visible()


def _events(personas, count: int) -> None:
    record = make_pam_user(personas.folder, "bob.deploy", title="AWS user: bob.deploy")
    start = timezone.now() - timedelta(days=1)
    for n in range(count):
        event = audit_record(
            "password.revealed",
            actor=personas.editor,
            obj=record,
            details={"what": "password"},
        )
        AuditEvent.objects.filter(pk=event.pk).update(created_at=start + timedelta(minutes=n))
    audit_record(
        "rotation.scheduled.fail",
        obj=record,
        details={
            "rotation": "r-123",
            "error": "The call UpdateLoginProfile to AWS timed out",
            "may_be_live": True,
        },
    )


def test_audit_log_reads_as_sentences_with_details_and_pages(browsing, live_server, personas):
    _events(personas, 60)
    page = browsing.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, "manager")
    page.goto("/audit/?action=password.revealed")
    events = page.locator("#audit-events > li")
    expect(events).to_have_count(50)
    first = events.first
    expect(first.locator(".audit-sentence")).to_have_text(
        "editor revealed the password of PAM User “AWS user: bob.deploy”."
    )
    # One line per event at 1280 px: the time and the sentence side by side.
    line = first.locator(".audit-line").bounding_box()
    assert line["height"] < 40, line
    details = first.locator("details")
    expect(details.locator("dd").first).not_to_be_visible()
    details.locator("summary").click()
    expect(details.get_by_text("password.revealed", exact=True)).to_be_visible()

    pages = page.get_by_role("navigation", name="Pages of events, above the list")
    expect(pages).to_be_visible()
    expect(pages.locator('[aria-current="page"]')).to_have_text("1")
    save_screenshots(page, "audit-log")
    pages.get_by_role("link", name="Page 2").click()
    expect(page).to_have_url(live_server.url + "/audit/?action=password.revealed&page=2")
    expect(page.locator("#audit-events > li")).to_have_count(10)
    expect(page.get_by_label("Action")).to_have_value("password.revealed")

    page.goto("/audit/?action=rotation.scheduled.fail")
    expect(page.locator(".audit-sentence")).to_have_text(
        "Scheduled rotation of PAM User “AWS user: bob.deploy” failed: The call "
        "UpdateLoginProfile to AWS timed out (the new password may be live in AWS)."
    )
    save_screenshots(page, "audit-log-failed-rotation")
