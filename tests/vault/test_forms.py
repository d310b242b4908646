"""Form validation without HTTP: every bad input is a field error, never an exception."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from vault.forms import (
    MemberAddForm,
    PamConfigurationForm,
    PamUserForm,
    clean_default_rotation_schedule,
)
from vault.models import USE_INSTANCE_ROLE, Application, Gateway


def _user_form(personas, **changes) -> PamUserForm:
    data = {
        "title": "T",
        "login": "TestUser",
        "distinguished_name": "arn:aws:iam::123456789012:user/TestUser",
        "password": "",
        **changes,
    }
    return PamUserForm(data, folder=personas.folder)


@pytest.mark.parametrize(
    "arn,login",
    [
        ("arn:aws:iam::123456789012:user/TestUser", "TestUser"),
        ("arn:aws-cn:iam::123456789012:user/TestUser", "TestUser"),
        ("arn:aws-us-gov:iam::123456789012:user/TestUser", "TestUser"),
        ("arn:aws:iam::123456789012:user/division_abc/subdivision_xyz/Bob", "Bob"),
        ("arn:aws:iam::123456789012:user/a+b=c,d.e@f_g-h", "a+b=c,d.e@f_g-h"),
    ],
)
def test_valid_arns_are_accepted(personas, arn, login):
    form = _user_form(personas, distinguished_name=arn, login=login)
    assert form.is_valid(), form.errors


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::12345678901:user/TestUser",  # 11 digits
        "arn:aws:iam::1234567890123:user/TestUser",  # 13 digits
        "arn:aws-eu:iam::123456789012:user/TestUser",  # no such partition
        "arn:aws:iam:us-east-1:123456789012:user/TestUser",  # IAM ARNs have no region
        "arn:aws:iam::123456789012:group/TestUser",
        "arn:aws:iam::123456789012:user/",
        "arn:aws:iam::123456789012:user//TestUser",
        "arn:aws:iam::123456789012:user/Test User",
        "TestUser",
        "",
    ],
)
def test_invalid_arns_are_field_errors(personas, arn):
    form = _user_form(personas, distinguished_name=arn)
    assert not form.is_valid()
    assert "distinguished_name" in form.errors


def test_arn_name_must_match_login_case_sensitively(personas):
    form = _user_form(personas, login="testuser")
    assert not form.is_valid()
    assert list(form.errors) == ["distinguished_name"]


def test_login_longer_than_64_is_an_error(personas):
    name = "a" * 65
    form = _user_form(
        personas, login=name, distinguished_name=f"arn:aws:iam::123456789012:user/{name}"
    )
    assert "login" in form.errors


@pytest.mark.parametrize("login", ["Test User", "Test/User", "Tést", "Test#1"])
def test_login_with_characters_iam_forbids_is_an_error(personas, login):
    form = _user_form(personas, login=login)
    assert "login" in form.errors


def test_password_of_exactly_128_printable_characters_is_accepted(personas):
    assert _user_form(personas, password="~ " * 64).is_valid()


@pytest.mark.parametrize("password", ["a" * 129, "tab\there", "new\nline", "emoji🙂"])
def test_password_beyond_128_printable_ascii_is_an_error(personas, password):
    form = _user_form(personas, password=password)
    assert list(form.errors) == ["password"]


def test_password_keeps_surrounding_spaces(personas):
    form = _user_form(personas, password=" spaced ")
    assert form.is_valid()
    assert form.cleaned_data["password"] == " spaced "


def _config_form(personas, user=None, **changes) -> PamConfigurationForm:
    """Filled in by the editor of "Team", on the gateway whose application serves "Team"."""
    data = {
        "title": "C",
        "environment": "aws",
        "gateway": "default",
        "new_gateway": "",
        "aws_id": "",
        "access_key_id": "AKIAEXAMPLE",
        "access_secret_key": "s3cr3t",
        "region_names": "us-east-1",
        "endpoint_url": "",
        "default_rotation_schedule": '{"type": "ON_DEMAND"}',
        "scope_path_prefix": "",
        "scope_user_pattern": "",
        **changes,
    }
    return PamConfigurationForm(data, folder=personas.folder, user=user or personas.editor)


@pytest.mark.parametrize("regions", ["us-east-1", "us-gov-west-1, cn-north-1", "eu-central-2"])
def test_region_names_like_aws_are_accepted(personas, regions):
    assert _config_form(personas, region_names=regions).is_valid()


@pytest.mark.parametrize("regions", ["US-EAST-1", "useast1", "us-east", ",", "us-east-1;eu-west-1"])
def test_region_names_unlike_aws_are_errors(personas, regions):
    assert list(_config_form(personas, region_names=regions).errors) == ["region_names"]


def test_region_names_are_split_trimmed_and_deduplicated(personas):
    form = _config_form(personas, region_names=" us-east-1 ,eu-west-1, us-east-1 ")
    assert form.is_valid()
    assert form.cleaned_data["region_names"] == ["us-east-1", "eu-west-1"]


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:5055", "https://iam.us-east-1.amazonaws.com", "https://sts.amazonaws.com/"],
)
def test_allowed_http_and_https_endpoints_are_accepted(personas, url):
    assert _config_form(personas, endpoint_url=url).is_valid()


@pytest.mark.parametrize(
    "url", ["https://", "http://host:port", "http://a b", "ws://host", "http://moto:5000/"]
)
def test_malformed_endpoints_are_errors(personas, url):
    assert list(_config_form(personas, endpoint_url=url).errors) == ["endpoint_url"]


def test_instance_role_secret_is_instance_role(personas):
    personas.gateway.allow_instance_role = True
    personas.gateway.save()
    form = _config_form(
        personas, access_key_id=USE_INSTANCE_ROLE, access_secret_key="", scope_user_pattern="svc-*"
    )
    assert form.is_valid(), form.errors
    assert form.secret_for_service() == USE_INSTANCE_ROLE


def test_real_key_id_with_secret_passes_the_secret(personas):
    form = _config_form(personas, access_key_id="AKIAEXAMPLE", access_secret_key="s3cr3t/+x")
    assert form.is_valid()
    assert form.secret_for_service() == "s3cr3t/+x"


def test_access_key_id_with_odd_characters_is_an_error(personas):
    form = _config_form(personas, access_key_id="AKIA EXAMPLE", access_secret_key="x")
    assert "access_key_id" in form.errors


def test_gateway_name_that_is_not_a_slug_is_an_error(personas):
    # Only an administrator of an application is offered a new gateway at all.
    personas.application.administrators.add(personas.editor)
    form = _config_form(
        personas,
        gateway="",
        new_gateway="two words",
        new_gateway_application=personas.application.uid,
    )
    assert list(form.errors) == ["new_gateway"]


@pytest.mark.parametrize("name", ["nope", "foreign"])
def test_unknown_or_unlisted_gateway_choice_is_an_error(personas, name):
    # "foreign" exists, but its application neither serves "Team" nor is administered by the
    # editor: it is not listed, so choosing it is as wrong as naming a gateway that does not exist.
    Gateway.objects.create(name="foreign", application=Application.objects.create(name="Other"))
    form = _config_form(personas, gateway=name)
    assert list(form.errors) == ["gateway"]
    assert [g.name for g in form.fields["gateway"].queryset] == ["default"]


def test_schedule_function_returns_the_normalised_schedule():
    assert clean_default_rotation_schedule('{"type": "DAILY", "time": "03:00"}') == {
        "type": "DAILY",
        "time": "03:00:00",
        "tz": "UTC",
        "intervalCount": 1,
    }


def test_schedule_function_refuses_an_invalid_schedule():
    with pytest.raises(ValidationError):
        clean_default_rotation_schedule('{"type": "WEEKLY", "weekday": "FUNDAY"}')


@pytest.mark.parametrize(
    "text", ["", "{", "null", '"ON_DEMAND"', "{}", '{"type": ""}', '{"type": 1}']
)
def test_schedule_function_rejects_anything_but_an_object_with_a_type(text):
    with pytest.raises(ValidationError):
        clean_default_rotation_schedule(text)


def test_member_add_form_returns_the_user(personas):
    from tests.conftest import make_user

    newcomer = make_user("newcomer")
    form = MemberAddForm({"username": "newcomer", "manage_users": "on"}, folder=personas.folder)
    assert form.is_valid()
    assert form.cleaned_data["username"] == newcomer
    assert form.permissions() == {
        "can_edit": False,
        "can_share": False,
        "manage_records": False,
        "manage_users": True,
    }


# --- a new configuration preselects an online gateway ----------------------------------------


def _new_config_form(personas) -> PamConfigurationForm:
    return PamConfigurationForm(folder=personas.folder, user=personas.editor)


def test_a_new_configuration_preselects_the_online_gateway_serving_the_folder(personas):
    from django.utils import timezone

    Gateway.objects.filter(pk=personas.gateway.pk).update(last_seen_at=timezone.now())
    form = _new_config_form(personas)
    assert form["gateway"].value() == "default"
    assert 'value="default" selected' in str(form["gateway"])


def test_an_online_gateway_serving_the_folder_comes_before_one_that_does_not(personas):
    from django.utils import timezone

    now = timezone.now()
    mine = Application.objects.create(name="Mine")
    mine.administrators.add(personas.editor)
    Gateway.objects.create(name="aaa-mine", application=mine, last_seen_at=now)
    Gateway.objects.filter(pk=personas.gateway.pk).update(last_seen_at=now - timedelta(seconds=30))
    assert _new_config_form(personas)["gateway"].value() == "default"


def test_no_gateway_is_preselected_when_none_is_online(personas):
    from django.utils import timezone

    Gateway.objects.filter(pk=personas.gateway.pk).update(
        last_seen_at=timezone.now() - timedelta(hours=1)
    )
    assert _new_config_form(personas)["gateway"].value() is None


def test_editing_a_configuration_keeps_its_own_gateway(personas):
    from django.utils import timezone

    from tests.conftest import make_configuration

    offline = Gateway.objects.create(name="zz-offline", application=personas.application)
    config = make_configuration(personas.folder, offline)
    Gateway.objects.filter(pk=personas.gateway.pk).update(last_seen_at=timezone.now())
    form = PamConfigurationForm(folder=personas.folder, user=personas.editor, instance=config)
    assert form["gateway"].value() == "zz-offline"
