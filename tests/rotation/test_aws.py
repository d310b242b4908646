"""rotation/aws.py against a real AWS-compatible HTTP endpoint (moto's server)."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import botocore.httpsession
import botocore.loaders
import pytest

from rotation import aws
from tests.conftest import make_configuration
from tests.emulator import ACCOUNT_ID
from tests.faultproxy import FaultProxy

NEW_PASSWORD = "New-Passw0rd!Rotated"


@pytest.fixture(autouse=True)
def fresh_caches():
    aws.clear_caches()
    yield
    aws.clear_caches()


@pytest.fixture
def config(personas, emulator):
    return make_configuration(personas.folder, personas.gateway, endpoint=emulator.endpoint)


@pytest.fixture
def proxy(emulator):
    with FaultProxy(upstream=emulator.endpoint) as running:
        yield running


@pytest.fixture
def proxied_config(personas, proxy):
    return make_configuration(personas.folder, personas.gateway, endpoint=proxy.endpoint)


# --- the calls do what they say ---


def test_set_console_password_changes_the_password_aws_holds(config, emulator):
    emulator.create_user("TestUser")

    aws.set_console_password(config, login="TestUser", password=NEW_PASSWORD)

    assert emulator.passwords()["TestUser"] == NEW_PASSWORD


def test_set_console_password_without_login_profile_says_console_access_is_needed(config, emulator):
    emulator.create_user("NoConsole", password=None)

    with pytest.raises(aws.AwsRefused) as caught:
        aws.set_console_password(config, login="NoConsole", password=NEW_PASSWORD)

    assert caught.value.code == "NoSuchEntity"
    assert 'IAM user "NoConsole" has no AWS Console access' in caught.value.message
    assert "temporary password in the AWS console" in caught.value.message
    assert NEW_PASSWORD not in caught.value.message


def test_set_console_password_for_a_missing_user_says_it_does_not_exist(config):
    """AWS answers NoSuchEntity both for a missing user and for one without console access:
    the message must match the dry run's (issue 11, finding 5)."""
    with pytest.raises(aws.AwsRefused) as caught:
        aws.set_console_password(config, login="Ghost", password=NEW_PASSWORD)

    assert caught.value.message.startswith(
        f'The IAM user "Ghost" does not exist in AWS account {ACCOUNT_ID}.'
    )
    assert "Console access" not in caught.value.message


def test_caller_account_is_the_emulators_account(config):
    assert aws.caller_account(config) == ACCOUNT_ID == "123456789012"


def test_account_password_policy_is_none_without_a_custom_policy(config):
    assert aws.account_password_policy(config) is None


def test_account_password_policy_returns_the_accounts_values(config, emulator):
    emulator.iam().update_account_password_policy(
        MinimumPasswordLength=40,
        RequireUppercaseCharacters=True,
        RequireLowercaseCharacters=False,
        RequireNumbers=True,
        RequireSymbols=True,
    )

    policy = aws.account_password_policy(config)

    assert policy.minimum_length == 40
    assert policy.require_upper is True
    assert policy.require_lower is False
    assert policy.require_digits is True
    assert policy.require_symbols is True


def test_check_target_accepts_a_user_with_console_access(config, emulator):
    arn = emulator.create_user("TestUser")

    assert aws.check_target(config, login="TestUser", arn=arn) is None


def test_check_target_without_login_profile_says_console_access_is_needed(config, emulator):
    arn = emulator.create_user("NoConsole", password=None)

    with pytest.raises(aws.AwsRefused) as caught:
        aws.check_target(config, login="NoConsole", arn=arn)

    assert caught.value.code == "NoSuchEntity"
    assert 'IAM user "NoConsole" has no AWS Console access (no login profile)' in str(caught.value)
    assert "administrator must enable console access" in caught.value.message


def test_check_target_for_a_missing_user_says_it_does_not_exist_in_the_account(config):
    with pytest.raises(aws.AwsRefused) as caught:
        aws.check_target(config, login="Ghost", arn=f"arn:aws:iam::{ACCOUNT_ID}:user/Ghost")

    assert caught.value.message.startswith(
        f'The IAM user "Ghost" does not exist in AWS account {ACCOUNT_ID}.'
    )


def test_check_target_in_another_account_names_both_accounts(config, emulator):
    emulator.create_user("TestUser")

    with pytest.raises(aws.AwsRefused) as caught:
        aws.check_target(config, login="TestUser", arn="arn:aws:iam::111111111111:user/TestUser")

    assert caught.value.code == "WrongAccount"
    assert (
        "record's ARN is in account 111111111111 but the configuration's credentials belong "
        f"to account {ACCOUNT_ID}"
    ) in caught.value.message


