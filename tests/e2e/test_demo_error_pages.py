"""`make run` shows the product's own error pages (issue 12, defect 5): the demo runs with DEBUG off,
so a missing page is the vault's 404, not Django's debug page listing every URL pattern, and its
pages keep their styles (collected static files served by whitenoise).

This starts the real demo (`manage.py runlocal --demo`: the emulator, a gateway, gunicorn) in a
directory of its own, as tests/rotation/test_runlocal.py does."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Browsing, save_screenshots
from tests.rotation.test_runlocal import DEMO_PASSWORD, Demo


@pytest.fixture
def demo(tmp_path):
    running = Demo(tmp_path)
    running.start()
    yield running
    assert running.ctrl_c() == 0


def test_the_demo_shows_the_products_404_page_with_its_styles(browser, demo, request):
    base = f"http://127.0.0.1:{demo.web}"
    browsing = Browsing(browser, base)
    try:
        page = browsing.new_page()
        page.goto("/login/")
        page.get_by_label("Username").fill("demo")
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="My folders")).to_be_visible()

        response = page.goto("/no-such-page/")
        assert response.status == 404
        expect(page.get_by_role("heading", name="Not found", level=1)).to_be_visible()
        expect(page.get_by_role("link", name="Back to my folders")).to_be_visible()
        body = page.content()
        assert "URLconf" not in body and "Django tried these URL patterns" not in body
        # Styled: the stylesheet (a collected, hashed file) was served with DEBUG off.
        background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        assert background == "rgb(246, 247, 249)"
        # Still signed in, with the navigation of every page.
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Gateways")).to_be_visible()
        save_screenshots(page, "demo-404")

        # A form from before signing in again: the product's 403, saying what to do.
        page.context.clear_cookies()
        response = page.goto("/login/")
        page.context.clear_cookies()  # the form's CSRF token no longer matches any cookie
        page.get_by_label("Username").fill("demo")
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Not allowed", level=1)).to_be_visible()
        expect(page.get_by_text("reload the page and try again")).to_be_visible()
        save_screenshots(page, "demo-403-stale-form", reload=False)
    finally:
        from tests.e2e.conftest import screenshot_on_failure

        screenshot_on_failure(request.node, browsing.pages)
        browsing.close()
    assert not browsing.foreign_requests()
