"""The secrets API driven by boto3's secretsmanager client against a live server: each action,
each version stage, the audit trail."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from rotation.models import Rotation, RotationSettings
from secretsapi.actions import secret_arn, uid_from_arn
from tests.conftest import make_configuration
from tests.secretsapi.conftest import (
    REGION,
    change_password,
    make_record,
    version_id,
    versions_of,
)
from vault.models import AuditEvent, PamUser
from vault.services import pam_user_set_access_key

# --- GetSecretValue -----------------------------------------------------------------------------


def test_get_secret_value_by_uid_title_and_arn(api):
    client = api.client()
    record = api.record
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:{record.uid}"
    for secret_id in (record.uid, record.title, arn):
        answer = client.get_secret_value(SecretId=secret_id)
        assert json.loads(answer["SecretString"]) == {
            "username": "AppUser",
            "password": "First-Passw0rd!",
            "arn": "arn:aws:iam::123456789012:user/AppUser",
        }
        assert answer["Name"] == record.title
        assert answer["ARN"] == arn
        assert answer["VersionStages"] == ["AWSCURRENT"]
        assert answer["VersionId"] == version_id(versions_of(record)[0])
        uuid.UUID(answer["VersionId"])  # AWS's shape: boto3 wants 32 to 64 characters
    events = AuditEvent.objects.filter(action="secretsapi.read")
    assert events.count() == 3
    event = events.first()
    assert event.object_uid == record.uid and event.folder_id == record.folder_id
    assert event.source_ip == "127.0.0.1"
    assert event.details["application"] == api.application.name
    assert event.details["access_key_id"] == api.credential.access_key_id
    assert "First-Passw0rd!" not in json.dumps(event.details)


def test_arn_shape_is_one_function_and_round_trips(api):
    arn = secret_arn(api.record, "us-east-2")
    assert arn == f"arn:aws:secretsmanager:us-east-2:123456789012:secret:{api.record.uid}"
    assert uid_from_arn(arn) == api.record.uid
    assert uid_from_arn("arn:aws:iam::123456789012:user/x") is None


def test_each_version_stage_and_version_id(api):
    client = api.client()
    record = api.record
    change_password(record, "Second-Passw0rd!")
    current, previous = versions_of(record)[:2]
    got = client.get_secret_value(SecretId=record.uid, VersionStage="AWSCURRENT")
    assert json.loads(got["SecretString"])["password"] == "Second-Passw0rd!"
    assert got["VersionId"] == version_id(current)
    old = client.get_secret_value(SecretId=record.uid, VersionStage="AWSPREVIOUS")
    assert json.loads(old["SecretString"])["password"] == "First-Passw0rd!"
    assert old["VersionId"] == version_id(previous) and old["VersionStages"] == ["AWSPREVIOUS"]
    by_id = client.get_secret_value(SecretId=record.uid, VersionId=version_id(previous))
    assert json.loads(by_id["SecretString"])["password"] == "First-Passw0rd!"
    both = client.get_secret_value(
        SecretId=record.uid, VersionId=version_id(current), VersionStage="AWSCURRENT"
    )
    assert both["VersionId"] == version_id(current)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_secret_value(
            SecretId=record.uid, VersionId=version_id(previous), VersionStage="AWSCURRENT"
        )
    # No rotation in progress: no AWSPENDING.
    with pytest.raises(client.exceptions.ResourceNotFoundException, match="AWSPENDING"):
        client.get_secret_value(SecretId=record.uid, VersionStage="AWSPENDING")

    rotation = Rotation(pam_user=record, gateway_name="default", trigger="cli", status="running")
    rotation.save()
    rotation.set_secret("pending_password", "Pending-Passw0rd!")
    rotation.save(update_fields=["pending_password_enc"])
    pending = client.get_secret_value(SecretId=record.uid, VersionStage="AWSPENDING")
    assert json.loads(pending["SecretString"])["password"] == "Pending-Passw0rd!"
    assert pending["VersionStages"] == ["AWSPENDING"]
    assert pending["VersionId"] == version_id(rotation)
    assert (
        client.get_secret_value(SecretId=record.uid, VersionId=pending["VersionId"])["VersionId"]
        == pending["VersionId"]
    )
    described = client.describe_secret(SecretId=record.uid)
    assert described["VersionIdsToStages"] == {
        version_id(current): ["AWSCURRENT"],
        version_id(previous): ["AWSPREVIOUS"],
        version_id(rotation): ["AWSPENDING"],
    }
    # Finished: the pending secret is no longer offered.
    Rotation.objects.filter(pk=rotation.pk).update(status="succeeded")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_secret_value(SecretId=record.uid, VersionStage="AWSPENDING")


def test_a_version_id_of_another_record_is_not_found(api):
    other = make_record(api.personas.folder, "Other", "Other-Passw0rd!")
    client = api.client()
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_secret_value(
            SecretId=api.record.uid, VersionId=version_id(versions_of(other)[0])
        )
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_secret_value(SecretId=api.record.uid, VersionId=str(uuid.uuid4()))


def test_a_password_without_history_has_a_stable_version_that_changes_with_it(api):
    from tests.conftest import make_pam_user

    record = make_pam_user(api.personas.folder, "Legacy", password="Legacy-Passw0rd!")
    assert not record.versions.exists()
    client = api.client()
    first = client.get_secret_value(SecretId=record.uid)
    assert json.loads(first["SecretString"])["password"] == "Legacy-Passw0rd!"
    assert client.get_secret_value(SecretId=record.uid)["VersionId"] == first["VersionId"]
    again = client.get_secret_value(SecretId=record.uid, VersionId=first["VersionId"])
    assert json.loads(again["SecretString"])["password"] == "Legacy-Passw0rd!"
    change_password(record, "Next-Passw0rd!")
    second = client.get_secret_value(SecretId=record.uid)
    assert second["VersionId"] != first["VersionId"]
    assert second["VersionId"] == version_id(versions_of(record)[0])
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_secret_value(SecretId=record.uid, VersionStage="AWSPREVIOUS")


def test_a_record_without_a_secret_has_no_current_version(api):
    record = make_record(api.personas.folder, "Empty")
    client = api.client()
    with pytest.raises(client.exceptions.ResourceNotFoundException, match="AWSCURRENT"):
        client.get_secret_value(SecretId=record.uid)
    assert client.describe_secret(SecretId=record.uid)["VersionIdsToStages"] == {}


def set_access_key(record: PamUser, key_id: str, secret: str) -> None:
    pam_user_set_access_key(record=record, access_key_id=key_id, secret=secret, source="rotation")
    record.save(update_fields=["access_key_id", "access_secret_key_enc", "updated_at"])


def test_an_access_key_record(api):
    record = make_record(api.personas.folder, "KeyUser")
    set_access_key(record, "AKIAOLDOLDOLDOLDOLD1", "old-secret")
    set_access_key(record, "AKIANEWNEWNEWNEWNEW2", "new-secret")
    client = api.client()
    answer = client.get_secret_value(SecretId=record.title)
    assert json.loads(answer["SecretString"]) == {
        "AccessKeyId": "AKIANEWNEWNEWNEWNEW2",
        "SecretAccessKey": "new-secret",
        "username": "KeyUser",
        "arn": "arn:aws:iam::123456789012:user/KeyUser",
    }
    previous = client.get_secret_value(SecretId=record.uid, VersionStage="AWSPREVIOUS")
    assert json.loads(previous["SecretString"])["AccessKeyId"] == "AKIAOLDOLDOLDOLDOLD1"
    rotation = Rotation(pam_user=record, gateway_name="default", trigger="cli", status="queued")
    rotation.pending_access_key_id = "AKIAPENDINGPENDING03"
    rotation.save()
    rotation.set_secret("pending_password", "pending-secret")
    rotation.save(update_fields=["pending_password_enc"])
    pending = json.loads(
        client.get_secret_value(SecretId=record.uid, VersionStage="AWSPENDING")["SecretString"]
    )
    assert pending["AccessKeyId"] == "AKIAPENDINGPENDING03"
    assert pending["SecretAccessKey"] == "pending-secret"


def test_a_record_with_both_serves_what_its_rotation_method_rotates(api):
    record = make_record(api.personas.folder, "Both", "Both-Passw0rd!")
    set_access_key(record, "AKIABOTHBOTHBOTHBOT1", "both-secret")
    client = api.client()
    # No rotation settings: the console password.
    assert json.loads(client.get_secret_value(SecretId=record.uid)["SecretString"])["password"]
    config = make_configuration(api.personas.folder, api.personas.gateway)
    settings = RotationSettings.objects.create(
        pam_user=record, configuration=config, method="iam_access_key"
    )
    got = json.loads(client.get_secret_value(SecretId=record.uid)["SecretString"])
    assert got["AccessKeyId"] == "AKIABOTHBOTHBOTHBOT1" and "password" not in got
    settings.method = "iam_user"
    settings.save()
    got = json.loads(client.get_secret_value(SecretId=record.uid)["SecretString"])
    assert got["password"] == "Both-Passw0rd!"


# --- DescribeSecret, ListSecrets, BatchGetSecretValue -------------------------------------------


def test_describe_secret(api):
    record = api.record
    client = api.client()
    described = client.describe_secret(SecretId=record.uid)
    assert described["Name"] == record.title and described["ARN"].endswith(record.uid)
    assert described["RotationEnabled"] is False
    assert "NextRotationDate" not in described and "LastRotatedDate" not in described
    assert described["CreatedDate"].timestamp() == pytest.approx(record.created_at.timestamp())
    assert described["VersionIdsToStages"] == {version_id(versions_of(record)[0]): ["AWSCURRENT"]}
    config = make_configuration(api.personas.folder, api.personas.gateway)
    from django.utils import timezone

    last, upcoming = timezone.now().replace(microsecond=0), timezone.now().replace(microsecond=0)
    RotationSettings.objects.create(
        pam_user=record, configuration=config, last_rotated_at=last, next_run_at=upcoming
    )
    described = client.describe_secret(SecretId=record.title)
    assert described["RotationEnabled"] is True
    assert described["LastRotatedDate"].timestamp() == last.timestamp()
    assert described["NextRotationDate"].timestamp() == upcoming.timestamp()
    assert AuditEvent.objects.filter(action="secretsapi.described").count() == 2


def test_list_secrets_filters_and_pages(api):
    folder = api.personas.folder
    for n in range(5):
        make_record(folder, f"Svc{n}", f"Svc{n}-Passw0rd!", title=f"service-{n}", notes="batch job")
    client = api.client()
    listed = client.list_secrets()["SecretList"]
    names = {s["Name"] for s in listed}
    assert names == {api.record.title, *(f"service-{n}" for n in range(5))}
    assert api.foreign.title not in names
    assert all("SecretVersionsToStages" in s for s in listed)

    filtered = client.list_secrets(Filters=[{"Key": "name", "Values": ["SERVICE-"]}])
    assert len(filtered["SecretList"]) == 5
    by_description = client.list_secrets(Filters=[{"Key": "description", "Values": ["batch"]}])
    assert len(by_description["SecretList"]) == 5
    negated = client.list_secrets(Filters=[{"Key": "name", "Values": ["!service"]}])
    assert [s["Name"] for s in negated["SecretList"]] == [api.record.title]
    assert client.list_secrets(Filters=[{"Key": "tag-key", "Values": ["x"]}])["SecretList"] == []

    seen, token, pages = [], None, 0
    while True:
        kwargs = {"MaxResults": 2, "SortBy": "name", "SortOrder": "asc"}
        page = client.list_secrets(**kwargs, **({"NextToken": token} if token else {}))
        pages += 1
        seen += [s["Name"] for s in page["SecretList"]]
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 3 and seen == sorted(names)
    paginated = client.get_paginator("list_secrets").paginate(PaginationConfig={"PageSize": 4})
    assert sum(len(p["SecretList"]) for p in paginated) == 6
    with pytest.raises(client.exceptions.InvalidNextTokenException):
        client.list_secrets(NextToken="forged-token")
    # A token is for the query that made it.
    first = client.list_secrets(MaxResults=1)
    with pytest.raises(client.exceptions.InvalidNextTokenException):
        client.list_secrets(
            MaxResults=1, NextToken=first["NextToken"], Filters=[{"Key": "name", "Values": ["s"]}]
        )


def test_batch_get_secret_value(api):
    other = make_record(api.personas.folder, "Second", "Second-Passw0rd!")
    client = api.client()
    answer = client.batch_get_secret_value(
        SecretIdList=[api.record.uid, other.title, api.foreign.uid, "no-such-secret"]
    )
    values = {v["Name"]: json.loads(v["SecretString"])["password"] for v in answer["SecretValues"]}
    assert values == {api.record.title: "First-Passw0rd!", other.title: "Second-Passw0rd!"}
    assert sorted(e["SecretId"] for e in answer["Errors"]) == sorted(
        [api.foreign.uid, "no-such-secret"]
    )
    assert {e["ErrorCode"] for e in answer["Errors"]} == {"ResourceNotFoundException"}
    # One read event per record read, about the record: each lands in its folder's trail.
    events = AuditEvent.objects.filter(action="secretsapi.read")
    assert sorted(e.object_uid for e in events) == sorted([api.record.uid, other.uid])
    for event in events:
        assert event.object_type == "pamuser" and event.folder_id == api.personas.folder.pk
        assert event.details["operation"] == "BatchGetSecretValue"
        assert event.details["access_key_id"] == api.credential.access_key_id
        assert event.details["errors"] == 2 and event.details["version_id"]
    assert not AuditEvent.objects.filter(
        action="secretsapi.read", object_uid=api.foreign.uid
    ).exists()

    by_filter = client.batch_get_secret_value(
        Filters=[{"Key": "name", "Values": ["AWS user: Second"]}]
    )
    assert [v["Name"] for v in by_filter["SecretValues"]] == [other.title]
    names, token = [], None
    for _ in range(3):
        more = {"NextToken": token} if token else {}
        page = client.batch_get_secret_value(
            Filters=[{"Key": "all", "Values": ["AWS"]}], MaxResults=1, **more
        )
        names += [v["Name"] for v in page["SecretValues"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(names) == sorted([api.record.title, other.title]) and token is None
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.batch_get_secret_value(
            SecretIdList=[api.record.uid], Filters=[{"Key": "name", "Values": ["x"]}]
        )


# --- secret ids that name nothing visible ---------------------------------------------------------


def test_a_foreign_folder_is_exactly_like_a_missing_secret(api):
    client = api.client()
    answers = []
    for secret_id in (api.foreign.uid, api.foreign.title, "no-such-secret"):
        with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
            client.get_secret_value(SecretId=secret_id)
        answers.append(caught.value.response["Error"])
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.describe_secret(SecretId=secret_id)
    assert answers[0] == answers[1] == answers[2]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    refused = AuditEvent.objects.filter(action="secretsapi.refused").first()
    assert refused.details["reason"] == "not found"
    assert refused.details["access_key_id"] == api.credential.access_key_id


def test_an_ambiguous_title_asks_for_the_uid(api):
    from vault.models import ApplicationFolder, SharedFolder

    second = SharedFolder.objects.create(name="Second team")
    ApplicationFolder.objects.create(application=api.application, folder=second)
    twin = make_record(second, "Twin", "Twin-Passw0rd!", title=api.record.title)
    client = api.client()
    with pytest.raises(client.exceptions.InvalidParameterException) as caught:
        client.get_secret_value(SecretId=api.record.title)
    assert api.record.uid in str(caught.value) and twin.uid in str(caught.value)
    got = client.get_secret_value(SecretId=twin.uid)
    assert json.loads(got["SecretString"])["password"] == "Twin-Passw0rd!"


def test_unknown_operation_and_bad_parameters(api):
    client = api.client()
    with pytest.raises(ClientError) as caught:
        client.put_secret_value(SecretId=api.record.uid, SecretString="x")
    assert caught.value.response["Error"]["Code"] == "UnknownOperationException"
    assert api.record.versions.count() == 1
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.list_secrets(Filters=[{"Key": "name", "Values": ["a"]}] * 11)