def test_check_target_refuses_an_arn_naming_another_user(config, emulator):
    emulator.create_user("TestUser")

    with pytest.raises(aws.AwsRefused) as caught:
        aws.check_target(config, login="TestUser", arn=f"arn:aws:iam::{ACCOUNT_ID}:user/Other")

    assert caught.value.code == "ArnLoginMismatch"


def test_check_target_refuses_a_malformed_arn(config):
    with pytest.raises(aws.AwsRefused) as caught:
        aws.check_target(config, login="TestUser", arn="TestUser")

    assert caught.value.code == "InvalidArn"


def test_test_connection_reports_account_identity_and_policy(config, emulator):
    emulator.iam().update_account_password_policy(MinimumPasswordLength=20, RequireSymbols=True)

    report = aws.test_connection(config)

    assert report.account_id == ACCOUNT_ID
    assert report.arn.startswith("arn:aws:") and ACCOUNT_ID in report.arn
    assert report.policy.minimum_length == 20
    assert report.policy.require_symbols is True
    assert report.region == "us-east-1"
    assert report.endpoint_url == emulator.endpoint


def test_test_connection_reports_no_policy_as_none(config):
    assert aws.test_connection(config).policy is None


# --- configuration problems are refusals that say what to fix ---


def test_invalid_endpoint_url_is_refused(personas):
    config = make_configuration(personas.folder, personas.gateway, endpoint="not a url")

    with pytest.raises(aws.AwsRefused) as caught:
        aws.caller_account(config)

    assert caught.value.code == "InvalidEndpoint"
    assert '"not a url"' in caught.value.message


def test_missing_secret_key_is_refused(personas, emulator):
    config = make_configuration(personas.folder, personas.gateway, endpoint=emulator.endpoint)
    config.set_secret("access_secret_key", "")
    config.save()

    with pytest.raises(aws.AwsRefused) as caught:
        aws.caller_account(config)

    assert caught.value.code == "MissingCredentials"


def test_instance_role_without_credentials_on_the_host_is_refused(
    personas, emulator, monkeypatch, tmp_path
):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    config = make_configuration(
        personas.folder,
        personas.gateway,
        endpoint=emulator.endpoint,
        access_key_id="USE_INSTANCE_ROLE",
    )
    assert config.uses_instance_role

    with pytest.raises(aws.AwsRefused) as caught:
        aws.caller_account(config)

    assert caught.value.code == "NoCredentials"
    assert "instance role" in caught.value.message


# --- clients and answers are cached per configuration version ---


def test_client_is_reused_for_the_same_configuration_version(config):
    assert aws.client(config, "iam") is aws.client(config, "iam")


def test_client_is_rebuilt_after_the_configuration_changes(config):
    before = aws.client(config, "iam")
    config.region_names = ["eu-west-1"]
    config.save()

    after = aws.client(config, "iam")

    assert after is not before
    assert after.meta.region_name == "eu-west-1"


def test_preload_reads_the_gateways_service_descriptions_without_a_request(monkeypatch):
    loader = botocore.loaders.create_loader()
    monkeypatch.setattr(aws, "_loader", loader)
    aws.clear_caches()  # the next session takes the fresh loader

    def no_request(*args, **kwargs):
        raise AssertionError("preload sent a request")

    monkeypatch.setattr(botocore.httpsession.URLLib3Session, "send", no_request)
    aws.preload()

    loaded = {key[1] for key in loader._cache if key[0] == "load_service_model"}
    assert {"iam", "sts"} <= loaded


def test_caller_account_is_cached(proxied_config, proxy):
    aws.caller_account(proxied_config)
    aws.caller_account(proxied_config)

    assert proxy.actions["GetCallerIdentity"] == 1


def test_caller_account_cache_expires(proxied_config, proxy, settings):
    settings.AWS_POLICY_CACHE_SECONDS = 0

    aws.caller_account(proxied_config)
    aws.caller_account(proxied_config)

    assert proxy.actions["GetCallerIdentity"] == 2


def test_caller_account_is_asked_again_after_the_configuration_changes(proxied_config, proxy):
    aws.caller_account(proxied_config)
    proxied_config.aws_id = "renamed"
    proxied_config.save()

    aws.caller_account(proxied_config)

    assert proxy.actions["GetCallerIdentity"] == 2


