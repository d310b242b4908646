"""The admin console: secrets are never shown (plaintext or ciphertext), only replaced; changes
go through the services so history and audit happen; audit events are read-only."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tests.conftest import login, login_verified, make_configuration, make_pam_user
from vault.models import (
    AuditEvent,
    FolderMember,
    PamConfiguration,
    PamUser,
    PasswordVersion,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(personas):
    return login_verified(personas.superuser)  # the admin console needs two-factor sign-in


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


def change_url(obj) -> str:
    return reverse(f"admin:vault_{obj._meta.model_name}_change", args=[obj.pk])


def record_post(record, **changes) -> dict:
    data = {
        "title": record.title,
        "login": record.login,
        "distinguished_name": record.distinguished_name,
        "notes": record.notes,
        "replace_password": "",
    }
    if record.managed:  # a ticked checkbox is sent, an unticked one is not
        data["managed"] = "on"
    data.update(changes)
    return data


def config_post(config, **changes) -> dict:
    data = {
        "folder": config.folder.pk,
        "title": config.title,
        "environment": "aws",
        "gateway": config.gateway.pk,
        "aws_id": config.aws_id,
        "access_key_id": config.access_key_id,
        "replace_secret_key": "",
        "region_names": json.dumps(config.region_names),
        "endpoint_url": config.endpoint_url,
        "default_rotation_schedule": json.dumps(config.default_rotation_schedule),
    }
    data.update(changes)
    return data


def assert_no_secret(content: bytes, *secrets: str) -> None:
    for secret in secrets:
        assert secret.encode() not in content


# --- secrets are never shown ------------------------------------------------------------------


def test_record_change_page_shows_neither_password_nor_ciphertext(admin_client, record):
    response = admin_client.get(change_url(record))
    assert response.status_code == 200
    assert record.login.encode() in response.content
    assert b'name="replace_password"' in response.content
    assert_no_secret(response.content, "Old-Passw0rd!", record.password_enc, "password_enc")


def test_configuration_change_page_shows_neither_secret_nor_ciphertext(admin_client, config):
    response = admin_client.get(change_url(config))
    assert response.status_code == 200
    assert b'name="replace_secret_key"' in response.content
    assert_no_secret(
        response.content, "testing-secret", config.access_secret_key_enc, "access_secret_key_enc"
    )


@pytest.mark.parametrize("model", ["pamuser", "pamconfiguration", "passwordversion"])
def test_changelists_show_no_secret(admin_client, record, config, model):
    response = admin_client.get(reverse(f"admin:vault_{model}_changelist"))
    assert response.status_code == 200
    version = PasswordVersion.objects.filter(pam_user=record).first()
    blobs = [record.password_enc, config.access_secret_key_enc]
    if version:
        blobs.append(version.password_enc)
    assert_no_secret(response.content, "Old-Passw0rd!", "testing-secret", *blobs)


def test_password_version_page_is_read_only_without_the_password(admin_client, personas):
    from vault import services

    record = services.pam_user_create(
        folder=personas.folder,
        title="Versioned",
        login="Versioned",
        distinguished_name="arn:aws:iam::123456789012:user/Versioned",
        password="Versioned-Passw0rd!",
    )
    version = record.versions.get()
    response = admin_client.get(change_url(version))
    assert response.status_code == 200
    assert_no_secret(response.content, "Versioned-Passw0rd!", version.password_enc)
    assert b'name="_save"' not in response.content  # view only


# --- replacing secrets goes through the services ---------------------------------------------


def test_replacing_a_password_stores_it_with_history_and_audit(admin_client, personas, record):
    response = admin_client.post(
        change_url(record), record_post(record, replace_password="New-Admin-Passw0rd!")
    )
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.get_secret("password") == "New-Admin-Passw0rd!"
    assert record.versions.filter(set_by=personas.superuser).count() == 1
    event = AuditEvent.objects.get(action="record.updated")
    assert event.actor == personas.superuser and event.details == {"fields": ["password"]}


def test_empty_replace_field_keeps_the_password(admin_client, record):
    response = admin_client.post(change_url(record), record_post(record, title="Renamed"))
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.title == "Renamed"
    assert record.get_secret("password") == "Old-Passw0rd!"
    assert not record.versions.exists()


def test_adding_a_record_in_the_admin_goes_through_the_service(admin_client, personas):
    data = {
        "folder": personas.folder.pk,
        "title": "Admin made",
        "login": "AdminMade",
        "distinguished_name": "arn:aws:iam::123456789012:user/AdminMade",
        "replace_password": "Admin-Made-Passw0rd!",
    }
    response = admin_client.post(reverse("admin:vault_pamuser_add"), data)
    assert response.status_code == 302
    record = PamUser.objects.get(login="AdminMade")
    assert record.get_secret("password") == "Admin-Made-Passw0rd!"
    assert record.versions.count() == 1
    assert AuditEvent.objects.filter(action="record.created", object_uid=record.uid).exists()


def test_arn_not_matching_the_login_is_a_field_error(admin_client, record):
    response = admin_client.post(change_url(record), record_post(record, login="Someone"))
    assert response.status_code == 200
    assert "does not match login" in response.content.decode()
    record.refresh_from_db()
    assert record.login == "TestUser"


def test_duplicate_title_in_the_folder_is_a_field_error(admin_client, personas, record):
    other = make_pam_user(personas.folder, "Other")
    response = admin_client.post(change_url(other), record_post(other, title=record.title))
    assert response.status_code == 200
    assert "already has this title" in response.content.decode()


def test_replacing_the_secret_key_writes_it_encrypted(admin_client, personas, config):
    response = admin_client.post(
        change_url(config), config_post(config, replace_secret_key="Replaced-Secret-Key")
    )
    assert response.status_code == 302
    config.refresh_from_db()
    assert config.get_secret("access_secret_key") == "Replaced-Secret-Key"
    assert "Replaced-Secret-Key" not in config.access_secret_key_enc
    assert AuditEvent.objects.filter(
        action="configuration.updated", actor=personas.superuser
    ).exists()


def test_empty_secret_field_keeps_the_secret_key(admin_client, config):
    response = admin_client.post(change_url(config), config_post(config, aws_id="Renamed"))
    assert response.status_code == 302
    config.refresh_from_db()
    assert (config.aws_id, config.get_secret("access_secret_key")) == ("Renamed", "testing-secret")


def test_a_key_id_without_any_secret_key_is_refused(admin_client, personas):
    data = config_post(
        PamConfiguration(
            folder=personas.folder,
            gateway=personas.gateway,
            title="No secret",
            access_key_id="AKIANOSECRET",
            region_names=["us-east-1"],
            default_rotation_schedule={"type": "ON_DEMAND"},
        )
    )
    response = admin_client.post(reverse("admin:vault_pamconfiguration_add"), data)
    assert response.status_code == 200
    assert "The secret key is required" in response.content.decode()
    assert not PamConfiguration.objects.filter(title="No secret").exists()


def test_bad_endpoint_url_is_a_field_error(admin_client, config):
    response = admin_client.post(change_url(config), config_post(config, endpoint_url="ftp://x"))
    assert response.status_code == 200
    assert "http:// or https://" in response.content.decode()


# --- read-only audit, access, members ----------------------------------------------------------


def test_audit_events_are_read_only(admin_client, record):
    event = AuditEvent.objects.create(action="record.created", object_uid=record.uid)
    assert admin_client.get(reverse("admin:vault_auditevent_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:vault_auditevent_add")).status_code == 403
    delete = reverse("admin:vault_auditevent_delete", args=[event.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    response = admin_client.post(change_url(event), {"action": "tampered"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.action == "record.created"


def test_non_staff_members_are_sent_to_the_admin_login(personas, record):
    response = login(personas.editor).get(change_url(record))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_folder_inline_refuses_to_remove_the_last_manager(admin_client, personas):
    folder = personas.other_folder  # the outsider is its only member and manager
    member = FolderMember.objects.get(folder=folder)
    data = {
        "name": folder.name,
        "members-TOTAL_FORMS": "1",
        "members-INITIAL_FORMS": "1",
        "members-MIN_NUM_FORMS": "0",
        "members-MAX_NUM_FORMS": "1000",
        "members-0-id": member.pk,
        "members-0-folder": folder.pk,
        "members-0-user": member.user.pk,
        "members-0-can_edit": "on",
        "members-0-DELETE": "on",
        "applicationfolder_set-TOTAL_FORMS": "0",
        "applicationfolder_set-INITIAL_FORMS": "0",
        "applicationfolder_set-MIN_NUM_FORMS": "0",
        "applicationfolder_set-MAX_NUM_FORMS": "1000",
    }
    response = admin_client.post(change_url(folder), data)
    assert response.status_code == 200
    assert "at least one member who can manage members" in response.content.decode()
    assert FolderMember.objects.filter(pk=member.pk).exists()


def test_folder_inline_adds_members_through_the_service(admin_client, personas):
    folder = personas.other_folder
    member = FolderMember.objects.get(folder=folder)
    data = {
        "name": folder.name,
        "members-TOTAL_FORMS": "2",
        "members-INITIAL_FORMS": "1",
        "members-MIN_NUM_FORMS": "0",
        "members-MAX_NUM_FORMS": "1000",
        "members-0-id": member.pk,
        "members-0-folder": folder.pk,
        "members-0-user": member.user.pk,
        "members-0-can_edit": "on",
        "members-0-manage_users": "on",
        "members-1-folder": folder.pk,
        "members-1-user": personas.viewer.pk,
        "applicationfolder_set-TOTAL_FORMS": "0",
        "applicationfolder_set-INITIAL_FORMS": "0",
        "applicationfolder_set-MIN_NUM_FORMS": "0",
        "applicationfolder_set-MAX_NUM_FORMS": "1000",
    }
    response = admin_client.post(change_url(folder), data)
    assert response.status_code == 302
    assert FolderMember.objects.filter(folder=folder, user=personas.viewer).exists()
    assert AuditEvent.objects.filter(action="member.added", actor=personas.superuser).exists()


def test_the_admin_shows_and_changes_notes_and_managed_through_the_service(admin_client, record):
    page = admin_client.get(change_url(record)).content.decode()
    assert 'name="notes"' in page and 'name="managed"' in page
    data = record_post(record, notes="Owned by ops")
    del data["managed"]
    response = admin_client.post(change_url(record), data)
    assert response.status_code == 302
    record.refresh_from_db()
    assert (record.notes, record.managed) == ("Owned by ops", False)
    event = AuditEvent.objects.get(action="record.updated")
    assert event.details == {"fields": ["notes", "managed"], "managed": False}
