"""How rotation/aws.py classifies failures: refused (nothing changed) or transient, and whether
a failed UpdateLoginProfile may have applied the new password.

Three layers: botocore's Stubber for AWS error answers; a ``before-send`` hook that plays
transport failures through botocore's real retry loop; and the fault proxy in front of the
real emulator.
"""

from __future__ import annotations

import socket
import time

import botocore.exceptions as bce
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from rotation import aws
from tests.conftest import make_configuration
from tests.emulator import ACCOUNT_ID
from tests.faultproxy import FaultProxy, aws_error_xml

NEW_PASSWORD = "New-Passw0rd!Rotated"
UNUSED_ENDPOINT = "http://127.0.0.1:9"
UPDATE = "Action=UpdateLoginProfile"
UPDATE_OK = (
    b'<UpdateLoginProfileResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
    b"<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>"
    b"</UpdateLoginProfileResponse>"
)


@pytest.fixture(autouse=True)
def fresh_caches():
    aws.clear_caches()
    yield
    aws.clear_caches()


@pytest.fixture
def offline_config(personas):
    """A configuration whose requests never reach a network (stubbed or hooked)."""
    return make_configuration(personas.folder, personas.gateway, endpoint=UNUSED_ENDPOINT)


@pytest.fixture
def stubbed_iam(offline_config):
    stubber = Stubber(aws.client(offline_config, "iam"))
    with stubber:
        yield stubber


def _update(config, password: str = NEW_PASSWORD) -> None:
    aws.set_console_password(config, login="TestUser", password=password)


def _update_error(config) -> aws.AwsError:
    with pytest.raises(aws.AwsError) as caught:
        _update(config)
    return caught.value


# --- AWS error answers (Stubber) ---


@pytest.mark.parametrize("code", ["Throttling", "ThrottlingException", "RequestLimitExceeded"])
def test_throttling_is_transient_and_proves_nothing_applied(offline_config, stubbed_iam, code):
    stubbed_iam.add_client_error("update_login_profile", code, "Rate exceeded", 400)

    error = _update_error(offline_config)

    assert isinstance(error, aws.AwsTransient)
    assert error.code == code
    assert error.may_have_applied is False


def test_password_policy_violation_is_refused(offline_config, stubbed_iam):
    stubbed_iam.add_client_error(
        "update_login_profile",
        "PasswordPolicyViolation",
        "Password should have at least one symbol",
        400,
    )

    error = _update_error(offline_config)

    assert isinstance(error, aws.AwsRefused)
    assert "password policy" in error.message
    assert "at least one symbol" in error.message


def test_service_failure_on_update_may_have_applied(offline_config, stubbed_iam):
    stubbed_iam.add_client_error("update_login_profile", "ServiceFailure", "Internal", 500)

    error = _update_error(offline_config)

    assert isinstance(error, aws.AwsTransient)
    assert error.may_have_applied is True


def test_service_failure_on_a_read_only_call_applied_nothing(offline_config, stubbed_iam):
    stubbed_iam.add_client_error("get_account_password_policy", "ServiceFailure", "Internal", 500)

    with pytest.raises(aws.AwsTransient) as caught:
        aws.account_password_policy(offline_config)

    assert caught.value.may_have_applied is False


def test_unknown_error_on_update_may_have_applied(offline_config, stubbed_iam):
    stubbed_iam.add_client_error("update_login_profile", "SomethingNew", "Surprise", 409)

    error = _update_error(offline_config)

    assert isinstance(error, aws.AwsTransient)
    assert error.may_have_applied is True


def test_no_such_entity_on_update_says_console_access_is_needed(offline_config, stubbed_iam):
    stubbed_iam.add_client_error(
        "update_login_profile", "NoSuchEntity", "Login Profile for User TestUser cannot be found."
    )

    error = _update_error(offline_config)

    assert isinstance(error, aws.AwsRefused)
    assert error.message == aws.no_console_access_message("TestUser")


