"""Renaming and deleting a folder: POST only, by the permissions vault/access.py names
(FOLDER_RENAME_NEEDS, FOLDER_DELETE_NEEDS), audited, and a deletion refused while a record
has a rotation in progress or a password that may be live (as a record's deletion)."""

from __future__ import annotations

import pytest

from rotation.models import Rotation, RotationSettings
from tests.conftest import login, make_configuration, make_pam_user
from vault.models import AuditEvent, PamConfiguration, PamUser, SharedFolder


def _rename(client, folder, name):
    return client.post(f"/folders/{folder.uid}/rename/", {"name": name})


def _delete(client, folder, typed=None):
    return client.post(f"/folders/{folder.uid}/delete/", {"confirm_name": typed or folder.name})


def test_manager_renames_and_it_is_audited(personas):
    response = _rename(login(personas.manager), personas.folder, "Platform team")
    assert response.status_code == 302
    personas.folder.refresh_from_db()
    assert personas.folder.name == "Platform team"
    event = AuditEvent.objects.get(action="folder.renamed")
    assert event.actor == personas.manager and event.folder == personas.folder
    assert event.details == {"old_name": "Team", "new_name": "Platform team"}


@pytest.mark.parametrize("name", ["", "Elsewhere", "elsewhere", "x" * 201, "bad\x00name"])
def test_bad_names_change_nothing(personas, name):
    client = login(personas.manager)
    page = client.post(f"/folders/{personas.folder.uid}/rename/", {"name": name}, follow=True)
    assert page.status_code == 200
    assert "The folder was not renamed:" in page.content.decode()
    personas.folder.refresh_from_db()
    assert personas.folder.name == "Team"
    assert not AuditEvent.objects.filter(action="folder.renamed").exists()


def test_rename_error_is_shown(personas):
    client = login(personas.manager)
    page = client.post(
        f"/folders/{personas.folder.uid}/rename/", {"name": "Elsewhere"}, follow=True
    ).content.decode()
    assert "The folder was not renamed: This folder name is not available" in page


def test_get_is_rejected(personas):
    client = login(personas.manager)
    assert client.get(f"/folders/{personas.folder.uid}/rename/").status_code == 405
    assert client.get(f"/folders/{personas.folder.uid}/delete/").status_code == 405
    assert SharedFolder.objects.filter(pk=personas.folder.pk, name="Team").exists()


@pytest.mark.parametrize("who, status", [("editor", 403), ("viewer", 403), ("outsider", 404)])
def test_personas_without_the_permissions_are_refused(personas, who, status):
    record = make_pam_user(personas.folder, "alice")
    client = login(getattr(personas, who))
    assert _rename(client, personas.folder, "Mine now").status_code == status
    assert _delete(client, personas.folder).status_code == status
    assert SharedFolder.objects.filter(pk=personas.folder.pk, name="Team").exists()
    assert PamUser.objects.filter(pk=record.pk).exists()
    assert not AuditEvent.objects.filter(action__in=["folder.renamed", "folder.deleted"]).exists()


def test_page_offers_rename_and_delete_only_to_those_allowed(personas):
    html = login(personas.manager).get(f"/folders/{personas.folder.uid}/").content.decode()
    assert 'id="folder-rename-form"' in html and 'id="folder-delete-form"' in html
    html = login(personas.editor).get(f"/folders/{personas.folder.uid}/").content.decode()
    assert "folder-rename-form" not in html and "folder-delete-form" not in html


def test_manager_deletes_a_folder_with_its_records_and_it_is_audited(personas):
    config = make_configuration(personas.folder, personas.gateway)
    record = make_pam_user(personas.folder, "alice")
    RotationSettings.objects.create(pam_user=record, configuration=config)
    Rotation.objects.create(
        pam_user=record,
        configuration=config,
        gateway_name="default",
        trigger="on_demand",
        status="succeeded",
    )
    response = _delete(login(personas.manager), personas.folder)
    assert response.status_code == 302 and response.url == "/"
    assert not SharedFolder.objects.filter(pk=personas.folder.pk).exists()
    assert not PamUser.objects.filter(pk=record.pk).exists()
    assert not PamConfiguration.objects.filter(pk=config.pk).exists()
    event = AuditEvent.objects.get(action="folder.deleted")
    assert event.actor == personas.manager
    assert event.details == {"name": "Team", "records": 1, "configurations": 1}


def test_delete_needs_the_name_typed(personas):
    response = _delete(login(personas.manager), personas.folder, typed="team")
    assert response.status_code == 302
    assert SharedFolder.objects.filter(pk=personas.folder.pk).exists()
    assert not AuditEvent.objects.filter(action="folder.deleted").exists()


@pytest.mark.parametrize("case", ["queued", "running", "may_be_live"])
def test_delete_is_refused_while_a_password_may_be_live_or_a_rotation_runs(personas, case):
    config = make_configuration(personas.folder, personas.gateway)
    record = make_pam_user(personas.folder, "alice")
    rotation = Rotation.objects.create(
        pam_user=record,
        configuration=config,
        gateway_name="default",
        trigger="on_demand",
        status="failed" if case == "may_be_live" else case,
        pending_may_be_live=case == "may_be_live",
    )
    if case == "may_be_live":
        rotation.set_secret("pending_password", "Pending-Passw0rd-1!")
        rotation.save()
    client = login(personas.manager)
    page = client.post(
        f"/folders/{personas.folder.uid}/delete/", {"confirm_name": "Team"}, follow=True
    ).content.decode()
    assert "The folder “Team” was not deleted" in page
    assert SharedFolder.objects.filter(pk=personas.folder.pk).exists()
    assert PamUser.objects.filter(pk=record.pk).exists()
    assert PamConfiguration.objects.filter(pk=config.pk).exists()
    assert not AuditEvent.objects.filter(action="folder.deleted").exists()


def test_delete_is_refused_while_another_folders_record_uses_its_configuration(personas):
    config = make_configuration(personas.folder, personas.gateway)
    elsewhere = make_pam_user(personas.other_folder, "bob")
    RotationSettings.objects.create(pam_user=elsewhere, configuration=config)
    page = (
        login(personas.manager)
        .post(f"/folders/{personas.folder.uid}/delete/", {"confirm_name": "Team"}, follow=True)
        .content.decode()
    )
    assert "was not deleted: a record of another folder still uses" in page
    assert SharedFolder.objects.filter(pk=personas.folder.pk).exists()
