"""A configuration's endpoint URL pointing at something that is not AWS: an internal web page, a
port that accepts and never answers, a connection reset, an address outside the allowlist.

Every failure is one of our AwsErrors with a sentence a person can act on, on the gateway and
in Test connection alike; a rotation fails or retries cleanly and its task never crashes. Real
servers on 127.0.0.1 (tests/hostile.py), no stubs.
"""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from rotation import aws, engine, tasks
from rotation.models import Rotation
from tests.conftest import make_configuration, make_pam_user
from tests.hostile import HtmlServer, ResetServer, SilentServer
from tests.rotation.conftest import make_settings

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "New-Passw0rd!Rotated"
ARN = "arn:aws:iam::123456789012:user/TestUser"
# One attempt per call, half a second to read: a silent endpoint costs seconds, not minutes.
QUICK = {"AWS_READ_TIMEOUT": 0.5, "AWS_CONNECT_TIMEOUT": 0.5, "AWS_MAX_ATTEMPTS": 1}


@pytest.fixture
def html_server():
    with HtmlServer() as server:
        yield server


@pytest.fixture
def silent_server():
    with SilentServer() as server:
        yield server


@pytest.fixture
def reset_server():
    with ResetServer() as server:
        yield server


def _config(personas, server):
    return make_configuration(personas.folder, personas.gateway, endpoint=server.endpoint)


# --- an internal web page answers (HTML, not AWS's XML) -----------------------------------------


def test_test_connection_to_a_web_page_is_an_aws_error(personas, html_server):
    config = _config(personas, html_server)
    with pytest.raises(aws.AwsTransient) as caught:
        aws.test_connection(config)
    error = caught.value
    assert error.code == "ResponseParserError"
    assert f"endpoint {html_server.endpoint} answered sts:GetCallerIdentity" in error.message
    assert "not an AWS answer" in error.message
    assert "<html" not in error.message.lower()  # the page itself is not repeated
    assert html_server.hits >= 1


def test_password_policy_from_a_web_page_is_an_aws_error(personas, html_server):
    with pytest.raises(aws.AwsTransient) as caught:
        aws.account_password_policy(_config(personas, html_server))
    assert "iam:GetAccountPasswordPolicy" in caught.value.message
    assert caught.value.may_have_applied is False


def test_check_target_against_a_web_page_is_an_aws_error(personas, html_server):
    with pytest.raises(aws.AwsError):
        aws.check_target(_config(personas, html_server), login="TestUser", arn=ARN)


def test_login_profile_read_from_a_web_page_is_an_aws_error(personas, html_server, monkeypatch):
    config = _config(personas, html_server)
    monkeypatch.setattr(aws, "check_account", lambda *a, **k: None)
    with pytest.raises(aws.AwsTransient) as caught:
        aws.check_target(config, login="TestUser", arn=ARN)
    assert "iam:GetLoginProfile" in caught.value.message


def test_password_change_answered_by_a_web_page_may_have_applied(personas, html_server):
    # Something answered the request: it may have been a proxy in front of AWS that applied it.
    with pytest.raises(aws.AwsTransient) as caught:
        aws.set_console_password(
            _config(personas, html_server), login="TestUser", password=NEW_PASSWORD
        )
    assert caught.value.may_have_applied is True
    assert NEW_PASSWORD not in caught.value.message


def test_an_html_error_page_is_an_aws_error(personas):
    with HtmlServer(status=502) as server:
        with pytest.raises(aws.AwsTransient):
            aws.test_connection(_config(personas, server))


def test_an_identity_answer_without_an_account_is_an_aws_error(personas):
    empty = (
        b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        b"<GetCallerIdentityResult></GetCallerIdentityResult></GetCallerIdentityResponse>"
    )
    with HtmlServer(body=empty, content_type="text/xml") as server:
        config = _config(personas, server)
        with pytest.raises(aws.AwsTransient) as caught:
            aws.test_connection(config)
        with pytest.raises(aws.AwsTransient):
            aws.caller_account(config)
    assert caught.value.code == "InvalidResponse"
    assert "without an AWS account id" in caught.value.message


# --- a port that accepts and never answers ------------------------------------------------------


@override_settings(**QUICK)
def test_silent_endpoint_times_out_with_a_clear_message(personas, silent_server):
    started = time.monotonic()
    with pytest.raises(aws.AwsTransient) as caught:
        aws.test_connection(_config(personas, silent_server))
    assert time.monotonic() - started < 10
    assert caught.value.code == "ReadTimeout"
    assert "did not answer sts:GetCallerIdentity within 0.5 s" in caught.value.message


