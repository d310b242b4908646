"""Enforcement policies (issue 9): Django permissions granted through Groups. Off (the default),
folder permissions alone decide, as before; with VAULT_ENFORCE_POLICIES each action also needs
its policy, and the page offers no button the person may not use."""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import override_settings

from rotation.models import Rotation, RotationSettings
from tests.conftest import login, make_configuration, make_member
from tests.rotation.conftest import make_settings
from vault.models import ApplicationFolder, AuditEvent, SharedFolder

pytestmark = pytest.mark.django_db

enforced = override_settings(VAULT_ENFORCE_POLICIES=True)


@pytest.fixture(autouse=True)
def no_queue():
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


@pytest.fixture
def rotatable(personas, record):
    make_settings(record, make_configuration(personas.folder, personas.gateway))
    return record


def grant(user, *policies: str) -> None:
    group, _ = Group.objects.get_or_create(name="Rotation operators")
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="vault", codename__in=policies)
    )
    user.groups.add(group)


def test_every_policy_is_a_permission_an_admin_can_grant():
    names = set(
        Permission.objects.filter(content_type__app_label="vault").values_list(
            "codename", flat=True
        )
    )
    assert {"configure_rotation", "rotate", "manage_gateways", "discover", "reveal"} <= names


def test_without_enforcement_edit_rights_suffice_to_rotate(personas, rotatable):
    response = login(personas.editor).post(f"/records/{rotatable.uid}/rotate/")
    assert response.status_code == 302
    assert Rotation.objects.filter(pam_user=rotatable).exists()


@enforced
def test_enforced_rotate_without_the_policy_is_403_and_requests_nothing(personas, rotatable):
    response = login(personas.editor).post(f"/records/{rotatable.uid}/rotate/")
    assert response.status_code == 403
    assert "rotate on demand" in response.content.decode()
    assert not Rotation.objects.exists()


@enforced
def test_enforced_rotate_with_the_policy_from_a_group_is_allowed(personas, rotatable):
    grant(personas.editor, "rotate")
    response = login(personas.editor).post(f"/records/{rotatable.uid}/rotate/")
    assert response.status_code == 302
    assert Rotation.objects.filter(pam_user=rotatable).exists()


@enforced
def test_enforced_rotate_all_without_the_policy_is_403(personas, rotatable):
    response = login(personas.editor).post(f"/folders/{personas.folder.uid}/rotate-all/")
    assert response.status_code == 403
    assert not Rotation.objects.exists()


@enforced
def test_enforced_settings_without_the_policy_are_403_and_save_nothing(personas, record):
    config = make_configuration(personas.folder, personas.gateway)
    response = login(personas.editor).post(
        f"/records/{record.uid}/rotation/", {"configuration": config.uid}
    )
    assert response.status_code == 403
    assert not RotationSettings.objects.exists()


@enforced
def test_enforced_settings_with_the_policy_open(personas, record):
    grant(personas.editor, "configure_rotation")
    assert login(personas.editor).get(f"/records/{record.uid}/rotation/").status_code == 200


@enforced
def test_enforced_record_page_hides_the_buttons_the_policies_do_not_allow(personas, rotatable):
    html = login(personas.editor).get(f"/records/{rotatable.uid}/").content.decode()
    assert 'id="rotate-button"' not in html
    assert f'href="/records/{rotatable.uid}/rotation/"' not in html
    grant(personas.editor, "rotate")
    html = login(personas.editor).get(f"/records/{rotatable.uid}/").content.decode()
    assert 'id="rotate-button"' in html
    assert f'href="/records/{rotatable.uid}/rotation/"' not in html


@enforced
def test_enforced_reveal_without_the_policy_is_403_and_audits_no_reveal(personas, record):
    response = login(personas.editor).post(f"/records/{record.uid}/reveal/")
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="password.revealed").exists()


@enforced
def test_enforced_reveal_with_the_policy_is_allowed(personas, record):
    grant(personas.editor, "reveal")
    response = login(personas.editor).post(f"/records/{record.uid}/reveal/")
    assert response.status_code == 302  # to the record page, which shows it
    assert AuditEvent.objects.filter(action="password.revealed").exists()


@enforced
def test_enforced_share_needs_the_manage_gateways_policy(personas):
    personas.application.administrators.add(personas.manager)
    folder = SharedFolder.objects.create(name="Ops")
    make_member(folder, personas.manager, can_share=True, manage_users=True)
    url = f"/folders/{folder.uid}/shares/"
    data = {"application": personas.application.uid, "editable": "on"}
    assert login(personas.manager).post(url, data).status_code == 403
    assert not ApplicationFolder.objects.filter(folder=folder).exists()
    grant(personas.manager, "manage_gateways")
    assert login(personas.manager).post(url, data).status_code == 302
    assert ApplicationFolder.objects.filter(folder=folder).exists()


@enforced
def test_superusers_hold_every_policy(personas):
    from vault.access import POLICIES, policy_allows

    assert all(policy_allows(personas.superuser, name) for name in POLICIES)
