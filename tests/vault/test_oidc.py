"""Single sign-on through a real OpenID Connect provider (oidc-provider-mock, a WSGI server in
a thread): the Django test client goes to the provider, `requests` answers its sign-in form as
the person would, and the client follows the provider's redirect back to /oidc/callback/."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.contrib.auth.models import Group, User
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from oidc_provider_mock import run_server_in_thread

from tests.conftest import PASSWORD, make_user
from vault import oidc
from vault.models import AuditEvent
from vault.security import PASSWORD_CONFIRMED_AT

pytestmark = pytest.mark.django_db

CLIENT_ID = "vault-test-client"


class Provider:
    """The running provider: its address, and its people (sub -> claims)."""

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def person(self, sub: str, verified: bool | None = True, **claims) -> str:
        """A person at the provider; `verified` is its email_verified claim (None: left out,
        as some providers do)."""
        if verified is not None:
            claims.setdefault("email_verified", verified)
        answer = requests.put(f"{self.url}/users/{sub}", json=claims, timeout=10)
        answer.raise_for_status()
        return sub

    def approve(self, authorize_url: str, sub: str) -> str:
        """The person signs in at the provider; returns where it sends the browser back."""
        assert authorize_url.startswith(self.url), authorize_url
        answer = requests.post(authorize_url, data={"sub": sub}, allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text[:500]
        return answer.headers["Location"]


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with run_server_in_thread() as server:
        yield Provider(f"http://localhost:{server.server_port}")


def configure_sso(settings, provider: Provider, **overrides) -> None:
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = "client-secret-for-tests"
    settings.OIDC_OP_DISCOVERY_URL = provider.discovery_url
    settings.OIDC_PROVIDER_NAME = "Example ID"
    for name, value in overrides.items():
        setattr(settings, name, value)
    oidc.forget_discovery()


@pytest.fixture
def sso(settings, provider) -> Provider:
    configure_sso(settings, provider)
    yield provider
    oidc.forget_discovery()


def sign_in(client: Client, provider: Provider, sub: str, query: str = ""):
    """Press "Sign in with ..." and sign in at the provider; returns the callback's answer."""
    start = client.get(f"/oidc/authenticate/{query}")
    assert start.status_code == 302, start
    back = urlsplit(provider.approve(start["Location"], sub))
    assert back.netloc == "testserver" and back.path == "/oidc/callback/", back
    return client.get(f"{back.path}?{back.query}")


def signed_in_user(client: Client) -> User | None:
    page = client.get("/account/")
    if page.status_code != 200:
        return None
    return page.wsgi_request.user


# --- accounts ------------------------------------------------------------------------------------


def test_first_sign_in_creates_the_account_with_the_mapped_groups(client, sso, settings):
    settings.OIDC_CREATE_USER = True
    settings.OIDC_GROUP_MAP = {"idp-vault-ops": "Operators", "idp-auditors": "Auditors"}
    sso.person(
        "sub-ada-7f3",
        email="Ada@Example.org",
        email_verified=True,
        preferred_username="ada",
        given_name="Ada",
        groups=["idp-vault-ops", "idp-unrelated"],
    )

    answer = sign_in(client, sso, "sub-ada-7f3", "?next=/account/")

    assert answer.status_code == 302 and answer["Location"] == "/account/"
    user = User.objects.get(email__iexact="ada@example.org")
    assert user.username == "ada" and user.first_name == "Ada"
    assert not user.has_usable_password()  # only the provider signs this person in
    assert set(user.groups.values_list("name", flat=True)) == {"Operators"}
    assert signed_in_user(client) == user
    event = AuditEvent.objects.get(action="login.sso")
    assert event.actor == user
    assert event.details["subject"] == "sub-ada-7f3"
    assert AuditEvent.objects.filter(action="person.created", details__username="ada").exists()


def test_a_username_taken_by_someone_else_gets_a_number(client, sso, settings):
    settings.OIDC_CREATE_USER = True
    make_user("grace", email="grace@elsewhere.example")
    sso.person("sub-grace", email="grace@example.org", preferred_username="grace")

    sign_in(client, sso, "sub-grace")

    created = User.objects.get(email="grace@example.org")
    assert created.username == "grace-2"
    assert signed_in_user(client) == created


