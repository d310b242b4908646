"""PAM Configuration pages: view, create, edit, delete."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from tests.conftest import login, make_configuration
from vault.models import (
    USE_INSTANCE_ROLE,
    Application,
    ApplicationFolder,
    AuditEvent,
    Gateway,
    PamConfiguration,
)

SECRET = "Stored-Secret-Key-1"


def _make(personas, key_id: str, secret: str) -> PamConfiguration:
    config = make_configuration(personas.folder, personas.gateway, access_key_id=key_id)
    config.set_secret("access_secret_key", secret)
    config.save()
    return config


@pytest.fixture
def config(personas):
    return _make(personas, "AKIATEST", SECRET)


def _valid(**changes) -> dict:
    return {
        "title": "AWS IAM Configuration",
        "environment": "aws",
        "gateway": "default",
        "new_gateway": "",
        "aws_id": "AWS-Dept",
        "access_key_id": "AKIATEST",
        "access_secret_key": "Typed-Secret-Key-1",
        "region_names": "us-east-1, eu-west-2",
        "endpoint_url": "http://127.0.0.1:5055",
        "default_rotation_schedule": '{"type": "ON_DEMAND"}',
        **changes,
    }


def _create_url(personas) -> str:
    return f"/folders/{personas.folder.uid}/configurations/new/"


def _errors(response) -> dict:
    return response.context["form"].errors


# --- view ----------------------------------------------------------------------------------------


def test_configuration_page_shows_fields_but_not_the_secret(personas, config):
    html = login(personas.editor).get(f"/configurations/{config.uid}/").content.decode()
    assert "AWS IAM Configuration" in html
    assert "AKIATEST" in html
    assert "stored (never shown)" in html
    assert SECRET not in html


def test_configuration_page_includes_the_rotation_configuration_panel(personas, config):
    response = login(personas.viewer).get(f"/configurations/{config.uid}/")
    assert "rotation/configuration_panel.html" in [t.name for t in response.templates]


def test_viewer_sees_the_configuration_without_edit_or_delete(personas, config):
    html = login(personas.viewer).get(f"/configurations/{config.uid}/").content.decode()
    assert f"/configurations/{config.uid}/edit/" not in html
    assert f"/configurations/{config.uid}/delete/" not in html


def test_outsider_gets_404_on_the_configuration(personas, config):
    assert login(personas.outsider).get(f"/configurations/{config.uid}/").status_code == 404


def test_anonymous_is_sent_to_login_from_the_configuration(personas, config):
    assert Client().get(f"/configurations/{config.uid}/").status_code == 302


# --- create --------------------------------------------------------------------------------------


def test_editor_creates_a_configuration(personas):
    response = login(personas.editor).post(_create_url(personas), _valid())
    config = PamConfiguration.objects.get()
    assert response.url == f"/configurations/{config.uid}/"
    assert config.folder == personas.folder
    assert config.gateway == personas.gateway
    assert config.region_names == ["us-east-1", "eu-west-2"]
    assert config.default_rotation_schedule == {"type": "ON_DEMAND"}
    assert config.get_secret("access_secret_key") == "Typed-Secret-Key-1"
    assert AuditEvent.objects.filter(action="configuration.created").exists()
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Created the configuration “AWS IAM Configuration”."
    ]


def test_a_typed_gateway_name_creates_that_gateway_in_the_chosen_application(personas):
    personas.application.administrators.add(personas.editor)
    data = _valid(
        gateway="", new_gateway="east-1", new_gateway_application=personas.application.uid
    )
    login(personas.editor).post(_create_url(personas), data)
    gateway = Gateway.objects.get(name="east-1")
    assert PamConfiguration.objects.get().gateway == gateway
    assert gateway.application == personas.application
    assert not gateway.allow_instance_role  # only a superuser allows the host's credentials
    assert AuditEvent.objects.filter(action="gateway.created", object_uid=gateway.uid).exists()


def test_a_new_gateway_in_an_application_without_the_folder_shares_nothing(personas):
    other = Application.objects.create(name="Other App")
    other.administrators.add(personas.editor)
    data = _valid(gateway="", new_gateway="east-1", new_gateway_application=other.uid)
    response = login(personas.editor).post(_create_url(personas), data)
    assert response.status_code == 302
    assert Gateway.objects.get(name="east-1").application == other
    # Saving a configuration grants and shares nothing: an administrator of "Other App" with
    # the Share permission on "Team" has to share it.
    assert not other.folders.exists()
    assert ApplicationFolder.objects.count() == 1
    assert not AuditEvent.objects.filter(action="folder.shared").exists()


def test_an_existing_gateway_whose_application_lacks_the_folder_gets_nothing_shared(personas):
    personas.application.folders.clear()
    personas.application.administrators.add(personas.editor)  # so its gateway is offered
    response = login(personas.editor).post(_create_url(personas), _valid())
    assert response.status_code == 302
    assert PamConfiguration.objects.get().gateway == personas.gateway
    assert not personas.application.folders.exists()
    assert not AuditEvent.objects.filter(action="folder.shared").exists()


def test_choosing_no_gateway_is_a_field_error(personas):
    response = login(personas.editor).post(_create_url(personas), _valid(gateway=""))
    assert list(_errors(response)) == ["gateway"]


def test_choosing_a_gateway_and_typing_another_is_a_field_error(personas):
    personas.application.administrators.add(personas.editor)
    data = _valid(new_gateway="other", new_gateway_application=personas.application.uid)
    response = login(personas.editor).post(_create_url(personas), data)
    assert list(_errors(response)) == ["new_gateway"]
    assert not Gateway.objects.filter(name="other").exists()


def test_instance_role_sets_both_key_fields(personas):
    personas.gateway.allow_instance_role = True
    personas.gateway.save()
    data = _valid(access_key_id=USE_INSTANCE_ROLE, access_secret_key="", scope_user_pattern="svc-*")
    login(personas.editor).post(_create_url(personas), data)
    config = PamConfiguration.objects.get()
    assert config.access_key_id == USE_INSTANCE_ROLE
    assert config.get_secret("access_secret_key") == USE_INSTANCE_ROLE
    assert config.scope_user_pattern == "svc-*"


def test_missing_secret_key_is_a_field_error(personas):
    response = login(personas.editor).post(_create_url(personas), _valid(access_secret_key=""))
    assert list(_errors(response)) == ["access_secret_key"]
    assert "required unless" in _errors(response)["access_secret_key"][0]
    assert PamConfiguration.objects.count() == 0


def test_instance_role_secret_with_real_key_id_is_a_field_error(personas):
    data = _valid(access_secret_key=USE_INSTANCE_ROLE)
    response = login(personas.editor).post(_create_url(personas), data)
    assert list(_errors(response)) == ["access_secret_key"]


@pytest.mark.parametrize(
    "url", ["ftp://example.com", "file:///etc/passwd", "javascript:alert(1)", "127.0.0.1:5055"]
)
def test_endpoint_url_must_be_http_or_https(personas, url):
    response = login(personas.editor).post(_create_url(personas), _valid(endpoint_url=url))
    assert list(_errors(response)) == ["endpoint_url"]
    assert PamConfiguration.objects.count() == 0


def test_endpoint_url_is_optional(personas):
    login(personas.editor).post(_create_url(personas), _valid(endpoint_url=""))
    assert PamConfiguration.objects.get().endpoint_url == ""


def test_bad_region_name_is_a_field_error(personas):
    response = login(personas.editor).post(_create_url(personas), _valid(region_names="mars-1"))
    assert list(_errors(response)) == ["region_names"]


@pytest.mark.parametrize("schedule", ["not json", "[1, 2]", '{"kind": "DAILY"}'])
def test_schedule_must_be_a_json_object_with_a_type(personas, schedule):
    data = _valid(default_rotation_schedule=schedule)
    response = login(personas.editor).post(_create_url(personas), data)
    assert list(_errors(response)) == ["default_rotation_schedule"]


def test_duplicate_title_in_the_folder_is_a_field_error(personas, config):
    response = login(personas.editor).post(_create_url(personas), _valid())
    assert list(_errors(response)) == ["title"]
    assert PamConfiguration.objects.count() == 1


def test_errors_keep_what_was_typed_except_the_secret(personas):
    data = _valid(endpoint_url="ftp://x", aws_id="Typed-Dept")
    html = login(personas.editor).post(_create_url(personas), data).content.decode()
    assert 'value="Typed-Dept"' in html
    assert 'value="ftp://x"' in html
    assert "Typed-Secret-Key-1" not in html


def test_create_form_labels_every_input(personas):
    # An administrator of an application is also offered a new gateway: every input there is.
    personas.application.administrators.add(personas.editor)
    html = login(personas.editor).get(_create_url(personas)).content.decode()
    for name in (
        "title",
        "environment",
        "gateway",
        "new_gateway",
        "new_gateway_application",
        "scope_path_prefix",
        "scope_user_pattern",
        "aws_id",
        "access_key_id",
        "access_secret_key",
        "region_names",
        "endpoint_url",
        "default_rotation_schedule",
    ):
        assert f'<label for="id_{name}">' in html, name


def test_viewer_cannot_create(personas):
    client = login(personas.viewer)
    assert client.get(_create_url(personas)).status_code == 403
    assert client.post(_create_url(personas), _valid()).status_code == 403
    assert PamConfiguration.objects.count() == 0


def test_outsider_cannot_create(personas):
    assert login(personas.outsider).post(_create_url(personas), _valid()).status_code == 404
    assert PamConfiguration.objects.count() == 0


def test_anonymous_cannot_create(personas):
    assert Client().post(_create_url(personas), _valid()).status_code == 302
    assert PamConfiguration.objects.count() == 0


# --- edit ----------------------------------------------------------------------------------------


def test_edit_form_never_renders_the_secret(personas, config):
    html = login(personas.editor).get(f"/configurations/{config.uid}/edit/").content.decode()
    assert SECRET not in html
    assert "Leave blank to keep the stored secret key." in html


def test_blank_secret_on_edit_keeps_it(personas, config):
    data = _valid(access_secret_key="", aws_id="Renamed-Dept")
    response = login(personas.editor).post(f"/configurations/{config.uid}/edit/", data)
    config.refresh_from_db()
    assert response.status_code == 302
    assert (config.aws_id, config.get_secret("access_secret_key")) == ("Renamed-Dept", SECRET)


def test_switching_from_instance_role_to_keys_needs_a_secret(personas):
    config = _make(personas, USE_INSTANCE_ROLE, USE_INSTANCE_ROLE)
    data = _valid(access_secret_key="")
    response = login(personas.editor).post(f"/configurations/{config.uid}/edit/", data)
    assert list(_errors(response)) == ["access_secret_key"]


def test_invalid_edit_changes_nothing(personas, config):
    data = _valid(aws_id="Changed", endpoint_url="gopher://x")
    login(personas.editor).post(f"/configurations/{config.uid}/edit/", data)
    config.refresh_from_db()
    assert config.aws_id == "AWS-Dept"


def test_viewer_forged_edit_changes_nothing(personas, config):
    url = f"/configurations/{config.uid}/edit/"
    assert login(personas.viewer).get(url).status_code == 403
    assert login(personas.viewer).post(url, _valid(aws_id="Hacked")).status_code == 403
    config.refresh_from_db()
    assert config.aws_id == "AWS-Dept"


def test_outsider_edit_is_404(personas, config):
    url = f"/configurations/{config.uid}/edit/"
    assert login(personas.outsider).post(url, _valid(aws_id="Hacked")).status_code == 404
    config.refresh_from_db()
    assert config.aws_id == "AWS-Dept"


def test_anonymous_edit_redirects(personas, config):
    assert Client().post(f"/configurations/{config.uid}/edit/", _valid()).status_code == 302


# --- delete --------------------------------------------------------------------------------------


def test_editor_deletes_a_configuration(personas, config):
    response = login(personas.editor).post(f"/configurations/{config.uid}/delete/")
    assert response.url == f"/folders/{personas.folder.uid}/"
    assert not PamConfiguration.objects.exists()
    assert AuditEvent.objects.filter(action="configuration.deleted").exists()


def test_delete_configuration_in_use_is_refused_with_a_message(personas, config):
    from rotation.models import RotationSettings
    from tests.conftest import make_pam_user

    RotationSettings.objects.create(pam_user=make_pam_user(personas.folder), configuration=config)
    response = login(personas.editor).post(f"/configurations/{config.uid}/delete/")
    assert response.status_code == 302
    assert PamConfiguration.objects.filter(pk=config.pk).exists()
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert "was not deleted" in message


def test_delete_configuration_rejects_get(personas, config):
    assert login(personas.editor).get(f"/configurations/{config.uid}/delete/").status_code == 405


def test_viewer_forged_delete_keeps_the_configuration(personas, config):
    assert login(personas.viewer).post(f"/configurations/{config.uid}/delete/").status_code == 403
    assert PamConfiguration.objects.filter(pk=config.pk).exists()


def test_outsider_delete_is_404(personas, config):
    response = login(personas.outsider).post(f"/configurations/{config.uid}/delete/")
    assert response.status_code == 404
    assert PamConfiguration.objects.filter(pk=config.pk).exists()


def test_anonymous_delete_redirects(personas, config):
    assert Client().post(f"/configurations/{config.uid}/delete/").status_code == 302
    assert PamConfiguration.objects.filter(pk=config.pk).exists()