def test_account_password_policy_is_cached_even_when_there_is_none(proxied_config, proxy):
    aws.account_password_policy(proxied_config)
    aws.account_password_policy(proxied_config)

    assert proxy.actions["GetAccountPasswordPolicy"] == 1


def test_test_connection_does_not_use_the_cache(proxied_config, proxy):
    aws.caller_account(proxied_config)
    aws.account_password_policy(proxied_config)

    aws.test_connection(proxied_config)

    assert proxy.actions["GetCallerIdentity"] == 2
    assert proxy.actions["GetAccountPasswordPolicy"] == 2


# --- IAM permissions enforced: a separate moto server with authentication on ---

LIMITED_ACTIONS = ["iam:GetLoginProfile", "sts:GetCallerIdentity", "iam:GetAccountPasswordPolicy"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AuthEmulator:
    """moto's server in its own process, so turning IAM checks on leaves the shared one alone."""

    def __init__(self) -> None:
        port = _free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        moto_server = Path(sys.executable).with_name("moto_server")
        self.process = subprocess.Popen(
            [str(moto_server), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)

    def iam(self):
        return boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def user_with_keys(self, name: str, actions: list[str]) -> tuple[str, str]:
        iam = self.iam()
        iam.create_user(UserName=name)
        if actions:
            document = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
            }
            iam.put_user_policy(
                UserName=name, PolicyName="rotation", PolicyDocument=json.dumps(document)
            )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def enforce_permissions(self) -> None:
        # moto checks signatures and IAM policies once its count of unchecked requests
        # (INITIAL_NO_AUTH_ACTION_COUNT, unlimited by default) is reached; 0 turns checks on now.
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=10).read()

    def password(self, name: str) -> str | None:
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=10) as resp:
            users = json.load(resp)["iam"]["User"]
        return next(user.get("password") for user in users if user["name"] == name)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def auth_emulator():
    server = AuthEmulator()
    try:
        iam = server.iam()
        iam.create_user(UserName="TestUser")
        iam.create_login_profile(UserName="TestUser", Password="Initial-Passw0rd!")
        server.keys = {
            "limited": server.user_with_keys("limited-rotator", LIMITED_ACTIONS),
            "nothing": server.user_with_keys("no-permissions", []),
        }
        server.enforce_permissions()
        yield server
    finally:
        server.stop()


def _keyed_config(personas, endpoint: str, key_id: str, secret: str):
    config = make_configuration(
        personas.folder, personas.gateway, endpoint=endpoint, access_key_id=key_id
    )
    config.set_secret("access_secret_key", secret)
    config.save()
    return config


def test_access_denied_names_the_refused_action(personas, auth_emulator):
    config = _keyed_config(personas, auth_emulator.endpoint, *auth_emulator.keys["limited"])

    with pytest.raises(aws.AwsRefused) as caught:
        aws.set_console_password(config, login="TestUser", password=NEW_PASSWORD)

    assert caught.value.code == "AccessDenied"
    assert "AWS refused iam:UpdateLoginProfile" in caught.value.message
    assert "Grant iam:UpdateLoginProfile to the configuration's credentials" in caught.value.message
    assert NEW_PASSWORD not in caught.value.message
    assert auth_emulator.password("TestUser") == "Initial-Passw0rd!"


def test_limited_permissions_are_enough_to_check_the_target(personas, auth_emulator):
    config = _keyed_config(personas, auth_emulator.endpoint, *auth_emulator.keys["limited"])

    aws.check_target(config, login="TestUser", arn=f"arn:aws:iam::{ACCOUNT_ID}:user/TestUser")


def test_access_denied_in_test_connection_names_the_policy_action(personas, auth_emulator):
    # GetCallerIdentity needs no permission (in AWS as in moto); the policy read does.
    config = _keyed_config(personas, auth_emulator.endpoint, *auth_emulator.keys["nothing"])

    with pytest.raises(aws.AwsRefused) as caught:
        aws.test_connection(config)

    assert "Grant iam:GetAccountPasswordPolicy" in caught.value.message


def test_access_denied_in_check_target_names_get_login_profile(personas, auth_emulator):
    config = _keyed_config(personas, auth_emulator.endpoint, *auth_emulator.keys["nothing"])

    with pytest.raises(aws.AwsRefused) as caught:
        aws.check_target(config, login="TestUser", arn=f"arn:aws:iam::{ACCOUNT_ID}:user/TestUser")

    assert "AWS refused iam:GetLoginProfile" in caught.value.message