def test_entity_temporarily_unmodifiable_is_retried_until_it_succeeds(
    offline_config, stubbed_iam, monkeypatch
):
    waits: list[float] = []
    monkeypatch.setattr(aws, "_sleep", waits.append)
    for _ in range(2):
        stubbed_iam.add_client_error(
            "update_login_profile", "EntityTemporarilyUnmodifiable", "Busy", 409
        )
    stubbed_iam.add_response("update_login_profile", {})

    _update(offline_config)

    assert len(waits) == 2
    stubbed_iam.assert_no_pending_responses()


def test_entity_temporarily_unmodifiable_gives_up_briefly_as_transient(
    offline_config, stubbed_iam, monkeypatch
):
    waits: list[float] = []
    monkeypatch.setattr(aws, "_sleep", waits.append)
    for _ in range(len(aws.UNMODIFIABLE_DELAYS) + 1):
        stubbed_iam.add_client_error(
            "update_login_profile", "EntityTemporarilyUnmodifiable", "Busy", 409
        )

    error = _update_error(offline_config)

    assert isinstance(error, aws.AwsTransient)
    assert error.code == "EntityTemporarilyUnmodifiable"
    assert error.may_have_applied is False
    assert 0 < sum(waits) < 5


def test_access_denied_names_the_action_aws_refused(offline_config, stubbed_iam):
    stubbed_iam.add_client_error(
        "update_login_profile",
        "AccessDenied",
        "User: arn:aws:iam::123456789012:user/r is not authorized to perform: "
        "iam:UpdateLoginProfile on resource: user TestUser",
        403,
    )

    error = _update_error(offline_config)

    assert isinstance(error, aws.AwsRefused)
    assert "Grant iam:UpdateLoginProfile to the configuration's credentials" in error.message


def test_access_denied_without_details_names_the_called_action(offline_config, stubbed_iam):
    stubbed_iam.add_client_error("update_login_profile", "AccessDenied", "Access denied", 403)

    error = _update_error(offline_config)

    assert "AWS refused iam:UpdateLoginProfile" in error.message


@pytest.mark.parametrize(
    "code",
    [
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "UnrecognizedClientException",
    ],
)
def test_invalid_credentials_are_refused_naming_the_access_key(offline_config, stubbed_iam, code):
    stubbed_iam.add_client_error("update_login_profile", code, "Bad token", 403)

    error = _update_error(offline_config)

    assert isinstance(error, aws.AwsRefused)
    assert error.code == code
    assert f"access key ID {offline_config.access_key_id}" in error.message


@pytest.mark.parametrize("code", ["ValidationError", "InvalidInput"])
def test_invalid_request_is_refused(offline_config, stubbed_iam, code):
    stubbed_iam.add_client_error("update_login_profile", code, "1 validation error", 400)

    assert isinstance(_update_error(offline_config), aws.AwsRefused)


def test_a_password_echoed_by_aws_is_not_repeated(offline_config, stubbed_iam):
    stubbed_iam.add_client_error(
        "update_login_profile", "PasswordPolicyViolation", f"Password {NEW_PASSWORD} is weak", 400
    )

    error = _update_error(offline_config)

    assert NEW_PASSWORD not in error.message
    assert NEW_PASSWORD not in str(error)


def test_wrong_account_is_refused_before_any_iam_call(offline_config, monkeypatch):
    monkeypatch.setattr(aws, "caller_account", lambda config: ACCOUNT_ID)

    with pytest.raises(aws.AwsRefused) as caught:
        aws.check_target(
            offline_config, login="TestUser", arn="arn:aws-cn:iam::111111111111:user/ops/TestUser"
        )

    assert "111111111111" in caught.value.message
    assert ACCOUNT_ID in caught.value.message


# --- transport failures through botocore's own retry loop (no network) ---


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_):
        yield self.body