def test_pre_provisioned_only_refuses_an_unknown_person(client, sso, settings):
    settings.OIDC_CREATE_USER = False
    sso.person("sub-mallory", email="mallory@example.org")

    answer = sign_in(client, sso, "sub-mallory")

    assert answer.status_code == 302 and answer["Location"].startswith("/login/")
    assert not User.objects.filter(email="mallory@example.org").exists()
    assert signed_in_user(client) is None
    page = client.get(answer["Location"])
    assert "There is no account here for this person" in page.content.decode()
    refused = AuditEvent.objects.get(action="login.sso_refused")
    assert refused.details["subject"] == "sub-mallory"


def test_a_pre_provisioned_person_is_matched_by_email_and_groups_follow_the_claim(
    client, sso, settings
):
    settings.OIDC_CREATE_USER = False
    settings.OIDC_GROUP_MAP = {"idp-vault-ops": "Operators", "idp-auditors": "Auditors"}
    person = make_user("bob.local", email="bob@example.org")
    auditors = Group.objects.create(name="Auditors")
    managed_here = Group.objects.create(name="Managed here")
    person.groups.add(auditors, managed_here)
    sso.person("sub-bob", email="BOB@example.org", groups=["idp-vault-ops"])

    sign_in(client, sso, "sub-bob")

    assert signed_in_user(client) == person
    # Mapped groups follow the provider; a group the mapping does not name is left alone.
    assert set(person.groups.values_list("name", flat=True)) == {"Operators", "Managed here"}
    assert person.has_usable_password()  # the local password is not touched
    assert User.objects.count() == 1


def test_group_mapping_grants_the_enforcement_policies_of_the_group(client, sso, settings):
    from django.contrib.auth.models import Permission

    from vault.access import policy_allows

    settings.VAULT_ENFORCE_POLICIES = True
    settings.OIDC_GROUP_MAP = {"idp-revealers": "Revealers"}
    group = Group.objects.create(name="Revealers")
    group.permissions.add(
        Permission.objects.get(codename="reveal", content_type__app_label="vault")
    )
    person = make_user("carol", email="carol@example.org")
    assert not policy_allows(person, "reveal")

    sso.person("sub-carol", email="carol@example.org", groups=["idp-revealers"])
    sign_in(client, sso, "sub-carol")
    assert policy_allows(User.objects.get(pk=person.pk), "reveal")

    # Removed from the provider's group: the next sign-in takes the policy away.
    sso.person("sub-carol", email="carol@example.org", groups=[])
    sign_in(Client(), sso, "sub-carol")
    assert not policy_allows(User.objects.get(pk=person.pk), "reveal")


def test_an_inactive_account_is_refused(client, sso):
    make_user("dave", email="dave@example.org", is_active=False)
    sso.person("sub-dave", email="dave@example.org")

    answer = sign_in(client, sso, "sub-dave")

    assert answer["Location"].startswith("/login/")
    assert signed_in_user(client) is None
    assert "deactivated" in client.get(answer["Location"]).content.decode()


def test_an_unverified_or_missing_email_is_refused(client, sso, settings):
    settings.OIDC_CREATE_USER = True
    make_user("erin", email="erin@example.org")
    sso.person("sub-erin", email="erin@example.org", email_verified=False)
    assert sign_in(client, sso, "sub-erin")["Location"].startswith("/login/")
    sso.person("sub-noemail", name="No Email")
    assert sign_in(client, sso, "sub-noemail")["Location"].startswith("/login/")
    assert signed_in_user(client) is None
    assert User.objects.count() == 1


def test_an_id_token_from_another_issuer_is_refused(client, settings, provider):
    configure_sso(settings, provider, OIDC_OP_ISSUER="https://login.elsewhere.example")
    make_user("frank", email="frank@example.org")
    provider.person("sub-frank", email="frank@example.org")

    answer = sign_in(client, provider, "sub-frank")

    assert answer["Location"].startswith("/login/")
    assert signed_in_user(client) is None


def test_the_explicit_endpoints_work_without_discovery(client, settings, provider):
    configure_sso(
        settings,
        provider,
        OIDC_OP_DISCOVERY_URL="",
        OIDC_OP_AUTHORIZATION_ENDPOINT=f"{provider.url}/oauth2/authorize",
        OIDC_OP_TOKEN_ENDPOINT=f"{provider.url}/oauth2/token",
        OIDC_OP_USER_ENDPOINT=f"{provider.url}/userinfo",
        OIDC_OP_JWKS_ENDPOINT=f"{provider.url}/jwks",
    )
    person = make_user("gina", email="gina@example.org")
    provider.person("sub-gina", email="gina@example.org")

    sign_in(client, provider, "sub-gina")

    assert signed_in_user(client) == person


