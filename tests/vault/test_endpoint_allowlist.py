"""AWS_ENDPOINT_ALLOWLIST: a configuration's endpoint URL must name an allowed host, or the
vault would send signed requests wherever a folder owner points it (an internal address, a
port scan). The same check and message in the web form, the admin console and `pam import`.
"""

from __future__ import annotations

import copy

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from tests.conftest import login, login_verified, make_configuration
from tests.vault.test_admin import change_url, config_post
from tests.vault.test_importer import EXAMPLE
from vault import importer, validators
from vault.forms import PamConfigurationForm
from vault.models import USE_INSTANCE_ROLE, PamConfiguration

DEFAULTS = override_settings(AWS_ENDPOINT_ALLOWLIST=list(validators.AWS_ENDPOINT_DEFAULTS))

AWS_ENDPOINTS = [
    "https://iam.amazonaws.com",
    "https://iam.amazonaws.com/",
    "https://iam.amazonaws.com:443",
    "https://IAM.AmazonAWS.com",
    "https://iam-fips.amazonaws.com",
    "https://iam.us-gov.amazonaws.com",
    "https://iam.us-east-1.amazonaws.com",
    "https://iam.global.api.aws",
    "https://iam-fips.global.api.aws",
    "https://iam.us-gov.api.aws",
    "https://sts.amazonaws.com",
    "https://sts.eu-central-1.amazonaws.com",
    "https://sts-fips.us-east-2.amazonaws.com",
    "https://sts.us-gov-west-1.amazonaws.com",
    "https://sts.ap-southeast-2.api.aws",
    "https://sts-fips.us-west-2.api.aws",
    "https://iam.cn-north-1.amazonaws.com.cn",
    "https://iam.global.api.amazonwebservices.com.cn",
    "https://sts.cn-northwest-1.amazonaws.com.cn",
    "https://sts.cn-north-1.api.amazonwebservices.com.cn",
    # Interface VPC endpoints (PrivateLink), regional and zonal names.
    "https://vpce-0123456789abcdef0-abcdefgh.sts.us-east-1.vpce.amazonaws.com",
    "https://vpce-0123456789abcdef0-abcdefgh-us-east-1a.sts.us-east-1.vpce.amazonaws.com",
    "https://vpce-0123456789abcdef0-abcdefgh.iam.us-east-1.vpce.amazonaws.com",
    "https://vpce-0123456789abcdef0-abcdefgh.sts.cn-north-1.vpce.amazonaws.com.cn",
]
NOT_AWS = [
    "http://169.254.169.254/latest/meta-data/",  # the instance metadata service
    "http://127.0.0.1:5055",
    "http://localhost:8080",
    "http://10.0.0.5:22",
    "http://[::1]:8000",
    "http://2130706433/",  # 127.0.0.1 as one number
    "https://intranet.corp",
    "http://iam.amazonaws.com",  # plain HTTP would carry the new password in clear text
    "https://iam.amazonaws.com:8443",
    "https://iam.amazonaws.com.evil.example",
    "https://evil.example/iam.amazonaws.com",
    # Names under AWS's domains that other AWS customers control, or that resolve to private
    # addresses: a bucket website, an API Gateway, an internal load balancer, an EC2 host, an
    # endpoint service.
    "https://sts.s3-website-us-east-1.amazonaws.com",
    "https://abc123.execute-api.us-east-1.amazonaws.com",
    "https://internal-app-123.us-east-1.elb.amazonaws.com",
    "https://ec2-10-0-0-1.compute-1.amazonaws.com",
    "https://vpce-1.vpce-svc-0123456789abcdef0.us-east-1.vpce.amazonaws.com",
    "https://sts.us-east-1.amazonaws.com.",
]


# --- the validator ------------------------------------------------------------------------------


@DEFAULTS
@pytest.mark.parametrize("url", AWS_ENDPOINTS)
def test_aws_iam_and_sts_endpoints_are_allowed_by_default(url):
    validators.validate_endpoint_url(url)


@DEFAULTS
@pytest.mark.parametrize("url", NOT_AWS)
def test_other_addresses_are_refused_by_default(url):
    with pytest.raises(ValidationError) as caught:
        validators.validate_endpoint_url(url)
    assert caught.value.code == "endpoint_not_allowed"


@DEFAULTS
def test_empty_endpoint_means_aws_itself_and_is_always_allowed():
    validators.validate_endpoint_url("")
    with override_settings(AWS_ENDPOINT_ALLOWLIST=[]):
        validators.validate_endpoint_url("")


@DEFAULTS
def test_the_refusal_says_what_to_do():
    with pytest.raises(ValidationError) as caught:
        validators.validate_endpoint_url("http://169.254.169.254/")
    [message] = caught.value.messages
    assert "http://169.254.169.254:80" in message
    assert "AWS_ENDPOINT_ALLOWLIST" in message
    assert "leave it empty" in message


@pytest.mark.parametrize(
    "url", ["https://iam.amazonaws.com@evil.example", "https://user:pw@iam.amazonaws.com"]
)
def test_user_names_in_the_url_are_refused(url):
    with pytest.raises(ValidationError):
        validators.validate_endpoint_url(url)
    assert not validators.endpoint_allowed(url)