def test_unknown_access_key_is_refused_as_invalid_credentials(personas, auth_emulator):
    config = _keyed_config(
        personas, auth_emulator.endpoint, "AKIAUNKNOWNKEY000000", "whatever-secret"
    )

    with pytest.raises(aws.AwsRefused) as caught:
        aws.set_console_password(config, login="TestUser", password=NEW_PASSWORD)

    assert caught.value.code == "InvalidClientTokenId"
    assert "access key ID AKIAUNKNOWNKEY000000" in caught.value.message
    assert "not valid or has expired" in caught.value.message


def test_wrong_secret_key_is_refused_without_revealing_it(personas, auth_emulator):
    key_id, _secret = auth_emulator.keys["limited"]
    config = _keyed_config(personas, auth_emulator.endpoint, key_id, "wrong-secret-key-value")

    with pytest.raises(aws.AwsRefused) as caught:
        aws.test_connection(config)

    assert caught.value.code == "SignatureDoesNotMatch"
    assert "secret key does not match" in caught.value.message
    assert "wrong-secret-key-value" not in caught.value.message


def test_instance_role_uses_the_default_credential_chain(personas, auth_emulator, monkeypatch):
    key_id, secret = auth_emulator.keys["limited"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    config = make_configuration(
        personas.folder,
        personas.gateway,
        endpoint=auth_emulator.endpoint,
        access_key_id="USE_INSTANCE_ROLE",
    )

    report = aws.test_connection(config)

    assert report.arn == f"arn:aws:iam::{ACCOUNT_ID}:user/limited-rotator"


def test_no_password_or_secret_key_reaches_the_logs(config, emulator, caplog):
    caplog.set_level(logging.DEBUG)
    emulator.create_user("TestUser")

    aws.set_console_password(config, login="TestUser", password=NEW_PASSWORD)

    assert emulator.passwords()["TestUser"] == NEW_PASSWORD
    # botocore logs request bodies at DEBUG; the settings keep it at INFO even when the
    # root logger is at DEBUG.
    assert logging.getLogger("botocore").getEffectiveLevel() >= logging.INFO
    assert NEW_PASSWORD not in caplog.text
    assert config.get_secret("access_secret_key") not in caplog.text


# --- access keys under enforced permissions ---------------------------------------------------

KEY_ACTIONS = [
    "iam:ListAccessKeys",
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",
    "iam:DeleteAccessKey",
    "iam:GetUser",
]


@pytest.fixture(scope="module")
def key_emulator():
    server = AuthEmulator()
    try:
        iam = server.iam()
        iam.create_user(UserName="KeyUser")
        server.keys = {
            "keys": server.user_with_keys("key-rotator", KEY_ACTIONS),
            "list-only": server.user_with_keys("key-lister", ["iam:ListAccessKeys"]),
        }
        server.enforce_permissions()
        yield server
    finally:
        server.stop()


def test_the_key_permission_probe_names_the_missing_actions(personas, key_emulator):
    config = _keyed_config(personas, key_emulator.endpoint, *key_emulator.keys["list-only"])
    found = aws.probe_key_permissions(config, login="KeyUser")
    assert found["iam:ListAccessKeys"] is None
    assert "iam:UpdateAccessKey" in found["iam:UpdateAccessKey"]
    assert "iam:DeleteAccessKey" in found["iam:DeleteAccessKey"]


def test_the_key_permission_probe_passes_with_the_needed_actions(personas, key_emulator):
    config = _keyed_config(personas, key_emulator.endpoint, *key_emulator.keys["keys"])
    assert set(aws.probe_key_permissions(config, login="KeyUser").values()) == {None}


def test_a_created_key_authenticates_with_its_secret_and_not_with_another(personas, key_emulator):
    config = _keyed_config(personas, key_emulator.endpoint, *key_emulator.keys["keys"])
    key_id, secret = aws.create_access_key(config, login="KeyUser")
    try:
        arn = aws.key_identity(config, key_id=key_id, secret=secret)
        assert arn.endswith(":user/KeyUser")
        with pytest.raises(aws.AwsRefused) as caught:
            aws.key_identity(config, key_id=key_id, secret="not-" + secret[4:])
        assert caught.value.code in aws.BAD_CREDENTIAL_CODES
    finally:
        assert aws.delete_access_key(config, login="KeyUser", key_id=key_id)
    assert aws.delete_access_key(config, login="KeyUser", key_id=key_id) is False