# --- local passwords -----------------------------------------------------------------------------


def test_local_passwords_off_refuses_a_normal_user_but_allows_a_superuser(sso, settings):
    settings.LOCAL_PASSWORDS = False
    make_user("henry", email="henry@example.org")
    User.objects.create_superuser("breakglass", "root@example.org", PASSWORD)

    normal = Client()
    refused = normal.post("/login/", {"username": "henry", "password": PASSWORD})
    assert refused.status_code == 200
    assert "local passwords are turned off" in refused.content.decode()
    assert signed_in_user(normal) is None

    admin = Client()
    allowed = admin.post("/login/", {"username": "breakglass", "password": PASSWORD})
    assert allowed.status_code == 302
    assert signed_in_user(admin).username == "breakglass"


def test_local_passwords_on_by_default(sso):
    make_user("ivan", email="ivan@example.org")
    client = Client()
    assert client.post("/login/", {"username": "ivan", "password": PASSWORD}).status_code == 302
    assert signed_in_user(client).username == "ivan"


def test_a_failed_local_sign_in_never_calls_the_provider(settings):
    # Django tries every backend when a password is wrong; the OpenID Connect one must not take
    # a sign-in address carrying `code` and `state` for the provider's answer and call it.
    calls: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self):
            calls.append(self.path)
            self.send_error(404)

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings.OIDC_RP_CLIENT_ID = CLIENT_ID
        settings.OIDC_OP_DISCOVERY_URL = (
            f"http://127.0.0.1:{server.server_port}/.well-known/openid-configuration"
        )
        oidc.forget_discovery()
        make_user("judy")
        client = Client()
        wrong = client.post("/login/?code=abc&state=def", {"username": "judy", "password": "no"})
        assert wrong.status_code == 200
        right = client.post(
            "/login/?code=abc&state=def", {"username": "judy", "password": PASSWORD}
        )
        assert right.status_code == 302
    finally:
        server.shutdown()
        server.server_close()
    assert calls == []


# --- second factor -------------------------------------------------------------------------------


def _superuser_with_authenticator(username: str) -> User:
    admin = User.objects.create_superuser(username, f"{username}@example.org", PASSWORD)
    TOTPDevice.objects.create(user=admin, name="Authenticator app", confirmed=True)
    return admin


def test_the_providers_mfa_counts_for_a_superuser(client, sso, settings):
    settings.OIDC_SUPERUSERS = True  # administrators may sign in through the provider
    admin = _superuser_with_authenticator("kate")
    sso.person("sub-kate", email="kate@example.org", amr=["pwd", "mfa"])

    answer = sign_in(client, sso, "sub-kate", "?next=/admin/")

    assert answer.status_code == 302 and answer["Location"] == "/admin/"
    console = client.get("/admin/")
    assert console.status_code == 200
    assert console.wsgi_request.user == admin
    event = AuditEvent.objects.get(action="login.sso")
    assert event.details["second_factor"] == "at the provider"
    assert event.details["amr"] == ["pwd", "mfa"]


def test_without_mfa_at_the_provider_we_ask_our_second_factor(client, sso, settings):
    settings.OIDC_SUPERUSERS = True  # administrators may sign in through the provider
    _superuser_with_authenticator("leo")
    sso.person("sub-leo", email="leo@example.org", amr=["pwd"])

    answer = sign_in(client, sso, "sub-leo", "?next=/admin/")

    assert answer.status_code == 302
    assert answer["Location"].startswith("/account/2fa/verify/") or "verify" in answer["Location"]
    assert client.get("/admin/").status_code == 302
    home = client.get("/")
    assert home.status_code == 302 and "verify" in home["Location"]


def test_the_providers_mfa_counts_with_two_factor_required_for_everyone(client, sso, settings):
    settings.VAULT_REQUIRE_2FA = True
    make_user("mia", email="mia@example.org")
    sso.person("sub-mia", email="mia@example.org", amr=["hwk"])
    sign_in(client, sso, "sub-mia")
    assert client.get("/").status_code == 200

    other = Client()
    make_user("ned", email="ned@example.org")
    sso.person("sub-ned", email="ned@example.org", amr=["pwd"])
    sign_in(other, sso, "sub-ned")
    page = other.get("/")
    assert page.status_code == 302 and "setup" in page["Location"]


