"""Fixtures for the secrets API: client credentials made on the model (as AWS's 20-character
access key ids, with the "PVAK" prefix), records written through the vault's services, real
clients (boto3, botocore's signer) pointed at a live server."""

from __future__ import annotations

import secrets
import string
from datetime import datetime
from unittest import mock

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.httpsession import URLLib3Session
from django.core.cache import cache

from secretsapi.actions import version_id as encode_version_id
from secretsapi.models import ClientCredential
from tests.emulator import ACCOUNT_ID
from vault.models import Application, PamUser, PasswordVersion, SharedFolder
from vault.services import pam_user_create, pam_user_set_password

REGION = "eu-west-1"
PATH = "/aws/secretsmanager/"
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def make_credential(application: Application, **fields) -> tuple[ClientCredential, str]:
    """A credential of `application` and its secret."""
    key_id = "PVAK" + "".join(secrets.choice(BASE32) for _ in range(16))
    secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
    credential = ClientCredential(application=application, access_key_id=key_id, **fields)
    credential.set_secret("secret_access_key", secret)
    credential.save()
    return credential, secret


def make_record(folder: SharedFolder, login: str, password: str = "", **kw) -> PamUser:
    return pam_user_create(
        folder=folder,
        title=kw.pop("title", f"AWS user: {login}"),
        login=login,
        distinguished_name=f"arn:aws:iam::{ACCOUNT_ID}:user/{login}",
        password=password,
        actor_kind="system",
        **kw,
    )


def change_password(record: PamUser, password: str) -> None:
    """What a finished rotation does to the record (rotation/engine.py): a new current password
    with its history entry."""
    pam_user_set_password(record=record, password=password, source="rotation")
    record.save(update_fields=["password_enc", "updated_at"])


def versions_of(record: PamUser, kind: str = PasswordVersion.PASSWORD) -> list[PasswordVersion]:
    return list(record.versions.filter(kind=kind).order_by("-created_at", "-id"))


def version_id(row) -> str:
    """The VersionId the API gives a history row or rotation."""
    return encode_version_id(row.uid)


def boto_client(endpoint: str, key_id: str, secret: str, **config):
    """boto3's secretsmanager client as an application would make it; no retries, so a
    refusal is seen as it is answered."""
    return boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, **config),
    )


def signed_request(
    url: str,
    key_id: str,
    secret: str,
    body: bytes = b"{}",
    *,
    target: str = "secretsmanager.ListSecrets",
    at: datetime | None = None,
    service: str = "secretsmanager",
    headers: dict | None = None,
) -> AWSRequest:
    """A request signed by botocore's own SigV4 signer, optionally at the time `at`."""
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": target,
            **(headers or {}),
        },
    )
    signer = SigV4Auth(Credentials(key_id, secret), service, REGION)
    if at is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=at):
            signer.add_auth(request)
    return request


def send(request: AWSRequest):
    """Send `request` as botocore does (urllib3), exactly as prepared."""
    return URLLib3Session().send(request.prepare())


def send_to_test_client(client, request: AWSRequest):
    """`request` (signed for http://testserver) through Django's test client, as the server
    receives it over HTTP: every header the client signed, and its body."""
    headers = {
        f"HTTP_{name.upper().replace('-', '_')}": value
        for name, value in request.headers.items()
        if name.lower() != "content-type"
    }
    return client.generic(
        "POST",
        PATH,
        request.data,
        content_type="application/x-amz-json-1.1",
        HTTP_HOST="testserver",
        **headers,
    )


@pytest.fixture(autouse=True)
def _fresh_counters():
    # Rate-limit and refusal-audit counters live in the (local-memory) cache.
    cache.clear()
    yield
    cache.clear()


class Api:
    """A live server, the personas' application with a credential, and records: `record` in
    the folder shared to the application, `foreign` in a folder that is not."""

    def __init__(self, live_server, personas) -> None:
        self.url = live_server.url + PATH
        self.personas = personas
        self.application = personas.application
        self.credential, self.secret = make_credential(self.application, name="app server")
        self.record = make_record(personas.folder, "AppUser", "First-Passw0rd!")
        self.foreign = make_record(personas.other_folder, "Foreign", "Foreign-Passw0rd!")

    def client(self, credential: ClientCredential | None = None, secret: str | None = None):
        return boto_client(
            self.url,
            (credential or self.credential).access_key_id,
            secret if secret is not None else self.secret,
        )


@pytest.fixture
def api(live_server, personas) -> Api:
    return Api(live_server, personas)
