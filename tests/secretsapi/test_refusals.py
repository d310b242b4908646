"""Every refusal of the secrets API, over HTTP to a live server: boto3 with a wrong or unusable
credential, and requests signed by botocore's SigV4 signer then skewed or tampered with."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.exceptions import ClientError
from django.utils import timezone

from secretsapi.models import ClientCredential
from tests.secretsapi.conftest import boto_client, make_credential, send, signed_request
from vault.models import AuditEvent


def error_of(response) -> tuple[int, str, str]:
    body = json.loads(response.content)
    assert response.headers["Content-Type"] == "application/x-amz-json-1.1"
    return response.status_code, body["__type"], body["message"]


def refusals() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="secretsapi.refused").order_by("id"))


def get_body(api) -> bytes:
    return json.dumps({"SecretId": api.record.uid}).encode()


def assert_nothing_read(api) -> None:
    assert not AuditEvent.objects.filter(action="secretsapi.read").exists()
    api.credential.refresh_from_db()
    assert api.credential.last_used_at is None


# --- the credential -----------------------------------------------------------------------------


def test_success_notes_when_and_where_the_credential_was_last_used(api):
    api.client().get_secret_value(SecretId=api.record.uid)
    api.credential.refresh_from_db()
    assert api.credential.last_used_ip == "127.0.0.1"
    assert timezone.now() - api.credential.last_used_at < timedelta(seconds=30)


def test_wrong_secret(api):
    client = api.client(secret="x" * 40)
    with pytest.raises(ClientError) as caught:
        client.get_secret_value(SecretId=api.record.uid)
    error = caught.value.response
    assert error["Error"]["Code"] == "InvalidSignatureException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert_nothing_read(api)
    (event,) = refusals()
    assert event.details["reason"] == "bad signature"
    assert event.details["access_key_id"] == api.credential.access_key_id
    assert event.details["application"] == api.application.name
    assert event.source_ip == "127.0.0.1"


def test_unknown_access_key_id(api):
    client = boto_client(api.url, "PVAKAAAAAAAAAAAAAAAA", api.secret)
    with pytest.raises(ClientError) as caught:
        client.get_secret_value(SecretId=api.record.uid)
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    (event,) = refusals()
    assert event.details["reason"] == "unknown access key id"
    assert event.details["access_key_id"] == "PVAKAAAAAAAAAAAAAAAA"


@pytest.mark.parametrize(
    "fields,reason",
    [
        ({"revoked_at": timezone.now() - timedelta(seconds=1)}, "revoked"),
        ({"expires_at": timezone.now() - timedelta(seconds=1)}, "expired"),
    ],
)
def test_revoked_or_expired_credential(api, fields, reason):
    ClientCredential.objects.filter(pk=api.credential.pk).update(**fields)
    client = api.client()
    with pytest.raises(ClientError) as caught:
        client.get_secret_value(SecretId=api.record.uid)
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert reason in caught.value.response["Error"]["Message"]
    assert_nothing_read(api)
    assert refusals()[0].details["reason"] == reason


def test_a_credential_not_yet_expired_works(api):
    ClientCredential.objects.filter(pk=api.credential.pk).update(
        expires_at=timezone.now() + timedelta(days=1)
    )
    assert api.client().get_secret_value(SecretId=api.record.uid)["SecretString"]


def test_disallowed_network(api):
    ClientCredential.objects.filter(pk=api.credential.pk).update(
        allowed_networks=["10.0.0.0/8", "2001:db8::/32"]
    )
    client = api.client()
    with pytest.raises(ClientError) as caught:
        client.get_secret_value(SecretId=api.record.uid)
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "127.0.0.1" in caught.value.response["Error"]["Message"]
    assert_nothing_read(api)
    assert refusals()[0].details["reason"] == "network not allowed"
    ClientCredential.objects.filter(pk=api.credential.pk).update(
        allowed_networks=["10.0.0.0/8", "127.0.0.0/8"]
    )
    assert client.get_secret_value(SecretId=api.record.uid)["SecretString"]


def test_another_applications_credential_sees_none_of_these_records(api):
    from vault.models import Application

    stranger, secret = make_credential(Application.objects.create(name="Other app"))
    client = api.client(stranger, secret)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_secret_value(SecretId=api.record.uid)
    assert client.list_secrets()["SecretList"] == []


def test_rate_limit_answers_throttling(api, settings, monkeypatch):
    from secretsapi import authentication

    settings.SECRETS_API_RATE_LIMIT = 2
    second = [1]
    monkeypatch.setattr(authentication, "rate_window", lambda: second[0])
    client = api.client()
    codes = []
    for _ in range(4):
        try:
            client.describe_secret(SecretId=api.record.uid)
            codes.append("ok")
        except ClientError as exc:
            codes.append(exc.response["Error"]["Code"])
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert codes == ["ok", "ok", "ThrottlingException", "ThrottlingException"]
    second[0] = 2  # the next second
    assert client.describe_secret(SecretId=api.record.uid)["Name"] == api.record.title
    assert {e.details["reason"] for e in refusals()} == {"rate limited"}


# --- the signature ------------------------------------------------------------------------------


@pytest.mark.parametrize("minutes", [6, -6])
def test_skewed_clock_is_refused(api, minutes):
    at = datetime.now(UTC) + timedelta(minutes=minutes)
    request = signed_request(api.url, api.credential.access_key_id, api.secret, at=at)
    status, code, message = error_of(send(request))
    assert (status, code) == (403, "InvalidSignatureException")
    assert "Signature expired" in message or "not yet current" in message
    assert refusals()[0].details["reason"] == "bad signature"


def test_a_clock_four_minutes_off_is_accepted(api):
    at = datetime.now(UTC) - timedelta(minutes=4)
    request = signed_request(api.url, api.credential.access_key_id, api.secret, at=at)
    assert send(request).status_code == 200


def test_tampered_body_is_refused(api):
    request = signed_request(
        api.url,
        api.credential.access_key_id,
        api.secret,
        get_body(api),
        target="secretsmanager.GetSecretValue",
    )
    assert send(request).status_code == 200
    request.data = json.dumps({"SecretId": api.record.title}).encode()
    status, code, _ = error_of(send(request))
    assert (status, code) == (403, "InvalidSignatureException")


def test_a_signed_header_changed_after_signing_is_refused(api):
    request = signed_request(
        api.url,
        api.credential.access_key_id,
        api.secret,
        get_body(api),
        target="secretsmanager.DescribeSecret",
    )
    request.headers.replace_header("X-Amz-Target", "secretsmanager.GetSecretValue")
    status, code, _ = error_of(send(request))
    assert (status, code) == (403, "InvalidSignatureException")
    assert_nothing_read(api)


class HostUnsignedAuth(SigV4Auth):
    """botocore's signer, leaving `host` out of SignedHeaders."""

    def headers_to_sign(self, request):
        headers = super().headers_to_sign(request)
        del headers["host"]
        return headers


