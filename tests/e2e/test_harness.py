"""The browser harness itself: screenshots of failed tests, the same-origin rule."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.e2e.conftest import REPORTS, screenshot_on_failure

pytestmark = pytest.mark.django_db(transaction=True)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _node(nodeid: str, **outcomes: bool):
    reports = {when: SimpleNamespace(failed=bad) for when, bad in outcomes.items()}
    return SimpleNamespace(nodeid=nodeid, stash={REPORTS: reports})


def test_a_failed_browser_test_leaves_a_screenshot_named_after_it(browsing):
    page = browsing.new_page()
    page.goto("/login/")
    node = _node("tests/e2e/test_pretend.py::test_it[375]", setup=False, call=True)
    saved = screenshot_on_failure(node, [page])
    try:
        assert [p.name for p in saved] == ["tests_e2e_test_pretend.py_test_it_375.png"]
        assert saved[0].parent.name == "test-artifacts"
        assert saved[0].read_bytes().startswith(PNG_MAGIC)
    finally:
        for path in saved:
            path.unlink(missing_ok=True)


def test_a_passing_browser_test_leaves_no_screenshot(browsing):
    page = browsing.new_page()
    page.goto("/login/")
    node = _node("tests/e2e/test_pretend.py::test_passes", setup=False, call=False)
    assert screenshot_on_failure(node, [page]) == []


def test_a_request_outside_the_app_origin_is_caught(browsing, live_server):
    page = browsing.new_page()
    page.goto("/login/")
    # An image from elsewhere, as a CDN link in a template would cause; it need not load.
    page.evaluate("() => { const i = new Image(); i.src = 'http://192.0.2.1/x.png'; }")
    page.wait_for_timeout(200)
    assert browsing.foreign_requests() == ["http://192.0.2.1/x.png"]
    browsing.requests.clear()  # this test's own probe must not fail its teardown check
