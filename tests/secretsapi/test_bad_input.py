"""Bad input from a good credential, and the signing rules around the operation: every request
is answered in AWS's shape with a 4xx (never a 500), and audited. boto3 validates its input
before it sends, so these requests are signed by botocore's SigV4 signer and sent raw through
Django's test client, as received over HTTP (see tests/secretsapi/test_queries.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from secretsapi import sigv4
from secretsapi.actions import ACTIONS
from tests.secretsapi.conftest import REGION, make_credential, make_record, send_to_test_client
from vault import access
from vault.models import AuditEvent

URL = "http://testserver/aws/secretsmanager/"


class PartialAuth(SigV4Auth):
    """botocore's signer, leaving the named headers out of SignedHeaders."""

    def __init__(self, credentials, service, region, leave_out=()):
        super().__init__(credentials, service, region)
        self.leave_out = leave_out

    def headers_to_sign(self, request):
        headers = super().headers_to_sign(request)
        for name in self.leave_out:
            del headers[name]
        return headers


def post(client, credential, secret, target: str, body: bytes, *, region=REGION, leave_out=()):
    request = AWSRequest(
        method="POST",
        url=URL,
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"secretsmanager.{target}",
        },
    )
    PartialAuth(
        Credentials(credential.access_key_id, secret), "secretsmanager", region, leave_out
    ).add_auth(request)
    return send_to_test_client(client, request)


def answer(response) -> tuple[int, str, str]:
    body = json.loads(response.content)
    return response.status_code, body.get("__type", ""), body.get("message", "")


@pytest.fixture
def setup(personas, settings):
    settings.SECRETS_API_RATE_LIMIT = 0  # the property tests send many requests a second
    credential, secret = make_credential(personas.application)
    record = make_record(personas.folder, "AppUser", "First-Passw0rd!")
    return personas, credential, secret, record


def refusals() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="secretsapi.refused").order_by("id"))


# --- parameters of the wrong type ---------------------------------------------------------------

NOT_STRINGS = [[], {}, 5, 1.5, True, ["a"], {"a": "b"}]
BAD_STRINGS = ["", "a\x00b", "\ud800", "x" * 2049]
FILTER = [{"Key": "name", "Values": ["AWS"]}]


def bad_requests():
    for bad in NOT_STRINGS + BAD_STRINGS:
        yield "GetSecretValue", {"SecretId": bad}
        yield "GetSecretValue", {"SecretId": "AWS user: AppUser", "VersionId": bad}
        yield "GetSecretValue", {"SecretId": "AWS user: AppUser", "VersionStage": bad}
        yield "DescribeSecret", {"SecretId": bad}
        yield "BatchGetSecretValue", {"SecretIdList": [bad]}
        yield "BatchGetSecretValue", {"SecretIdList": ["AWS user: AppUser", bad]}
        yield "ListSecrets", {"Filters": [{"Key": "name", "Values": [bad]}]}
        yield "BatchGetSecretValue", {"Filters": [{"Key": "all", "Values": ["a", bad]}]}
    for bad in NOT_STRINGS + ["", "\ud800", "nope"]:
        for action in ("ListSecrets", "BatchGetSecretValue"):
            yield action, {"Filters": FILTER, "SortBy": bad}
            yield action, {"Filters": FILTER, "SortOrder": bad}
            yield action, {"Filters": [{"Key": bad, "Values": ["a"]}]}
            if bad != ["a"]:  # a good Values
                yield action, {"Filters": [{"Key": "name", "Values": bad}]}
            if type(bad) is not int:  # 5 is a good MaxResults
                yield action, {"Filters": FILTER, "MaxResults": bad}
    for action in ("ListSecrets", "BatchGetSecretValue"):
        for values in ([], [5], [[]], [{}], ["a"] * 11, "a"):
            yield action, {"Filters": [{"Key": "name", "Values": values}]}
    for bad in (0, -1, 101, 10**30, 1.0, True, "5"):
        yield "ListSecrets", {"MaxResults": bad}
    for bad in ([], {}, 5, "", "forged", "\ud800"):
        yield "ListSecrets", {"NextToken": bad}
    for bad in ([], {}, 5, "ids", [[]], [{}], list("x" * 21)):
        yield "BatchGetSecretValue", {"SecretIdList": bad}
    yield "BatchGetSecretValue", {"SecretIdList": ["a"], "Filters": FILTER}
    yield "BatchGetSecretValue", {}


