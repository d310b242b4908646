"""The secrets API read by the `aws` command line (awscli) and by AWS's caching library
(aws-secretsmanager-caching), against a live server, with no AWS configuration files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aws_secretsmanager_caching import SecretCache, SecretCacheConfig

from secretsapi.models import ClientCredential
from tests.secretsapi.conftest import REGION, change_password, version_id, versions_of

AWS = Path(sys.executable).parent / "aws"


def aws(api, *args: str, secret: str | None = None) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": api.credential.access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret if secret is not None else api.secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_PAGER": "",
    }
    return subprocess.run(
        [str(AWS), "--endpoint-url", api.url, "--output", "json", "secretsmanager", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_aws_cli_get_secret_value(api):
    done = aws(api, "get-secret-value", "--secret-id", api.record.title)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert json.loads(answer["SecretString"])["password"] == "First-Passw0rd!"
    assert answer["VersionStages"] == ["AWSCURRENT"]
    change_password(api.record, "Second-Passw0rd!")
    done = aws(
        api, "get-secret-value", "--secret-id", api.record.uid, "--version-stage", "AWSPREVIOUS"
    )
    assert json.loads(json.loads(done.stdout)["SecretString"])["password"] == "First-Passw0rd!"


def test_aws_cli_describe_list_and_batch(api):
    described = json.loads(aws(api, "describe-secret", "--secret-id", api.record.uid).stdout)
    assert described["VersionIdsToStages"] == {
        version_id(versions_of(api.record)[0]): ["AWSCURRENT"]
    }
    listed = json.loads(aws(api, "list-secrets", "--filters", "Key=name,Values=AWS user").stdout)
    assert [s["Name"] for s in listed["SecretList"]] == [api.record.title]
    batch = json.loads(
        aws(api, "batch-get-secret-value", "--secret-id-list", api.record.uid, "nope").stdout
    )
    assert [v["Name"] for v in batch["SecretValues"]] == [api.record.title]
    assert batch["Errors"][0]["ErrorCode"] == "ResourceNotFoundException"


@pytest.mark.parametrize(
    "case,expected",
    [
        ("foreign", "ResourceNotFoundException"),
        ("wrong secret", "InvalidSignatureException"),
        ("revoked", "UnrecognizedClientException"),
    ],
)
def test_aws_cli_refusals(api, case, expected):
    secret_id, secret = api.record.uid, None
    if case == "foreign":
        secret_id = api.foreign.uid
    elif case == "wrong secret":
        secret = "y" * 40
    else:
        from django.utils import timezone

        ClientCredential.objects.filter(pk=api.credential.pk).update(revoked_at=timezone.now())
    done = aws(api, "get-secret-value", "--secret-id", secret_id, secret=secret)
    assert done.returncode != 0
    assert expected in done.stderr
    assert "Passw0rd" not in done.stdout + done.stderr


def test_the_caching_library_picks_up_a_rotated_secret_after_its_refresh(api):
    cache = SecretCache(config=SecretCacheConfig(secret_refresh_interval=1), client=api.client())
    first = json.loads(cache.get_secret_string(api.record.uid))
    assert first["password"] == "First-Passw0rd!"
    change_password(api.record, "Rotated-Passw0rd!")
    deadline = time.monotonic() + 10
    seen = first["password"]
    while time.monotonic() < deadline and seen != "Rotated-Passw0rd!":
        time.sleep(0.3)
        seen = json.loads(cache.get_secret_string(api.record.uid))["password"]
    assert seen == "Rotated-Passw0rd!"
    # The previous version is served by stage too.
    previous = cache.get_secret_string(api.record.uid, version_stage="AWSPREVIOUS")
    assert json.loads(previous)["password"] == "First-Passw0rd!"