class Wire:
    """Answers each HTTP attempt of one client: an exception to raise, or (status, body)."""

    def __init__(self, api, outcomes: list) -> None:
        self.outcomes = list(outcomes)
        self.sent = 0
        api.meta.events.register("before-send", self)

    def __call__(self, request, **_):
        self.sent += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        status, body = outcome
        return AWSResponse(request.url, status, {"Content-Type": "text/xml"}, _Raw(body))


def _iam_wire(config, *outcomes) -> Wire:
    return Wire(aws.client(config, "iam"), list(outcomes))


def test_connection_closed_on_update_may_have_applied(offline_config, settings):
    settings.AWS_MAX_ATTEMPTS = 1
    _iam_wire(offline_config, bce.ConnectionClosedError(endpoint_url=UNUSED_ENDPOINT))

    error = _update_error(offline_config)

    assert isinstance(error, aws.AwsTransient)
    assert error.code == "ConnectionClosed"
    assert error.may_have_applied is True


def test_read_timeout_on_update_may_have_applied(offline_config, settings):
    settings.AWS_MAX_ATTEMPTS = 1
    _iam_wire(offline_config, bce.ReadTimeoutError(endpoint_url=UNUSED_ENDPOINT))

    error = _update_error(offline_config)

    assert error.code == "ReadTimeout"
    assert error.may_have_applied is True


def test_connect_timeout_on_update_applied_nothing(offline_config, settings):
    settings.AWS_MAX_ATTEMPTS = 1
    _iam_wire(offline_config, bce.ConnectTimeoutError(endpoint_url=UNUSED_ENDPOINT))

    error = _update_error(offline_config)

    assert isinstance(error, aws.AwsTransient)
    assert error.code == "ConnectTimeout"
    assert error.may_have_applied is False


def test_connection_closed_on_a_read_only_call_applied_nothing(offline_config, settings):
    settings.AWS_MAX_ATTEMPTS = 1
    Wire(
        aws.client(offline_config, "sts"),
        [bce.ConnectionClosedError(endpoint_url=UNUSED_ENDPOINT)],
    )

    with pytest.raises(aws.AwsTransient) as caught:
        aws.caller_account(offline_config)

    assert caught.value.may_have_applied is False


def test_connection_closed_then_success_is_retried(offline_config, settings):
    settings.AWS_MAX_ATTEMPTS = 2
    wire = _iam_wire(
        offline_config, bce.ConnectionClosedError(endpoint_url=UNUSED_ENDPOINT), (200, UPDATE_OK)
    )

    _update(offline_config)

    assert wire.sent == 2


def test_refusal_after_an_unanswered_attempt_may_have_applied(offline_config, settings):
    # With password reuse prevention, AWS refuses the retry of a password the first attempt set.
    settings.AWS_MAX_ATTEMPTS = 2
    _iam_wire(
        offline_config,
        bce.ConnectionClosedError(endpoint_url=UNUSED_ENDPOINT),
        (400, aws_error_xml("PasswordPolicyViolation", "Password was used before")),
    )

    error = _update_error(offline_config)

    assert isinstance(error, aws.AwsTransient)
    assert error.code == "PasswordPolicyViolation"
    assert error.may_have_applied is True


def test_throttling_after_an_unanswered_attempt_may_have_applied(offline_config, settings):
    settings.AWS_MAX_ATTEMPTS = 2
    _iam_wire(
        offline_config,
        (503, aws_error_xml("ServiceUnavailable", "Down", sender=False)),
        (400, aws_error_xml("Throttling", "Rate exceeded")),
    )

    error = _update_error(offline_config)

    assert error.code == "Throttling"
    assert error.may_have_applied is True


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_endpoint_that_refuses_connections_applied_nothing(personas, settings):
    settings.AWS_MAX_ATTEMPTS = 1
    config = make_configuration(
        personas.folder, personas.gateway, endpoint=f"http://127.0.0.1:{_closed_port()}"
    )

    error = _update_error(config)

    assert isinstance(error, aws.AwsTransient)
    assert error.code == "EndpointConnectionError"
    assert error.may_have_applied is False
    assert "nothing was sent" in error.message