@pytest.mark.parametrize("target,params", list(bad_requests()))
def test_a_parameter_of_the_wrong_type_is_an_invalid_parameter(client, setup, target, params):
    personas, credential, secret, record = setup
    body = json.dumps(params).encode()
    status, code, message = answer(post(client, credential, secret, target, body))
    assert status == 400 and message
    assert code in ("InvalidParameterException", "InvalidNextTokenException")
    [refusal] = refusals()
    assert refusal.details["error"] == code and refusal.details["reason"] == "bad request"
    assert not AuditEvent.objects.filter(action="secretsapi.read").exists()


def test_the_reviews_examples_are_invalid_parameters(client, setup):
    personas, credential, secret, record = setup
    for params in ({"SortBy": []}, {"Filters": [{"Key": [], "Values": ["a"]}]}):
        response = post(client, credential, secret, "ListSecrets", json.dumps(params).encode())
        assert answer(response)[:2] == (400, "InvalidParameterException")
    assert [e.details["error"] for e in refusals()] == ["InvalidParameterException"] * 2


def test_json_nested_too_deep_is_a_serialization_error(client, setup):
    personas, credential, secret, record = setup
    body = b"[" * 100_000 + b"]" * 100_000
    status, code, _ = answer(post(client, credential, secret, "ListSecrets", body))
    assert (status, code) == (400, "SerializationException")
    assert refusals()[0].details["error"] == "SerializationException"


def test_a_secret_id_audit_detail_keeps_what_a_json_column_cannot(client, setup):
    personas, credential, secret, record = setup
    body = json.dumps({"SecretId": "x" * 3000 + "\ud800"}).encode()
    post(client, credential, secret, "GetSecretValue", body)
    body = json.dumps({"SecretId": "a\ud800b"}).encode()
    post(client, credential, secret, "GetSecretValue", body)
    first, second = refusals()
    assert len(first.details["secret_id"]) == 200
    assert second.details["secret_id"] == "a\\ud800b"


# --- arbitrary JSON bodies never give a 500 -----------------------------------------------------

PARAMETER_NAMES = [
    "SecretId",
    "VersionId",
    "VersionStage",
    "SecretIdList",
    "Filters",
    "SortBy",
    "SortOrder",
    "MaxResults",
    "NextToken",
    "Key",
    "Values",
]
odd_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "\x00", "\ud800", "AWS user: AppUser", "AWSCURRENT", "AWSPENDING"]),
    st.sampled_from(["name", "all", "description", "tag-key", "asc", "desc", "created-date"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    odd_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(PARAMETER_NAMES), odd_text), inner, max_size=4),
    ),
    max_leaves=12,
)
bodies = st.dictionaries(st.sampled_from(PARAMETER_NAMES), json_values, max_size=5)
NEVER_500 = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("target", sorted(ACTIONS))
@NEVER_500
@given(params=bodies)
def test_any_json_body_is_answered_without_a_server_error(client, setup, target, params):
    personas, credential, secret, record = setup
    before = AuditEvent.objects.count()
    refused_before = AuditEvent.objects.filter(action="secretsapi.refused").count()
    body = json.dumps(params).encode()
    status, code, message = answer(post(client, credential, secret, target, body))
    assert status in (200, 400), (status, code, message)
    refused = AuditEvent.objects.filter(action="secretsapi.refused").count() - refused_before
    if status == 400:
        assert code and message and refused == 1
    else:
        assert refused == 0 and AuditEvent.objects.count() > before  # audited as a use


@NEVER_500
@given(value=json_values)
# The strategy can name the record: an object asking for it is a good request (found by CI).
@example(value={"SecretId": "AWS user: AppUser"})
def test_any_json_value_as_the_body_is_answered_without_a_server_error(client, setup, value):
    personas, credential, secret, record = setup
    body = json.dumps(value).encode()
    status, code, _ = answer(post(client, credential, secret, "GetSecretValue", body))
    if status == 200:
        assert isinstance(value, dict) and value.get("SecretId") == record.title
        return
    assert status == 400 and code in (
        "SerializationException",
        "InvalidParameterException",
        "ResourceNotFoundException",
    )


# --- the generic failure path -------------------------------------------------------------------


def test_an_unexpected_failure_is_audited(client, setup, monkeypatch):
    personas, credential, secret, record = setup

    def broken(caller, params):
        raise RuntimeError("boom")

    monkeypatch.setitem(ACTIONS, "GetSecretValue", broken)
    body = json.dumps({"SecretId": record.uid}).encode()
    status, code, message = answer(post(client, credential, secret, "GetSecretValue", body))
    assert (status, code) == (500, "InternalServiceError") and "boom" not in message
    [refusal] = refusals()
    assert refusal.details["reason"] == "server error"
    assert refusal.details["access_key_id"] == credential.access_key_id