def test_unsigned_host_header_is_refused(api):
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        method="POST",
        url=api.url,
        data=get_body(api),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.GetSecretValue",
        },
    )
    HostUnsignedAuth(
        Credentials(api.credential.access_key_id, api.secret), "secretsmanager", "eu-west-1"
    ).add_auth(request)
    assert "host" not in request.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0]
    status, code, message = error_of(send(request))
    assert (status, code) == (403, "InvalidSignatureException")
    assert "'host'" in message
    assert_nothing_read(api)


def test_payload_hash_header_must_match_the_body(api):
    good = signed_request(
        api.url,
        api.credential.access_key_id,
        api.secret,
        headers={"X-Amz-Content-SHA256": "0" * 64},
    )
    status, code, message = error_of(send(good))
    assert (status, code) == (403, "InvalidSignatureException")
    assert "x-amz-content-sha256" in message


def test_a_signature_for_another_service_is_refused(api):
    request = signed_request(api.url, api.credential.access_key_id, api.secret, service="s3")
    status, code, message = error_of(send(request))
    assert (status, code) == (403, "InvalidSignatureException")
    assert "secretsmanager" in message


def test_no_signature_at_all(api):
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(
        method="POST",
        url=api.url,
        data=get_body(api),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.GetSecretValue",
        },
    )
    status, code, _ = error_of(send(request))
    assert (status, code) == (400, "MissingAuthenticationTokenException")
    request.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=garbage"
    status, code, _ = error_of(send(request))
    assert (status, code) == (400, "IncompleteSignatureException")