def test_malformed_urls_are_still_malformed_not_disallowed():
    with pytest.raises(ValidationError) as caught:
        validators.validate_endpoint_url("ftp://iam.amazonaws.com")
    assert caught.value.code == "invalid_endpoint"


@pytest.mark.parametrize(
    "patterns, url, ok",
    [
        (["http://127.0.0.1:5055"], "http://127.0.0.1:5055", True),
        (["http://127.0.0.1:5055"], "http://127.0.0.1:5055/some/path", True),
        (["http://127.0.0.1:5055"], "http://127.0.0.1:5056", False),
        (["http://127.0.0.1:5055"], "https://127.0.0.1:5055", False),
        (["http://127.0.0.1:*"], "http://127.0.0.1:1", True),
        (["http://127.0.0.1:*"], "http://127.0.0.2:1", False),
        (["127.0.0.1"], "https://127.0.0.1", True),
        (["127.0.0.1"], "https://127.0.0.1:8443", False),
        (["127.0.0.1"], "http://127.0.0.1", False),
        (["https://proxy.corp:8443"], "https://proxy.corp:8443", True),
        (["*.example.com"], "https://a.example.com", True),
        (["*.example.com"], "https://a.b.example.com", False),
        (["*.example.com"], "https://example.com", False),
        (["sts.{region}.example.com"], "https://sts.eu-west-3.example.com", True),
        (["sts.{region}.example.com"], "https://sts.evil.example.com", False),
        (["http://[::1]:8000"], "http://[::1]:8000", True),
        ([], "https://iam.amazonaws.com", False),
        (["iam.amazonaws.com", "http://moto:5000"], "http://moto:5000/", True),
    ],
)
def test_allowlist_patterns(patterns, url, ok):
    with override_settings(AWS_ENDPOINT_ALLOWLIST=patterns):
        assert validators.endpoint_allowed(url) is ok


@pytest.mark.parametrize(
    "pattern",
    ["ftp://host", "host/path", "host:port", "host:0", "ho st", "*", "a.*x.com", "", "{zone}.x"],
)
def test_malformed_patterns_are_rejected(pattern):
    with pytest.raises(ValueError):
        validators.parse_endpoint_patterns([pattern])


def test_the_default_list_parses():
    assert validators.parse_endpoint_patterns(validators.AWS_ENDPOINT_DEFAULTS)


# --- where people enter it ----------------------------------------------------------------------


def _form(personas, url: str) -> PamConfigurationForm:
    data = {
        "title": "C",
        "environment": "aws",
        "gateway": personas.gateway.name,
        "new_gateway": "",
        "aws_id": "",
        "access_key_id": "AKIAEXAMPLE",
        "access_secret_key": "secret",
        "region_names": "us-east-1",
        "endpoint_url": url,
        "default_rotation_schedule": '{"type": "ON_DEMAND"}',
    }
    return PamConfigurationForm(data, folder=personas.folder, user=personas.editor)


@DEFAULTS
@pytest.mark.django_db
def test_web_form_shows_the_refusal_as_a_field_error(personas):
    form = _form(personas, "http://169.254.169.254/")
    assert not form.is_valid()
    assert list(form.errors) == ["endpoint_url"]
    assert "AWS_ENDPOINT_ALLOWLIST" in form.errors["endpoint_url"][0]


@DEFAULTS
@pytest.mark.django_db
def test_web_form_takes_an_aws_endpoint(personas):
    form = _form(personas, "https://sts.us-east-1.amazonaws.com")
    assert "endpoint_url" not in form.errors


@DEFAULTS
@pytest.mark.django_db
def test_creating_a_configuration_for_an_internal_address_saves_nothing(personas):
    client = login(personas.editor)
    response = client.post(
        f"/folders/{personas.folder.uid}/configurations/new/",
        {**_form(personas, "http://10.1.2.3:8080/").data, "access_key_id": USE_INSTANCE_ROLE},
    )
    assert response.status_code == 200
    assert "AWS_ENDPOINT_ALLOWLIST" in response.content.decode()
    assert not PamConfiguration.objects.exists()


@DEFAULTS
@pytest.mark.django_db
def test_admin_console_shows_the_refusal_as_a_field_error(personas):
    config = make_configuration(personas.folder, personas.gateway)
    admin = login_verified(personas.superuser)
    response = admin.post(change_url(config), config_post(config, endpoint_url="http://10.0.0.1"))
    assert response.status_code == 200
    assert "AWS_ENDPOINT_ALLOWLIST" in response.content.decode()
    config.refresh_from_db()
    assert config.endpoint_url == ""


@DEFAULTS
@pytest.mark.django_db
def test_pam_import_names_the_json_path(db):
    doc = copy.deepcopy(EXAMPLE)
    doc["configurations"][0]["endpoint_url"] = "http://169.254.169.254"
    with pytest.raises(importer.ImportProblems) as caught:
        importer.import_document(doc)
    message = caught.value.problems[0]
    assert message.startswith("configurations[0].endpoint_url: endpoint URL ")
    assert "AWS_ENDPOINT_ALLOWLIST" in message


# --- test settings and `make run` ---------------------------------------------------------------


def test_test_settings_allow_the_local_emulator_and_fault_proxy(settings):
    assert validators.endpoint_allowed("http://127.0.0.1:5055")
    assert validators.endpoint_allowed("http://127.0.0.1:41234")
    assert not validators.endpoint_allowed("http://169.254.169.254")
