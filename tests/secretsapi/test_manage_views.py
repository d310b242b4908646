"""The client-credential pages (secretsapi/manage_views.py): the list, create (the secret is
shown once, with the endpoint URL and a boto3 snippet), revoke; GET refused on the POST views,
and every persona who does not administer the application refused, changing nothing."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django.utils import timezone

from secretsapi.credentials import credential_create
from secretsapi.models import ClientCredential
from tests.conftest import login, login_verified, make_user
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db

PERSONAS = ("editor", "viewer", "manager", "outsider", "superuser")


@pytest.fixture
def admin(personas):
    user = make_user("app-admin")
    personas.application.administrators.add(user)
    return user


@pytest.fixture
def existing(personas, admin):
    credential, _ = credential_create(
        application=personas.application, name="existing", actor=admin
    )
    return credential


def urls(personas, credential) -> dict[str, str]:
    base = f"/applications/{personas.application.uid}/credentials/"
    return {
        "list": base,
        "create": base + "create/",
        "revoke": f"{base}{credential.access_key_id}/revoke/",
    }


def client_for(personas, who: str) -> Client:
    user = getattr(personas, who)
    return login_verified(user) if who == "superuser" else login(user)


def test_the_list_shows_each_credential_without_its_secret(personas, admin, existing):
    existing.last_used_ip = "192.0.2.9"
    existing.last_used_at = timezone.now()
    existing.save()
    page = login(admin).get(urls(personas, existing)["list"])
    text = page.content.decode()
    assert page.status_code == 200
    assert existing.access_key_id in text and "existing" in text and "192.0.2.9" in text
    assert existing.get_secret("secret_access_key") not in text
    assert "http://testserver" not in text and "/aws/secretsmanager/" in text


def test_create_shows_the_secret_once_with_endpoint_and_boto3_snippet(personas, admin, settings):
    settings.VAULT_BASE_URL = "https://vault.example.com"
    client = login(admin)
    url = f"/applications/{personas.application.uid}/credentials/create/"
    data = {"name": "billing", "expires_days": "7", "allowed_networks": "10.0.0.0/8\n192.0.2.1"}
    page = client.post(url, data)
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    credential = ClientCredential.objects.get()
    secret = credential.get_secret("secret_access_key")
    text = html.unescape(page.content.decode())
    assert secret in text and credential.access_key_id in text
    assert "https://vault.example.com/aws/secretsmanager/" in text
    assert 'boto3.client(\n    "secretsmanager"' in text
    assert f'aws_secret_access_key="{secret}"' in text
    assert credential.allowed_networks == ["10.0.0.0/8", "192.0.2.1/32"]
    assert credential.expires_at is not None and credential.created_by == admin
    assert AuditEvent.objects.filter(action="credential.created", actor=admin).exists()
    listed = client.get(f"/applications/{personas.application.uid}/credentials/")
    assert secret not in listed.content.decode()


@pytest.mark.parametrize(
    "data,field,message",
    [
        ({"allowed_networks": "10.0.0.0/8\nnonsense"}, "allowed_networks", "is not a network"),
        ({"expires_days": "-3"}, "expires_days", "out of range"),
        ({"expires_days": "tomorrow"}, "expires_days", "is not a number of days"),
        ({"name": "n" * 201}, "name", "at most 200"),
    ],
)
def test_bad_input_is_shown_on_the_form_and_nothing_is_created(
    personas, admin, data, field, message
):
    page = login(admin).post(f"/applications/{personas.application.uid}/credentials/create/", data)
    assert page.status_code == 400
    text = html.unescape(page.content.decode())
    assert re.search(rf'id="id_{field}_error"[^>]*>[^<]*{re.escape(message)}', text)
    assert not ClientCredential.objects.exists()


def test_revoke_is_immediate_and_pressing_twice_says_already_revoked(personas, admin, existing):
    client = login(admin)
    url = urls(personas, existing)["revoke"]
    response = client.post(url, follow=True)
    assert response.redirect_chain[-1][0] == urls(personas, existing)["list"]
    assert "Revoked" in response.content.decode()
    existing.refresh_from_db()
    assert existing.revoked_at is not None and existing.revoked_by == admin
    again = client.post(url, follow=True)
    assert "already revoked" in again.content.decode()
    assert AuditEvent.objects.filter(action="credential.revoked").count() == 1


def test_revoke_form_asks_for_confirmation(personas, admin, existing):
    text = login(admin).get(urls(personas, existing)["list"]).content.decode()
    assert re.search(r'<form method="post" action="[^"]+/revoke/"[^>]*data-confirm="Revoke', text)


@pytest.mark.parametrize("name", ["create", "revoke"])
def test_post_views_reject_get(personas, admin, existing, name):
    response = login(admin).get(urls(personas, existing)[name])
    assert response.status_code == 405
    existing.refresh_from_db()
    assert existing.revoked_at is None and ClientCredential.objects.count() == 1


def test_the_list_rejects_post(personas, admin, existing):
    assert login(admin).post(urls(personas, existing)["list"]).status_code == 405


@pytest.mark.parametrize("who", PERSONAS)
@pytest.mark.parametrize("name,method", [("list", "get"), ("create", "post"), ("revoke", "post")])
def test_people_who_do_not_administer_it_get_404_and_change_nothing(
    personas, existing, who, name, method
):
    client = client_for(personas, who)
    data = {"name": "forged"} if name == "create" else {}
    response = getattr(client, method)(urls(personas, existing)[name], data)
    assert response.status_code == 404
    existing.refresh_from_db()
    assert existing.revoked_at is None and ClientCredential.objects.count() == 1
    assert not AuditEvent.objects.exclude(action="credential.created").exists()


def test_anonymous_is_sent_to_sign_in(personas, existing):
    for name, method in (("list", "get"), ("create", "post"), ("revoke", "post")):
        response = getattr(Client(), method)(urls(personas, existing)[name])
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_key_of_another_application_is_404_for_this_ones_administrator(personas, admin):
    from vault.models import Application

    other = Application.objects.create(name="Other")
    theirs, _ = credential_create(application=other, actor=None, actor_kind="cli")
    url = f"/applications/{personas.application.uid}/credentials/{theirs.access_key_id}/revoke/"
    assert login(admin).post(url).status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_an_administrator_without_the_policy_is_refused_403(personas, admin, existing, settings):
    settings.VAULT_ENFORCE_POLICIES = True
    client = login(admin)
    assert client.get(urls(personas, existing)["list"]).status_code == 403
    assert client.post(urls(personas, existing)["revoke"]).status_code == 403
    existing.refresh_from_db()
    assert existing.revoked_at is None


def test_the_gateways_page_links_administrators_to_the_credentials(personas, admin):
    link = f'href="/applications/{personas.application.uid}/credentials/"'
    assert link in login(admin).get("/gateways/").content.decode()
    assert link not in login(personas.editor).get("/gateways/").content.decode()
