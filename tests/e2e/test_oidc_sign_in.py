"""Single sign-on in Chromium (issue 16): the sign-in page's "Sign in with ..." button takes the
browser to a real OpenID Connect provider (oidc-provider-mock, a server in a thread), the
person signs in there, and the provider sends the browser back to the vault."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Browser, Page, Route, expect

from tests.conftest import PASSWORD, make_user
from tests.e2e.conftest import TIMEOUT_MS, save_screenshots, screenshot_on_failure
from tests.vault.test_oidc import configure_sso
from tests.vault.test_oidc import provider as provider  # noqa: F401 - the module's provider
from vault import oidc
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


class Pages:
    """Browser pages that may talk to the vault and the provider only (the provider's own
    pages ask for a stylesheet on a CDN: refused, as on a closed network)."""

    def __init__(self, browser: Browser, vault_url: str, provider_url: str) -> None:
        self.browser = browser
        self.allowed = (vault_url.rstrip("/") + "/", provider_url.rstrip("/") + "/")
        self.vault_url = vault_url
        self.pages: list[Page] = []
        self.refused: list[str] = []

    def _only_ours(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(self.allowed) or url.startswith(("data:", "about:")):
            route.continue_()
        else:
            self.refused.append(url)
            route.abort()

    def new_page(self) -> Page:
        context = self.browser.new_context(base_url=self.vault_url)
        context.set_default_timeout(TIMEOUT_MS)
        context.route("**/*", self._only_ours)
        page = context.new_page()
        self.pages.append(page)
        return page

    def close(self) -> None:
        for page in self.pages:
            page.context.close()


@pytest.fixture
def pages(browser, live_server, provider, settings, request) -> Iterator[Pages]:  # noqa: F811
    configure_sso(settings, provider)
    opened = Pages(browser, live_server.url, provider.url)
    yield opened
    screenshot_on_failure(request.node, opened.pages)
    opened.close()
    oidc.forget_discovery()
    # Nothing but the provider's CDN stylesheet was refused.
    assert all("cdn.jsdelivr.net" in url for url in opened.refused), opened.refused


def sign_in_at_provider(page: Page, sub: str, next_path: str = "") -> None:
    page.goto(f"/login/{'?next=' + next_path if next_path else ''}")
    page.get_by_role("link", name="Sign in with Example ID").click()
    expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    page.get_by_placeholder("sub").fill(sub)
    page.get_by_role("button", name="Authorize").click()


def test_first_sign_in_creates_the_account_with_its_groups(pages, provider, settings):  # noqa: F811
    settings.OIDC_CREATE_USER = True
    settings.OIDC_GROUP_MAP = {"idp-vault-ops": "Operators"}
    provider.person(
        "sub-quinn", email="quinn@example.org", preferred_username="quinn", groups=["idp-vault-ops"]
    )
    page = pages.new_page()
    page.goto("/login/")
    save_screenshots(page, "login-with-sso")

    sign_in_at_provider(page, "sub-quinn")

    expect(page.get_by_text("Logged in as quinn.")).to_be_visible()
    expect(page.get_by_role("heading", name="My folders")).to_be_visible()
    quinn = User.objects.get(username="quinn")
    assert list(quinn.groups.values_list("name", flat=True)) == ["Operators"]
    assert AuditEvent.objects.filter(action="login.sso", actor=quinn).exists()


def test_pre_provisioned_only_refuses_an_unknown_person(pages, provider, settings):  # noqa: F811
    settings.OIDC_CREATE_USER = False
    provider.person("sub-rex", email="rex@example.org")
    page = pages.new_page()

    sign_in_at_provider(page, "sub-rex")

    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_text("There is no account here for this person")).to_be_visible()
    save_screenshots(page, "login-sso-refused", reload=False)
    assert not User.objects.filter(email="rex@example.org").exists()


def test_a_superuser_is_asked_our_code_unless_the_provider_asked_one(pages, provider, settings):  # noqa: F811
    settings.OIDC_SUPERUSERS = True  # administrators may sign in through the provider
    admin = User.objects.create_superuser("sam", "sam@example.org", PASSWORD)
    TOTPDevice.objects.create(user=admin, name="Authenticator app", confirmed=True)

    provider.person("sub-sam", email="sam@example.org", amr=["pwd"])
    without = pages.new_page()
    sign_in_at_provider(without, "sub-sam", "/admin/")
    expect(without.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()

    provider.person("sub-sam", email="sam@example.org", amr=["pwd", "mfa"])
    with_mfa = pages.new_page()
    sign_in_at_provider(with_mfa, "sub-sam", "/admin/")
    expect(with_mfa.get_by_role("heading", name="Site administration")).to_be_visible()


def test_local_passwords_off_for_everyone_but_superusers(pages, settings):
    settings.LOCAL_PASSWORDS = False
    make_user("tess", email="tess@example.org")
    User.objects.create_superuser("breakglass", "root@example.org", PASSWORD)

    page = pages.new_page()
    page.goto("/login/")
    expect(page.locator("#local-passwords-off")).to_be_visible()
    page.get_by_label("Username").fill("tess")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("local passwords are turned off")
    save_screenshots(page, "login-local-passwords-off", reload=False)

    page.get_by_label("Username").fill("breakglass")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="My folders")).to_be_visible()


def test_sso_off_shows_no_button(pages, settings):
    settings.OIDC_RP_CLIENT_ID = ""
    page = pages.new_page()
    page.goto("/login/")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    expect(page.get_by_role("link", name="Sign in with Example ID")).to_have_count(0)
    assert page.goto("/oidc/authenticate/").status == 404