def test_the_provider_factor_belongs_to_its_session_only(client, sso, settings):
    settings.OIDC_SUPERUSERS = True  # administrators may sign in through the provider
    admin = _superuser_with_authenticator("olga")
    sso.person("sub-olga", email="olga@example.org", amr=["mfa"])
    sign_in(client, sso, "sub-olga")
    assert client.get("/admin/").status_code == 200
    # Another session of the same person, signed in with the password, still owes a code.
    other = Client()
    other.post("/login/", {"username": admin.username, "password": PASSWORD})
    assert other.get("/admin/").status_code == 302


# --- confirming who you are ----------------------------------------------------------------------


def test_confirming_at_the_provider_counts_as_entering_the_password(client, sso):
    person = make_user("pia", email="pia@example.org")
    sso.person("sub-pia", email="pia@example.org")
    sign_in(client, sso, "sub-pia")
    session = client.session
    session[PASSWORD_CONFIRMED_AT] = 0  # long ago
    session.save()

    start = client.get("/oidc/authenticate/?" + urlencode({"confirm": "1", "next": "/account/"}))
    params = parse_qs(urlsplit(start["Location"]).query)
    assert params["prompt"] == ["login"] and params["max_age"] == ["0"]
    back = urlsplit(sso.approve(start["Location"], "sub-pia"))
    answer = client.get(f"{back.path}?{back.query}")

    assert answer["Location"] == "/account/"
    assert client.session[PASSWORD_CONFIRMED_AT] > 0
    assert AuditEvent.objects.filter(action="login.sso_confirmed", actor=person).exists()


def test_the_confirm_page_offers_confirming_at_the_provider(client, sso):
    make_user("pia", email="pia@example.org")
    sso.person("sub-pia", email="pia@example.org")
    sign_in(client, sso, "sub-pia")
    page = client.get("/account/confirm/?" + urlencode({"next": "/account/"})).content.decode()
    assert "/oidc/authenticate/?confirm=1&amp;next=/account/" in page
    assert "Confirm with" in page


def test_a_deactivated_person_signed_in_through_the_provider_is_signed_out(client, sso):
    person = make_user("ivy", email="ivy@example.org")
    sso.person("sub-ivy", email="ivy@example.org")
    sign_in(client, sso, "sub-ivy")
    assert client.get("/account/").status_code == 200
    person.is_active = False
    person.save(update_fields=["is_active"])
    answer = client.get("/account/")
    assert answer.status_code == 302 and "/login/" in answer["Location"]


def test_an_email_the_provider_does_not_say_it_verified_matches_nobody(client, sso):
    make_user("una", email="una@example.org")
    sso.person("sub-una", email="una@example.org", verified=None)
    sign_in(client, sso, "sub-una")
    assert signed_in_user(client) is None
    assert AuditEvent.objects.filter(action="login.sso_refused").exists()


def test_a_superuser_account_is_not_matched_through_the_provider_by_default(client, sso):
    admin = _superuser_with_authenticator("root-sso")
    sso.person("sub-root", email=admin.email, amr=["mfa"])
    sign_in(client, sso, "sub-root")
    assert signed_in_user(client) is None
    assert client.get("/admin/").status_code == 302


# --- single sign-on off --------------------------------------------------------------------------


def test_sso_off_shows_no_button_and_its_addresses_404(client, settings):
    settings.OIDC_RP_CLIENT_ID = ""
    page = client.get("/login/")
    assert page.status_code == 200
    assert "Sign in with" not in page.content.decode()
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404


def test_sso_on_shows_the_button_with_the_next_page(client, sso):
    page = client.get("/login/?next=/account/").content.decode()
    assert "Sign in with Example ID" in page
    assert 'href="/oidc/authenticate/?next=/account/"' in page


def test_an_unreachable_provider_is_a_message_not_an_error(client, settings):
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_OP_DISCOVERY_URL = "http://127.0.0.1:9/.well-known/openid-configuration"
    settings.OIDC_TIMEOUT = 2
    oidc.forget_discovery()
    answer = client.get("/oidc/authenticate/")
    assert answer.status_code == 302 and answer["Location"] == "/login/"
    assert "cannot be reached" in client.get("/login/").content.decode()


def test_a_forged_callback_is_refused_without_an_error(client, sso):
    answer = client.get("/oidc/callback/?code=forged&state=forged")
    assert answer.status_code in (302, 400)
    assert signed_in_user(client) is None