# --- through the fault proxy, against the real emulator ---


@pytest.fixture
def proxy(emulator):
    with FaultProxy(upstream=emulator.endpoint) as running:
        yield running


@pytest.fixture
def proxied_config(personas, proxy, emulator):
    emulator.create_user("TestUser", password="Initial-Passw0rd!")
    return make_configuration(personas.folder, personas.gateway, endpoint=proxy.endpoint)


def test_two_503s_then_success_are_retried_by_botocore(proxied_config, proxy, emulator):
    proxy.status(503, times=2, match=UPDATE)

    _update(proxied_config)

    assert emulator.passwords()["TestUser"] == NEW_PASSWORD
    assert proxy.counters["status"] == 2
    assert proxy.actions["UpdateLoginProfile"] == 3


def test_5xx_after_the_last_retry_may_have_applied(proxied_config, proxy, settings):
    settings.AWS_MAX_ATTEMPTS = 2
    proxy.status(500, times=2, match=UPDATE)

    error = _update_error(proxied_config)

    assert isinstance(error, aws.AwsTransient)
    assert error.code == "ServiceFailure"
    assert error.may_have_applied is True


def test_throttle_is_retried_by_botocore(proxied_config, proxy, emulator):
    proxy.throttle(match=UPDATE)

    _update(proxied_config)

    assert emulator.passwords()["TestUser"] == NEW_PASSWORD
    assert proxy.counters["throttle"] == 1


def test_throttle_after_the_last_retry_applied_nothing(proxied_config, proxy, emulator, settings):
    settings.AWS_MAX_ATTEMPTS = 2
    proxy.throttle(times=2, match=UPDATE)

    error = _update_error(proxied_config)

    assert error.code == "Throttling"
    assert error.may_have_applied is False
    assert emulator.passwords()["TestUser"] == "Initial-Passw0rd!"


def test_dropped_answer_after_aws_applied_may_have_applied(
    proxied_config, proxy, emulator, settings
):
    settings.AWS_MAX_ATTEMPTS = 1
    aws.clear_caches()
    proxy.drop_after(match=UPDATE)

    error = _update_error(proxied_config)

    assert isinstance(error, aws.AwsTransient)
    assert error.may_have_applied is True
    assert emulator.passwords()["TestUser"] == NEW_PASSWORD
    assert proxy.counters["drop_after"] == 1


def test_dropped_answer_is_retried_with_the_same_password(proxied_config, proxy, emulator):
    proxy.drop_after(match=UPDATE)

    _update(proxied_config)

    assert emulator.passwords()["TestUser"] == NEW_PASSWORD
    assert proxy.actions["UpdateLoginProfile"] == 2


def test_connection_dropped_before_forwarding_counts_as_may_have_applied(
    proxied_config, proxy, emulator, settings
):
    # The client cannot tell a drop before from a drop after: it must assume the worst.
    settings.AWS_MAX_ATTEMPTS = 1
    proxy.drop_before(match=UPDATE)

    error = _update_error(proxied_config)

    assert error.may_have_applied is True
    assert emulator.passwords()["TestUser"] == "Initial-Passw0rd!"


def test_read_timeout_then_late_change_may_have_applied(proxied_config, proxy, emulator, settings):
    settings.AWS_MAX_ATTEMPTS = 1
    settings.AWS_READ_TIMEOUT = 0.3
    proxy.slow(1.0, match=UPDATE)

    error = _update_error(proxied_config)

    assert error.code == "ReadTimeout"
    assert error.may_have_applied is True
    deadline = time.monotonic() + 5
    while emulator.passwords()["TestUser"] != NEW_PASSWORD and time.monotonic() < deadline:
        time.sleep(0.1)
    assert emulator.passwords()["TestUser"] == NEW_PASSWORD
