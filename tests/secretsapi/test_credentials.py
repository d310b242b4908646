"""secretsapi/credentials.py: creating and revoking client credentials, who may, and the
input they refuse (a clear message, nothing written)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from secretsapi import credentials
from secretsapi.credentials import CredentialError, credential_create, credential_revoke
from secretsapi.models import ClientCredential
from tests.conftest import make_user
from vault import access
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(personas):
    user = make_user("app-admin")
    personas.application.administrators.add(user)
    return user


def test_create_returns_the_secret_once_and_stores_it_encrypted(personas, admin):
    credential, secret = credential_create(
        application=personas.application,
        name="billing",
        expires_days=30,
        allowed_networks=["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"],
        actor=admin,
    )
    assert re.fullmatch(r"PVAK[A-Z2-7]{16}", credential.access_key_id)
    assert re.fullmatch(r"[A-Za-z0-9]{40}", secret)
    stored = ClientCredential.objects.get(pk=credential.pk)
    assert stored.get_secret("secret_access_key") == secret
    assert secret not in stored.secret_access_key_enc
    assert stored.allowed_networks == ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]
    assert stored.created_by == admin and stored.name == "billing"
    assert timedelta(days=29, hours=23) < stored.expires_at - timezone.now() <= timedelta(days=30)
    assert stored.is_usable()
    event = AuditEvent.objects.get(action="credential.created")
    assert event.actor == admin and event.object_uid == credential.uid
    assert event.details["application"] == personas.application.name
    assert event.details["access_key_id"] == credential.access_key_id
    assert secret not in str(event.details)


def test_each_credential_gets_its_own_key_and_secret(personas, admin):
    made = [credential_create(application=personas.application, actor=admin) for _ in range(5)]
    assert len({c.access_key_id for c, _ in made}) == 5
    assert len({s for _, s in made}) == 5
    assert all(c.expires_at is None and c.allowed_networks == [] for c, _ in made)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"allowed_networks": ["10.0.0.0/33"]}, "is not a network"),
        ({"allowed_networks": ["not-a-network"]}, "is not a network"),
        ({"allowed_networks": ["10.0.0.1/8"]}, "did you mean 10.0.0.0/8"),
        ({"allowed_networks": [f"10.{i}.0.0/16" for i in range(51)]}, "too many"),
        ({"expires_days": "soon"}, "is not a number of days"),
        ({"expires_days": 0}, "out of range"),
        ({"expires_days": 99999}, "out of range"),
        ({"name": "x" * 201}, "at most 200"),
        ({"name": "bad\x1bname"}, "control or invisible"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_written(
    personas, admin, kwargs, message
):
    with pytest.raises(CredentialError, match=re.escape(message)):
        credential_create(application=personas.application, actor=admin, **kwargs)
    assert not ClientCredential.objects.exists()
    assert not AuditEvent.objects.exists()


def test_networks_text_one_per_line_blank_lines_and_duplicates_skipped():
    text = "10.0.0.0/8\n\n  192.0.2.0/24 \n10.0.0.0/8\n"
    assert credentials.parse_networks(text) == ["10.0.0.0/8", "192.0.2.0/24"]


@pytest.mark.parametrize("who", ["editor", "manager", "outsider", "superuser", "viewer"])
def test_people_who_do_not_administer_the_application_are_refused(personas, who):
    with pytest.raises(PermissionDenied):
        credential_create(application=personas.application, actor=getattr(personas, who))
    credential, _ = credential_create(
        application=personas.application, actor=None, actor_kind="cli"
    )
    with pytest.raises(PermissionDenied):
        credential_revoke(credential=credential, actor=getattr(personas, who))
    credential.refresh_from_db()
    assert credential.revoked_at is None
    assert ClientCredential.objects.count() == 1


def test_an_administrator_of_another_application_is_refused(personas):
    from vault.models import Application

    other = Application.objects.create(name="Other")
    user = make_user("other-admin")
    other.administrators.add(user)
    with pytest.raises(PermissionDenied):
        credential_create(application=personas.application, actor=user)


def test_the_manage_gateways_policy_is_needed_when_policies_are_enforced(personas, admin, settings):
    settings.VAULT_ENFORCE_POLICIES = True
    with pytest.raises(PermissionDenied):
        credential_create(application=personas.application, actor=admin)
    from django.contrib.auth.models import Permission

    admin.user_permissions.add(Permission.objects.get(codename="manage_gateways"))
    admin = type(admin).objects.get(pk=admin.pk)  # a fresh permission cache
    credential_create(application=personas.application, actor=admin)


def test_revoke_is_immediate_audited_and_idempotent(personas, admin):
    credential, _ = credential_create(application=personas.application, actor=admin)
    assert credential_revoke(credential=credential, actor=admin) is True
    stored = ClientCredential.objects.get(pk=credential.pk)
    assert stored.revoked_at is not None and stored.revoked_by == admin
    assert not stored.is_usable()
    event = AuditEvent.objects.get(action="credential.revoked")
    assert event.actor == admin and event.details["access_key_id"] == credential.access_key_id
    again = ClientCredential.objects.get(pk=credential.pk)
    assert credential_revoke(credential=again, actor=admin) is False
    assert ClientCredential.objects.get(pk=credential.pk).revoked_at == stored.revoked_at
    assert AuditEvent.objects.filter(action="credential.revoked").count() == 1
    message = credentials.already_revoked_message(again)
    assert "already revoked" in message and admin.username in message


def test_revoking_a_stale_copy_says_already_revoked(personas, admin):
    credential, _ = credential_create(application=personas.application, actor=admin)
    stale = ClientCredential.objects.get(pk=credential.pk)
    credential_revoke(credential=credential, actor=admin)
    assert credential_revoke(credential=stale, actor=admin) is False
    assert stale.revoked_at is not None


def test_the_access_helper_404s_for_everyone_but_administrators(personas, admin):
    uid = personas.application.uid
    assert access.application_for_administrator(admin, uid) == personas.application
    for user in (personas.editor, personas.superuser, personas.outsider):
        with pytest.raises(Http404):
            access.application_for_administrator(user, uid)
    for bad in ("nope", "x\x00y", None):
        with pytest.raises(Http404):
            access.application_for_administrator(admin, bad)


def test_endpoint_url_is_the_public_base_url_and_the_endpoint_path(settings):
    settings.VAULT_BASE_URL = "https://vault.example.com/"
    assert credentials.endpoint_url() == "https://vault.example.com/aws/secretsmanager/"


def test_the_audit_log_says_what_happened_in_words(personas, admin):
    from rotation.auditlog import event_sentence

    credential, _ = credential_create(
        application=personas.application,
        name="billing",
        expires_days=2,
        allowed_networks=["10.0.0.0/8"],
        actor=admin,
    )
    credential_revoke(credential=credential, actor=None, actor_kind="cli")
    created = event_sentence(AuditEvent.objects.get(action="credential.created"))
    assert created.startswith(f"app-admin created the client credential {credential.access_key_id}")
    assert "(billing) of application “Rotation App”, expiring 20" in created
    assert created.endswith(", for 10.0.0.0/8 only.")
    revoked = event_sentence(AuditEvent.objects.get(action="credential.revoked"))
    assert revoked == (
        f"The CLI revoked the client credential {credential.access_key_id} (billing) of "
        "application “Rotation App”."
    )
