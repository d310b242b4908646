"""How much work a request costs: GetSecretValue in a handful of queries, list and batch
without a query per secret (no N+1), lookups by uid or title without reading every record."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from secretsapi.models import ClientCredential
from tests.secretsapi.conftest import (
    change_password,
    make_credential,
    make_record,
    send_to_test_client,
    signed_request,
)
from vault.models import AuditEvent


@pytest.fixture
def setup(personas):
    credential, secret = make_credential(personas.application)
    record = make_record(personas.folder, "AppUser", "First-Passw0rd!")
    change_password(record, "Second-Passw0rd!")
    return personas, credential, secret, record


def call(client, credential, secret, target: str, params: dict):
    """A request signed by botocore, sent through Django's test client as received over HTTP."""
    body = json.dumps(params).encode()
    request = signed_request(
        "http://testserver/aws/secretsmanager/",
        credential.access_key_id,
        secret,
        body,
        target=f"secretsmanager.{target}",
    )
    return send_to_test_client(client, request)


def queries_for(client, credential, secret, target: str, params: dict) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = call(client, credential, secret, target, params)
    assert response.status_code == 200, response.content
    return [q["sql"] for q in captured.captured_queries]


def test_get_secret_value_takes_a_few_queries(client, setup):
    personas, credential, secret, record = setup
    # The first call notes last_used_at; later ones within a minute do not write it.
    call(client, credential, secret, "GetSecretValue", {"SecretId": record.uid})
    for secret_id in (record.uid, record.title):
        sql = queries_for(client, credential, secret, "GetSecretValue", {"SecretId": secret_id})
        # the credential with its application's name, the record if shared to the
        # application, its two newest history entries, the audit event
        assert len(sql) == 4, "\n".join(sql)
        assert not any("UPDATE" in q and "clientcredential" in q for q in sql)
    assert AuditEvent.objects.filter(action="secretsapi.read").count() == 3


def test_last_used_is_written_at_most_once_a_minute(client, setup):
    personas, credential, secret, record = setup
    call(client, credential, secret, "GetSecretValue", {"SecretId": record.uid})
    credential.refresh_from_db()
    first = credential.last_used_at
    call(client, credential, secret, "GetSecretValue", {"SecretId": record.uid})
    credential.refresh_from_db()
    assert credential.last_used_at == first
    ClientCredential.objects.filter(pk=credential.pk).update(
        last_used_at=first.replace(year=first.year - 1)
    )
    call(client, credential, secret, "GetSecretValue", {"SecretId": record.uid})
    credential.refresh_from_db()
    assert credential.last_used_at > first


@pytest.mark.parametrize(
    "target,params",
    [
        ("ListSecrets", {}),
        ("BatchGetSecretValue", {"Filters": [{"Key": "name", "Values": ["AWS"]}]}),
        ("DescribeSecret", None),
    ],
)
def test_no_query_per_secret(client, setup, target, params):
    personas, credential, secret, record = setup
    call(client, credential, secret, "ListSecrets", {})  # notes last_used_at
    if params is None:
        params = {"SecretId": record.title}
    few = queries_for(client, credential, secret, target, params)
    for n in range(8):
        extra = make_record(personas.folder, f"More{n}", f"More{n}-Passw0rd!")
        change_password(extra, f"More{n}-Again!")
    many = queries_for(client, credential, secret, target, params)
    if target == "BatchGetSecretValue":
        # A batch audits each record it read (at most 20), each in its folder's trail: the
        # reads themselves stay a fixed number of queries.
        audit = [q for q in many if q.startswith('INSERT INTO "vault_auditevent"')]
        assert len(audit) == 9
        many = [q for q in many if q not in audit and "SAVEPOINT" not in q]
        few = [q for q in few if not q.startswith('INSERT INTO "vault_auditevent"')]
        few = [q for q in few if "SAVEPOINT" not in q]
    assert len(many) == len(few) <= 6, "\n".join(many)


def test_batch_by_ids_is_one_lookup(client, setup):
    personas, credential, secret, record = setup
    others = [make_record(personas.folder, f"B{n}", f"B{n}-Passw0rd!") for n in range(5)]
    call(client, credential, secret, "ListSecrets", {})
    ids = [record.uid] + [o.title for o in others] + ["missing"]
    sql = queries_for(client, credential, secret, "BatchGetSecretValue", {"SecretIdList": ids})
    # One audit event per record read (each in its folder's trail), in one transaction.
    audit = [q for q in sql if q.startswith('INSERT INTO "vault_auditevent"')]
    assert len(audit) == 6
    reads = [q for q in sql if q not in audit and "SAVEPOINT" not in q]
    assert len(reads) <= 3, "\n".join(reads)
    answer = json.loads(
        call(client, credential, secret, "BatchGetSecretValue", {"SecretIdList": ids}).content
    )
    assert len(answer["SecretValues"]) == 6 and len(answer["Errors"]) == 1
