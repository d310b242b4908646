"""Browser tests: Playwright driving the system Chromium against a live server, a real gateway
(`manage.py qcluster`) and the AWS emulator.

Without a Chromium the tests are skipped with one line on the terminal; with REQUIRE_BROWSER=1
(CI) a missing browser fails them instead. Every page may only talk to the app's own origin, and a
failing test leaves a screenshot per page under test-artifacts/ (git-ignored), where
`save_screenshots` also keeps pages at 1280 and 375 px for review.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Error, Page, expect, sync_playwright

from rotation import aws
from rotation.models import RotationSettings
from tests.cluster import ROOT
from tests.cluster import Gateway as GatewayProcess
from tests.conftest import PASSWORD

E2E_DIR = Path(__file__).resolve().parent
ARTIFACTS = ROOT / "test-artifacts"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container has no user namespaces for the sandbox
    "--disable-gpu",
    # Keep Chromium from calling out on a closed network (updates, sync, field trials, QUIC).
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 10_000
REPORTS = pytest.StashKey[dict]()


def chromium_path() -> str:
    return os.environ.get("CHROMIUM_PATH") or DEFAULT_CHROMIUM


def browser_required() -> bool:
    return os.environ.get("REQUIRE_BROWSER") == "1"


def chromium_found() -> bool:
    path = chromium_path()
    return os.path.isfile(path) and os.access(path, os.X_OK)


def skip_reason() -> str:
    return f"no Chromium at {chromium_path()} (set CHROMIUM_PATH); browser tests skipped"


# --- collection: mark, and skip with one line when there is no browser -----------------------


def _is_e2e(item: pytest.Item) -> bool:
    return E2E_DIR in Path(str(item.path)).parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if _is_e2e(item)]
    for item in ours:
        item.add_marker(pytest.mark.browser)
    if not ours or chromium_found() or browser_required():
        return
    skip = pytest.mark.skip(reason=skip_reason())
    for item in ours:
        item.add_marker(skip)
    _say_once(config, skip_reason())


def _say_once(config: pytest.Config, line: str) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)
    elif worker == "gw0":
        # Every xdist worker collects the same tests; one of them speaks. A worker's stdout is
        # its channel to the controller, but its stderr is the terminal's.
        os.write(2, f"{line}\n".encode())


# --- failure reports and screenshots -----------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


def failed(node) -> bool:
    reports = node.stash.get(REPORTS, {})
    return any(report.failed for when, report in reports.items() if when in ("setup", "call"))


def artifact_name(nodeid: str) -> str:
    return re.sub(r"[^\w.-]+", "_", nodeid).strip("_")


def save_screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


SCREENSHOT_WIDTHS = (1280, 375)


def save_screenshots(
    page: Page, name: str, widths=SCREENSHOT_WIDTHS, *, reload: bool = True
) -> list[Path]:
    """Screenshots of the page at each width, for a reviewer to look at every page in one
    place: test-artifacts/<name>-<width>.png (full page). The page is loaded again at each
    width so that what its scripts do on load is seen as a person would see it (reload=False
    for the answer to a POST); the viewport it had is restored afterwards, without reloading."""
    before = page.viewport_size
    saved = []
    for width in widths:
        page.set_viewport_size({"width": width, "height": 900})
        if reload:
            page.reload()
            page.wait_for_load_state("load")
        saved.append(save_screenshot(page, f"{name}-{width}"))
    if before:
        page.set_viewport_size(before)
    return saved


def screenshot_on_failure(node, pages: list[Page]) -> list[Path]:
    """One screenshot per open page of a failed test, named after the test; none otherwise."""
    if not failed(node):
        return []
    base = artifact_name(node.nodeid)
    saved = []
    for index, page in enumerate(pages):
        if page.is_closed():
            continue
        name = base if index == 0 else f"{base}-{index + 1}"
        try:
            saved.append(save_screenshot(page, name))
        except Error as exc:  # a crashed page must not hide the test's own failure
            print(f"screenshot {name} failed: {exc}")
    return saved


# --- browser, pages, origin check --------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    if not chromium_found():
        if browser_required():
            pytest.fail(f"REQUIRE_BROWSER=1 but there is no Chromium at {path} (set CHROMIUM_PATH)")
        pytest.skip(skip_reason())
    # Playwright's sync API keeps an asyncio loop running on this thread, which Django's ORM
    # takes for an async context; the test's own ORM calls are synchronous and safe.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        try:
            launched = playwright.chromium.launch(
                executable_path=path, headless=True, args=CHROMIUM_ARGS
            )
        except Error as exc:
            pytest.fail(f"Chromium at {path} did not start: {exc}")
        yield launched
        launched.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class Browsing:
    """Pages on the live server; records every request any of them makes."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.requests: list[str] = []
        self.pages: list[Page] = []

    def new_page(self, **context_options) -> Page:
        context = self.browser.new_context(base_url=self.base_url, **context_options)
        context.set_default_timeout(TIMEOUT_MS)
        context.on("request", lambda request: self.requests.append(request.url))
        page = context.new_page()
        self.pages.append(page)
        return page

    def foreign_requests(self) -> list[str]:
        own = self.base_url.rstrip("/") + "/"
        return [
            url
            for url in self.requests
            if not (url.startswith(own) or url.startswith(("data:", "about:")))
        ]

    def close(self) -> None:
        for page in self.pages:
            page.context.close()


@pytest.fixture
def browsing(browser, live_server, request) -> Iterator[Browsing]:
    session = Browsing(browser, live_server.url)
    yield session
    screenshot_on_failure(request.node, session.pages)
    session.close()
    foreign = session.foreign_requests()
    assert not foreign, f"pages requested URLs outside {live_server.url}: {foreign}"


@pytest.fixture
def page(browsing) -> Page:
    return browsing.new_page()


@pytest.fixture(autouse=True)
def _expect_timeout():
    expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(autouse=True)
def _fresh_aws_caches():
    # The live server runs in this process: forget clients and account ids of earlier tests.
    aws.clear_caches()
    yield
    aws.clear_caches()


# --- the rest of the world: a gateway process, people, records ---------------------------------


@pytest.fixture
def gateway(transactional_db, tmp_path) -> Iterator[GatewayProcess]:
    process = GatewayProcess("default", log_path=tmp_path / "gateway.log").start()
    yield process
    # The write-ahead rotation makes a quick SIGKILL safe; no test looks at the gateway after it.
    process.stop(grace=1.0)


def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="My folders")).to_be_visible()


def rotation_on_demand(record, config) -> RotationSettings:
    return RotationSettings.objects.create(
        pam_user=record,
        configuration=config,
        schedule={"type": "ON_DEMAND"},
        length=24,
        min_upper=2,
        min_lower=2,
        min_digits=2,
        min_symbols=2,
    )