def test_refusal_audits_are_bounded_per_address(api, monkeypatch):
    from secretsapi import views
    from secretsapi.views import REFUSAL_AUDITS_PER_MINUTE

    # One minute throughout, however slow the machine.
    monkeypatch.setattr(views, "refusal_window", lambda: 1)

    client = boto_client(api.url, "PVAKZZZZZZZZZZZZZZZZ", "x" * 40)
    for _ in range(REFUSAL_AUDITS_PER_MINUTE + 5):
        with pytest.raises(ClientError):
            client.list_secrets()
    events = refusals()
    assert len(events) == REFUSAL_AUDITS_PER_MINUTE
    assert "not audited" in events[-1].details["note"]


def test_get_is_refused_and_the_path_without_slash_answers(api, client):
    response = client.get("/aws/secretsmanager/")
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert json.loads(response.content)["__type"] == "UnknownOperationException"
    no_slash = boto_client(api.url.rstrip("/"), api.credential.access_key_id, api.secret)
    assert no_slash.get_secret_value(SecretId=api.record.uid)["Name"] == api.record.title


def test_a_signed_in_session_is_no_credential(api, personas):
    from tests.conftest import login_verified

    browser = login_verified(personas.editor)
    response = browser.post(
        "/aws/secretsmanager/",
        get_body(api),
        content_type="application/x-amz-json-1.1",
        HTTP_X_AMZ_TARGET="secretsmanager.GetSecretValue",
    )
    assert response.status_code == 400
    assert json.loads(response.content)["__type"] == "MissingAuthenticationTokenException"


# --- bad input from a good credential -------------------------------------------------------------


@pytest.mark.parametrize(
    "body,content_type,code",
    [
        (b"not json", "application/x-amz-json-1.1", "SerializationException"),
        (b"[1, 2]", "application/x-amz-json-1.1", "SerializationException"),
        (b"{}", "text/plain", "SerializationException"),
        (b'{"SecretId": 5}', "application/x-amz-json-1.1", "InvalidParameterException"),
        (b'{"SecretId": "a\\u0000b"}', "application/x-amz-json-1.1", "InvalidParameterException"),
        (b"{}", "application/x-amz-json-1.1", "InvalidParameterException"),
    ],
)
def test_bad_input_is_answered_in_aws_shape(api, body, content_type, code):
    request = signed_request(
        api.url,
        api.credential.access_key_id,
        api.secret,
        body,
        target="secretsmanager.GetSecretValue",
        headers={"Content-Type": content_type},
    )
    status, got, message = error_of(send(request))
    assert (status, got) == (400, code) and message
    assert not AuditEvent.objects.filter(action="secretsapi.read").exists()
    assert refusals()[0].details["error"] == code


def test_an_unexpected_failure_is_an_internal_service_error(api, monkeypatch):
    from secretsapi import actions

    def broken(caller, params):
        raise RuntimeError("boom")

    monkeypatch.setitem(actions.ACTIONS, "GetSecretValue", broken)
    client = api.client()
    with pytest.raises(ClientError) as caught:
        client.get_secret_value(SecretId=api.record.uid)
    assert caught.value.response["Error"]["Code"] == "InternalServiceError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "boom" not in str(caught.value)