def test_a_failure_before_the_caller_is_known_is_audited(client, setup, monkeypatch):
    personas, credential, secret, record = setup
    monkeypatch.setattr(
        "secretsapi.views.authenticate", mock.Mock(side_effect=RuntimeError("boom"))
    )
    body = json.dumps({"SecretId": record.uid}).encode()
    status, code, _ = answer(post(client, credential, secret, "GetSecretValue", body))
    assert (status, code) == (500, "InternalServiceError")
    assert refusals()[0].details == {"reason": "server error", "error": "InternalServiceError"}


# --- a batch audits each record it reads --------------------------------------------------------


def test_a_batch_audits_each_record_in_its_folder(client, setup):
    personas, credential, secret, record = setup
    other = make_record(personas.folder, "Second", "Second-Passw0rd!")
    foreign = make_record(personas.other_folder, "Foreign", "Foreign-Passw0rd!")
    body = json.dumps({"SecretIdList": [record.uid, other.title, foreign.uid]}).encode()
    assert post(client, credential, secret, "BatchGetSecretValue", body).status_code == 200
    events = list(AuditEvent.objects.filter(action="secretsapi.read"))
    assert sorted(e.object_uid for e in events) == sorted([record.uid, other.uid])
    assert {e.folder_id for e in events} == {personas.folder.pk}
    # The folder's trail shows them (each party looks at its folder's trail).
    in_folder = AuditEvent.objects.filter(folder=personas.folder, action="secretsapi.read")
    assert in_folder.count() == 2


def test_a_batch_that_reads_nothing_is_one_event(client, setup):
    personas, credential, secret, record = setup
    body = json.dumps({"SecretIdList": ["no-such-secret"]}).encode()
    assert post(client, credential, secret, "BatchGetSecretValue", body).status_code == 200
    [event] = AuditEvent.objects.filter(action="secretsapi.read")
    assert event.object_uid == "" and event.details["errors"] == 1


# --- the region and the headers that must be signed ---------------------------------------------


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-2", "us-gov-west-1", "cn-north-1"])
def test_a_region_shaped_like_aws_is_accepted(client, setup, region):
    personas, credential, secret, record = setup
    response = post(client, credential, secret, "ListSecrets", b"{}", region=region)
    assert response.status_code == 200
    arn = json.loads(response.content)["SecretList"][0]["ARN"]
    assert arn.startswith(f"arn:aws:secretsmanager:{region}:")


@pytest.mark.parametrize(
    "region", ["anywhere", "us-east", "US-EAST-1", "us-east-1x", "us_east_1", "a-1", "<x>-1"]
)
def test_a_region_not_shaped_like_aws_is_refused(client, setup, region):
    personas, credential, secret, record = setup
    response = post(client, credential, secret, "ListSecrets", b"{}", region=region)
    status, code, message = answer(response)
    assert (status, code) == (403, "InvalidSignatureException") and "region" in message
    assert refusals()[0].details["reason"] == "bad signature"
    assert not AuditEvent.objects.filter(action="secretsapi.listed").exists()


@pytest.mark.parametrize("name", ["x-amz-target", "content-type"])
def test_the_operation_and_content_type_must_be_signed(client, setup, name):
    personas, credential, secret, record = setup
    body = json.dumps({"SecretId": record.uid}).encode()
    response = post(client, credential, secret, "GetSecretValue", body, leave_out=[name])
    status, code, message = answer(response)
    assert (status, code) == (403, "InvalidSignatureException") and f"'{name}'" in message
    assert not AuditEvent.objects.filter(action="secretsapi.read").exists()


def test_the_request_checks_run_once(client, setup):
    personas, credential, secret, record = setup
    with mock.patch("secretsapi.sigv4.check_request", wraps=sigv4.check_request) as check:
        response = post(client, credential, secret, "ListSecrets", b"{}")
    assert response.status_code == 200 and check.call_count == 1


# --- what an application reads (vault.access) ---------------------------------------------------


def test_records_shared_to_an_application_are_its_folders_records(setup):
    personas, credential, secret, record = setup
    foreign = make_record(personas.other_folder, "Foreign", "Foreign-Passw0rd!")
    shared = set(access.records_shared_to_application(personas.application.pk))
    assert record in shared and foreign not in shared


@pytest.mark.parametrize("key_id", ["PVAK\x00AAAAAAAAAAAAAAA", "PVAK-AAAA", "x" * 129])
def test_an_access_key_id_no_credential_can_have_is_an_unknown_key(client, setup, key_id):
    personas, credential, secret, record = setup
    forged = SimpleNamespace(access_key_id=key_id)
    response = post(client, forged, secret, "GetSecretValue", b'{"SecretId": "x"}')
    status, code, message = answer(response)
    assert (status, code) == (400, "UnrecognizedClientException")
    [refusal] = refusals()
    assert refusal.details["reason"] == "unknown access key id"