@override_settings(**QUICK)
def test_silent_endpoint_on_a_password_change_may_have_applied(personas, silent_server):
    with pytest.raises(aws.AwsTransient) as caught:
        aws.set_console_password(
            _config(personas, silent_server), login="TestUser", password=NEW_PASSWORD
        )
    assert caught.value.may_have_applied is True


# --- a connection reset -------------------------------------------------------------------------


@override_settings(**QUICK)
def test_reset_connection_is_an_aws_error(personas, reset_server):
    with pytest.raises(aws.AwsTransient) as caught:
        aws.test_connection(_config(personas, reset_server))
    assert "Try again later" in caught.value.message


@override_settings(**QUICK)
def test_reset_connection_on_a_password_change_may_have_applied(personas, reset_server):
    with pytest.raises(aws.AwsTransient) as caught:
        aws.set_console_password(
            _config(personas, reset_server), login="TestUser", password=NEW_PASSWORD
        )
    assert caught.value.may_have_applied is True


# --- the gateway's rotation task never crashes ---------------------------------------------------


def _requested_rotation(personas, server) -> Rotation:
    config = _config(personas, server)
    record = make_pam_user(personas.folder, password="Old-Passw0rd!")
    make_settings(record, config)
    return Rotation.objects.create(
        pam_user=record, configuration=config, gateway_name=personas.gateway.name, trigger="cli"
    )


def test_rotation_against_a_web_page_fails_cleanly(personas, html_server, settings):
    settings.ROTATION_MAX_ATTEMPTS = 2
    rotation = _requested_rotation(personas, html_server)

    assert tasks.run_rotation(rotation.pk) == Rotation.FAILED

    rotation.refresh_from_db()
    assert rotation.status == Rotation.FAILED
    assert "not an AWS answer" in rotation.error
    assert "gave up after 2 attempts" in rotation.error


@override_settings(**QUICK, ROTATION_MAX_ATTEMPTS=2)
def test_rotation_against_a_silent_endpoint_fails_cleanly(personas, silent_server):
    rotation = _requested_rotation(personas, silent_server)

    assert tasks.run_rotation(rotation.pk) == Rotation.FAILED

    rotation.refresh_from_db()
    assert "did not answer" in rotation.error
    assert not Rotation.objects.filter(status__in=Rotation.ACTIVE).exists()


def test_rotation_whose_password_change_hits_a_web_page_keeps_the_password(
    personas, html_server, monkeypatch, settings
):
    """The policy and account checks passed (as if AWS answered them); the change itself got
    an HTML page back: the pending password is kept as possibly live."""
    settings.ROTATION_MAX_ATTEMPTS = 1
    rotation = _requested_rotation(personas, html_server)
    monkeypatch.setattr(aws, "account_password_policy", lambda config: None)
    monkeypatch.setattr(aws, "check_account", lambda *a, **k: None)

    assert engine.rotation_run(rotation_id=rotation.pk) == Rotation.FAILED

    rotation.refresh_from_db()
    assert rotation.holds_possibly_live_password


# --- the allowlist, enforced again on the gateway -----------------------------------------------


def test_endpoint_outside_the_allowlist_is_refused_and_nothing_is_sent(personas, html_server):
    config = _config(personas, html_server)  # saved while the allowlist still allowed it
    with override_settings(AWS_ENDPOINT_ALLOWLIST=["*.example.com"]):
        with pytest.raises(aws.AwsRefused) as caught:
            aws.test_connection(config)
    assert caught.value.code == "EndpointNotAllowed"
    assert html_server.endpoint in caught.value.message
    assert "AWS_ENDPOINT_ALLOWLIST" in caught.value.message
    assert html_server.hits == 0


def test_a_cached_client_does_not_outlive_the_allowlist(personas, emulator):
    config = make_configuration(personas.folder, personas.gateway, endpoint=emulator.endpoint)
    aws.test_connection(config)  # a client for this configuration is now cached
    with override_settings(AWS_ENDPOINT_ALLOWLIST=[]):
        with pytest.raises(aws.AwsRefused):
            aws.test_connection(config)


def test_rotation_with_an_endpoint_outside_the_allowlist_fails_without_sending(
    personas, html_server
):
    rotation = _requested_rotation(personas, html_server)
    with override_settings(AWS_ENDPOINT_ALLOWLIST=[]):
        assert tasks.run_rotation(rotation.pk) == Rotation.FAILED
    rotation.refresh_from_db()
    assert "AWS_ENDPOINT_ALLOWLIST" in rotation.error
    assert not rotation.pending_may_be_live
    assert html_server.hits == 0


def test_empty_endpoint_is_always_allowed(personas):
    config = make_configuration(personas.folder, personas.gateway, endpoint="")
    with override_settings(AWS_ENDPOINT_ALLOWLIST=[]):
        assert aws.client(config, "sts") is not None
