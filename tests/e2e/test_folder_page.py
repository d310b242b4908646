"""The folder page in a browser (issue 12, "Folder page"): the rotation columns, a filter and
a sort chosen by clicking, kept in the address, and the search across folders from the
navigation; screenshots at 1280 and 375 px."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from rotation.models import Rotation, RotationSettings
from tests.conftest import make_configuration, make_pam_user
from tests.e2e.conftest import log_in, save_screenshots

pytestmark = pytest.mark.django_db(transaction=True)


def _query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_filter_and_sort_the_folder_page(page, live_server, personas):
    config = make_configuration(personas.folder, personas.gateway)
    now = timezone.now()
    for n, (name, status) in enumerate(
        [("alpha", "failed"), ("bravo", "succeeded"), ("charlie", "failed"), ("delta", "")]
    ):
        record = make_pam_user(personas.folder, name, title=f"AWS user: {name}")
        RotationSettings.objects.create(
            pam_user=record,
            configuration=config,
            next_run_at=now + timedelta(days=n + 1),
            last_rotated_at=now - timedelta(days=n) if status == "succeeded" else None,
        )
        if status:
            Rotation.objects.create(
                pam_user=record,
                configuration=config,
                gateway_name="default",
                trigger="scheduled",
                status=status,
                error="AccessDenied" if status == "failed" else "",
                finished_at=now - timedelta(hours=n + 1),
            )

    log_in(page, "viewer")
    page.goto(f"/folders/{personas.folder.uid}/")
    rows = page.locator("#records-table tbody tr")
    expect(rows).to_have_count(4)
    expect(page.get_by_role("columnheader", name="Rotation status")).to_be_visible()

    page.get_by_role("navigation", name="Filter PAM Users").get_by_role(
        "link", name="Failed", exact=True
    ).click()
    expect(rows).to_have_count(2)
    assert _query(page) == {"status": "failed"}
    expect(rows.nth(0)).to_contain_text("alpha")

    page.get_by_role("link", name="Next run").click()  # ascending
    page.get_by_role("link", name="Next run ▲").click()  # flips to descending
    expect(page.get_by_role("columnheader", name="Next run ▼")).to_have_attribute(
        "aria-sort", "descending"
    )
    assert _query(page) == {"status": "failed", "sort": "next_run", "dir": "desc"}
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("charlie")
    expect(rows.nth(1)).to_contain_text("alpha")
    expect(rows.nth(0).locator('[data-column="status"]')).to_have_text("Failed")
    save_screenshots(page, "folder-page-filtered-sorted")

    # The navigation's search finds records across the person's folders.
    page.get_by_role("searchbox", name="Search all your folders").fill("bravo")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Search your folders")).to_be_visible()
    expect(page.get_by_role("link", name="AWS user: bravo")).to_be_visible()
    save_screenshots(page, "search-across-folders")


def test_rename_and_delete_a_folder(page, live_server, personas):
    make_pam_user(personas.folder, "alpha", title="AWS user: alpha")
    log_in(page, "manager")
    page.goto(f"/folders/{personas.folder.uid}/")
    save_screenshots(page, "folder-page-manager")
    page.get_by_label("New name").fill("Platform team")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("heading", name="Platform team", exact=True)).to_be_visible()
    expect(page.get_by_text("Renamed the folder “Team” to “Platform team”.")).to_be_visible()

    page.get_by_label("Type the folder's name to confirm").fill("platform")
    page.get_by_role("button", name="Delete folder").click()
    expect(page.get_by_text("The folder was not deleted: Type “Platform team”")).to_be_visible()
    page.get_by_label("Type the folder's name to confirm").fill("Platform team")
    page.get_by_role("button", name="Delete folder").click()
    expect(page.get_by_role("heading", name="My folders")).to_be_visible()
    expect(page.get_by_text("Deleted the folder “Platform team”")).to_be_visible()
