"""Authority over AWS credentials, tried the way the attack review did (issue 9, findings 1, 2
and 6): a signed-in user with a folder of their own, and a view-only member of another team's
folder, try to point someone else's gateway or configuration at an IAM user of their choosing.

Each path must stop at the first step that needs authority the person lacks, and change nothing.
"""

from __future__ import annotations

from unittest import mock

import pytest

from rotation.models import Rotation, RotationSettings
from tests.conftest import login, make_configuration, make_member, make_pam_user, make_user
from tests.rotation.conftest import make_settings
from tests.security.conftest import settings_form_data
from vault.models import (
    USE_INSTANCE_ROLE,
    Application,
    ApplicationFolder,
    AuditEvent,
    Gateway,
    PamConfiguration,
    SharedFolder,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue():
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


@pytest.fixture
def team_gateway(personas):
    """The other team's gateway: allowed to use its host's own credentials."""
    personas.gateway.allow_instance_role = True
    personas.gateway.save()
    personas.application.administrators.add(personas.manager)
    return personas.gateway


@pytest.fixture
def attacker(db):
    return make_user("mallory")


def _own_folder(client, name: str = "Mallory's") -> SharedFolder:
    response = client.post("/folders/new/", {"name": name})
    assert response.status_code == 302
    return SharedFolder.objects.get(name=name)


def _configuration_data(**changes) -> dict:
    data = {
        "title": "Takeover",
        "environment": "aws",
        "gateway": "default",
        "new_gateway": "",
        "aws_id": "",
        "access_key_id": USE_INSTANCE_ROLE,
        "access_secret_key": "",
        "region_names": "us-east-1",
        "endpoint_url": "",
        "default_rotation_schedule": '{"type": "ON_DEMAND"}',
        "scope_path_prefix": "",
        "scope_user_pattern": "alice.admin",
    }
    data.update(changes)
    return data


def _shares() -> list:
    return list(ApplicationFolder.objects.values_list("application__name", "folder__name"))


# --- finding 1: another team's gateway -----------------------------------------------------------


def test_new_configuration_form_does_not_name_another_teams_gateway(
    personas, team_gateway, attacker
):
    client = login(attacker)
    folder = _own_folder(client)
    html = client.get(f"/folders/{folder.uid}/configurations/new/").content.decode()
    assert 'value="default"' not in html
    assert personas.application.name not in html


def test_configuration_on_another_teams_gateway_is_refused_and_shares_nothing(
    personas, team_gateway, attacker
):
    client = login(attacker)
    folder = _own_folder(client)
    before = _shares()
    response = client.post(f"/folders/{folder.uid}/configurations/new/", _configuration_data())
    assert response.status_code == 200
    assert "gateway" in response.context["form"].errors
    assert not PamConfiguration.objects.filter(folder=folder).exists()
    assert _shares() == before


def test_typing_another_teams_gateway_name_as_new_does_not_take_it_over(
    personas, team_gateway, attacker
):
    app = Application.objects.create(name="Mallory App")
    app.administrators.add(attacker)
    client = login(attacker)
    folder = _own_folder(client)
    data = _configuration_data(
        gateway="", new_gateway="default", new_gateway_application=app.uid, access_key_id="AKIA1"
    )
    data["access_secret_key"] = "secret"
    response = client.post(f"/folders/{folder.uid}/configurations/new/", data)
    assert response.context["form"].errors["new_gateway"] == [
        "This gateway name is not available; choose another."
    ]
    assert Gateway.objects.get(name="default").application == personas.application


def test_saving_a_configuration_shares_nothing(personas, team_gateway):
    """Even someone allowed to name the gateway shares nothing by saving a configuration."""
    folder = SharedFolder.objects.create(name="Ops")
    make_member(folder, personas.manager, can_edit=True, manage_records=True, can_share=True)
    client = login(personas.manager)
    data = _configuration_data(access_key_id="AKIA1", access_secret_key="secret")
    response = client.post(f"/folders/{folder.uid}/configurations/new/", data)
    assert response.status_code == 302
    assert not ApplicationFolder.objects.filter(folder=folder).exists()
    assert not AuditEvent.objects.filter(action="folder.shared").exists()


def test_sharing_to_an_application_one_does_not_administer_is_refused(personas, attacker):
    client = login(attacker)
    folder = _own_folder(client)
    response = client.post(
        f"/folders/{folder.uid}/shares/",
        {"application": personas.application.uid, "editable": "on"},
    )
    assert response.status_code == 302
    assert not ApplicationFolder.objects.filter(folder=folder).exists()


def test_members_page_names_no_application_one_does_not_administer(personas, attacker):
    client = login(attacker)
    folder = _own_folder(client)
    html = client.get(f"/folders/{folder.uid}/members/").content.decode()
    assert personas.application.name not in html
    assert "You administer no application" in html


def test_an_administrator_with_can_share_shares_the_folder(personas):
    personas.application.administrators.add(personas.manager)
    folder = SharedFolder.objects.create(name="Ops")
    make_member(folder, personas.manager, can_share=True, manage_users=True)
    response = login(personas.manager).post(
        f"/folders/{folder.uid}/shares/",
        {"application": personas.application.uid, "editable": "on"},
    )
    assert response.status_code == 302
    assert ApplicationFolder.objects.filter(folder=folder, editable=True).exists()


def test_an_administrator_without_can_share_on_the_folder_is_refused(personas):
    personas.application.administrators.add(personas.editor)
    response = login(personas.editor).post(
        f"/folders/{personas.folder.uid}/shares/",
        {"application": personas.application.uid, "editable": "on"},
    )
    assert response.status_code == 403


# --- finding 2: a view-only member and another folder's configuration ----------------------------


@pytest.fixture
def others_configuration(personas):
    """Folder "Team"'s configuration with stored keys; the viewer is view-only there."""
    return make_configuration(personas.folder, personas.gateway, title="Team keys")


def _viewer_record(personas):
    folder = SharedFolder.objects.create(name="Viewer's own")
    make_member(folder, personas.viewer, can_edit=True, manage_records=True, can_share=True)
    return make_pam_user(folder, "root-admin")


def test_settings_form_does_not_offer_a_configuration_of_a_view_only_folder(
    personas, others_configuration
):
    record = _viewer_record(personas)
    html = login(personas.viewer).get(f"/records/{record.uid}/rotation/").content.decode()
    assert others_configuration.uid not in html
    assert "Team keys" not in html


def test_view_only_member_cannot_choose_that_configuration_even_with_both_folders_shared(
    personas, others_configuration
):
    record = _viewer_record(personas)
    # An administrator shared the viewer's folder too: view-only on "Team" still does not suffice.
    ApplicationFolder.objects.create(application=personas.application, folder=record.folder)
    response = login(personas.viewer).post(
        f"/records/{record.uid}/rotation/", settings_form_data(others_configuration)
    )
    assert response.status_code == 200
    assert "configuration" in response.context["form"].errors
    assert not RotationSettings.objects.filter(pam_user=record).exists()


def test_editor_of_both_folders_may_choose_the_configuration_when_both_are_shared(
    personas, others_configuration
):
    folder = SharedFolder.objects.create(name="Second")
    make_member(folder, personas.editor, can_edit=True, manage_records=True)
    ApplicationFolder.objects.create(application=personas.application, folder=folder)
    record = make_pam_user(folder, "svc-deploy")
    response = login(personas.editor).post(
        f"/records/{record.uid}/rotation/", settings_form_data(others_configuration)
    )
    assert response.status_code == 302
    assert RotationSettings.objects.get(pam_user=record).configuration == others_configuration


def test_configuration_whose_folder_is_not_shared_to_the_gateway_is_a_field_error(personas):
    folder = SharedFolder.objects.create(name="Keys")
    make_member(folder, personas.editor, can_edit=True)
    config = make_configuration(folder, personas.gateway, title="Unshared keys")
    record = make_pam_user(personas.folder, "svc-x")
    response = login(personas.editor).post(
        f"/records/{record.uid}/rotation/", settings_form_data(config)
    )
    errors = response.context["form"].errors["configuration"]
    assert "The configuration's folder “Keys” is not shared" in errors[0]


def test_login_outside_the_configurations_scope_is_a_field_error(personas):
    config = make_configuration(
        personas.folder, personas.gateway, scope_user_pattern="svc-*, ci-runner"
    )
    record = make_pam_user(personas.folder, "alice.admin")
    response = login(personas.editor).post(
        f"/records/{record.uid}/rotation/", settings_form_data(config)
    )
    errors = response.context["form"].errors["configuration"]
    assert "outside the target scope" in errors[0]


def test_rotate_refuses_a_record_whose_folder_was_unshared_since(personas, record):
    config = make_configuration(personas.folder, personas.gateway)
    make_settings(record, config)
    ApplicationFolder.objects.filter(folder=personas.folder).update(editable=False)
    response = login(personas.editor).post(f"/records/{record.uid}/rotate/")
    assert response.status_code == 302
    assert not Rotation.objects.exists()


# --- instance role and target scope in the configuration form ------------------------------------


def _editor_administers(personas) -> None:
    personas.application.administrators.add(personas.editor)


def test_instance_role_without_a_scope_is_a_field_error(personas, team_gateway):
    _editor_administers(personas)
    data = _configuration_data(scope_user_pattern="")
    response = login(personas.editor).post(
        f"/folders/{personas.folder.uid}/configurations/new/", data
    )
    assert "a target scope is required" in response.context["form"].errors["scope_user_pattern"][0]
    assert not PamConfiguration.objects.exists()


def test_instance_role_on_a_gateway_that_does_not_allow_it_is_a_field_error(personas):
    _editor_administers(personas)
    response = login(personas.editor).post(
        f"/folders/{personas.folder.uid}/configurations/new/", _configuration_data()
    )
    assert "does not allow USE_INSTANCE_ROLE" in response.context["form"].errors["access_key_id"][0]
    assert not PamConfiguration.objects.exists()


def test_instance_role_with_a_scope_on_an_allowing_gateway_is_saved(personas, team_gateway):
    _editor_administers(personas)
    response = login(personas.editor).post(
        f"/folders/{personas.folder.uid}/configurations/new/", _configuration_data()
    )
    assert response.status_code == 302
    config = PamConfiguration.objects.get()
    assert config.scope_user_pattern == "alice.admin"
    assert config.uses_instance_role


@pytest.mark.parametrize("prefix", ["rotated", "/rotated", "/a b/", "/x//"])
def test_path_prefix_that_is_not_an_iam_path_is_a_field_error(personas, prefix):
    _editor_administers(personas)
    data = _configuration_data(
        access_key_id="AKIA1", access_secret_key="secret", scope_path_prefix=prefix
    )
    response = login(personas.editor).post(
        f"/folders/{personas.folder.uid}/configurations/new/", data
    )
    assert "scope_path_prefix" in response.context["form"].errors
    assert not PamConfiguration.objects.exists()


def test_user_pattern_with_a_character_iam_forbids_is_a_field_error(personas):
    _editor_administers(personas)
    data = _configuration_data(
        access_key_id="AKIA1", access_secret_key="secret", scope_user_pattern="svc-*, a b"
    )
    response = login(personas.editor).post(
        f"/folders/{personas.folder.uid}/configurations/new/", data
    )
    assert (
        '"a b" is not an IAM user name' in response.context["form"].errors["scope_user_pattern"][0]
    )


def test_new_gateway_needs_an_application_one_administers(personas):
    _editor_administers(personas)
    data = _configuration_data(
        gateway="", new_gateway="gw2", access_key_id="AKIA1", access_secret_key="secret"
    )
    response = login(personas.editor).post(
        f"/folders/{personas.folder.uid}/configurations/new/", data
    )
    assert "new_gateway_application" in response.context["form"].errors
    assert not Gateway.objects.filter(name="gw2").exists()


def test_new_gateway_of_an_administered_application_is_created_and_audited(personas):
    _editor_administers(personas)
    data = _configuration_data(
        gateway="",
        new_gateway="gw2",
        new_gateway_application=personas.application.uid,
        access_key_id="AKIA1",
        access_secret_key="secret",
    )
    response = login(personas.editor).post(
        f"/folders/{personas.folder.uid}/configurations/new/", data
    )
    assert response.status_code == 302
    assert Gateway.objects.get(name="gw2").application == personas.application
    assert AuditEvent.objects.filter(action="gateway.created", object_repr="gw2").exists()


def test_configuration_page_says_what_to_share_when_its_folder_is_not_shared(personas):
    folder = SharedFolder.objects.create(name="Keys")
    make_member(folder, personas.editor, can_edit=True)
    config = make_configuration(folder, personas.gateway)
    html = login(personas.editor).get(f"/configurations/{config.uid}/").content.decode()
    assert "Not ready to rotate" in html
    assert "is not shared to the application" in html


# --- finding 6: names of other teams -------------------------------------------------------------


def test_taken_folder_name_does_not_confirm_another_teams_folder(personas, attacker):
    response = login(attacker).post("/folders/new/", {"name": "Team"})
    assert response.context["form"].errors["name"] == [
        "This folder name is not available; choose another."
    ]


def test_unknown_and_existing_usernames_are_not_told_apart_by_the_error(personas):
    client = login(personas.manager)
    url = f"/folders/{personas.folder.uid}/members/add/"
    inactive = make_user("gone", is_active=False)
    unknown = client.post(url, {"username": "nobody-here"})
    disabled = client.post(url, {"username": inactive.username})
    assert unknown.context["add_form"].errors["username"] == [
        "This person could not be added. Check the user name."
    ]
    assert disabled.context["add_form"].errors == unknown.context["add_form"].errors
