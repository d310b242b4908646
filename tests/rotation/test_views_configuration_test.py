"""Test connection on a PAM Configuration page: the web records a request and the
configuration's gateway runs it (the web never talks to AWS); what the page shows when the
answer arrives, while it waits, and who may press it."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from rotation import tasks, views
from rotation.models import ConnectionTest
from tests.conftest import login, make_configuration
from tests.emulator import ACCOUNT_ID
from tests.hostile import HtmlServer, SilentServer
from vault.models import AuditEvent, Gateway, PamConfiguration

pytestmark = pytest.mark.django_db

NOTHING_LISTENS = "http://127.0.0.1:9"
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture(autouse=True)
def enqueued():
    """Nothing goes to django-q2 here; tests run the gateway's task themselves."""
    with mock.patch("rotation.dispatch.async_task") as async_task:
        yield async_task


@pytest.fixture
def online(personas):
    Gateway.objects.filter(pk=personas.gateway.pk).update(last_seen_at=timezone.now())


@pytest.fixture
def offline_config(personas):
    return make_configuration(personas.folder, personas.gateway, endpoint=NOTHING_LISTENS)


def _url(config) -> str:
    return f"/configurations/{config.uid}/test/"


def _status_url(config) -> str:
    return f"/configurations/{config.uid}/test/status/"


def _page(client, config) -> str:
    return client.get(f"/configurations/{config.uid}/").content.decode()


def _snapshot(config) -> tuple:
    return (
        list(PamConfiguration.objects.filter(pk=config.pk).values()),
        list(AuditEvent.objects.values_list("action", flat=True)),
        list(ConnectionTest.objects.values()),
    )


def _result(html: str) -> str:
    start = html.index('id="connection-result"')
    return html[start : html.index("</div>", start)]


def _gateway_runs_queued_tests() -> list[str]:
    """What the gateway's workers do with the tasks the web enqueued."""
    queued = ConnectionTest.objects.filter(status=ConnectionTest.QUEUED).order_by("pk")
    return [tasks.test_configuration(pk) for pk in queued.values_list("pk", flat=True)]


def _tested(client, config) -> str:
    """Press Test connection, let the gateway run it, and return the configuration page."""
    client.post(_url(config))
    _gateway_runs_queued_tests()
    return _page(client, config)


# --- the web only records the request -----------------------------------------------------------


def test_test_connection_returns_to_the_configuration_page(personas, world):
    response = login(personas.editor).post(_url(world.config))
    assert response.status_code == 302
    assert response.url == f"/configurations/{world.config.uid}/"


def test_request_is_recorded_for_the_configurations_gateway(personas, world):
    login(personas.editor).post(_url(world.config))
    test = ConnectionTest.objects.get()
    assert (test.configuration, test.status) == (world.config, ConnectionTest.QUEUED)
    assert test.gateway_name == "default"
    assert test.requested_by == personas.editor


def test_request_is_handed_to_the_gateway_after_commit(
    personas, world, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        login(personas.editor).post(_url(world.config))
    test = ConnectionTest.objects.get()
    enqueued.assert_called_once()
    assert enqueued.call_args.args == ("rotation.tasks.test_configuration", test.pk)
    assert enqueued.call_args.kwargs["cluster"] == "default"


def test_the_web_never_talks_to_aws(personas, world):
    assert not hasattr(views, "aws")
    with mock.patch("rotation.aws.client", side_effect=AssertionError("the web called AWS")):
        response = login(personas.editor).post(_url(world.config))
    assert response.status_code == 302


@override_settings(AWS_READ_TIMEOUT=3, AWS_MAX_ATTEMPTS=2)
def test_the_web_answers_at_once_when_the_endpoint_never_answers(personas):
    with SilentServer() as server:
        config = make_configuration(personas.folder, personas.gateway, endpoint=server.endpoint)
        started = time.monotonic()
        response = login(personas.editor).post(_url(config))
        assert time.monotonic() - started < 2
        assert response.status_code == 302
        assert server.hits == 0


def test_an_endpoint_answering_html_is_not_an_error_page(personas):
    with HtmlServer() as server:
        config = make_configuration(personas.folder, personas.gateway, endpoint=server.endpoint)
        response = login(personas.editor).post(_url(config), follow=True)
        assert response.status_code == 200
        assert server.hits == 0
        _gateway_runs_queued_tests()
        text = _result(_page(login(personas.editor), config))
        assert "not an AWS answer" in text


def test_json_request_answers_with_the_test_and_where_to_follow_it(personas, world):
    response = login(personas.editor).post(_url(world.config), **JSON)
    data = response.json()
    test = ConnectionTest.objects.get()
    assert data == {
        "ok": True,
        "test": test.uid,
        "status": "queued",
        "status_url": _status_url(world.config),
    }


def test_the_page_says_the_request_went_to_the_gateway(personas, world):
    response = login(personas.editor).post(_url(world.config), follow=True)
    assert "Test connection requested from the gateway “default”" in response.content.decode()


# --- what the page shows when the gateway has answered ------------------------------------------


def test_success_shows_the_account_id_on_the_configuration_page(personas, world):
    html = _tested(login(personas.editor), world.config)
    assert f"AWS account <strong>{ACCOUNT_ID}</strong>" in _result(html)
    assert "Tested by the gateway “default”" in _result(html)


def test_success_shows_the_account_password_policy(personas, world):
    world.emulator.iam().update_account_password_policy(
        MinimumPasswordLength=14, RequireSymbols=True
    )
    html = _tested(login(personas.editor), world.config)
    assert "minimum length 14; requires symbols" in _result(html)


def test_account_without_a_policy_says_so(personas, world):
    html = _tested(login(personas.editor), world.config)
    assert "no custom password policy" in _result(html)


def test_latest_result_stays_on_the_page(personas, world):
    client = login(personas.editor)
    _tested(client, world.config)
    assert ACCOUNT_ID in _result(_page(client, world.config))
    assert ACCOUNT_ID in _result(_page(login(personas.viewer), world.config))


def test_result_is_not_shown_on_another_configuration(personas, world):
    other = make_configuration(personas.folder, personas.gateway, title="Other")
    client = login(personas.editor)
    _tested(client, world.config)
    assert 'id="connection-result"' not in _page(client, other)
    assert ACCOUNT_ID in _result(_page(client, world.config))


def test_endpoint_where_nothing_listens_shows_a_clear_error(personas, offline_config):
    text = _result(_tested(login(personas.editor), offline_config))
    assert "Test connection failed" in text
    assert "Could not connect to the endpoint http://127.0.0.1:9" in text
    assert "Check the endpoint URL" in text


def test_failed_test_never_shows_the_secret_key(personas, offline_config):
    assert "testing-secret" not in _tested(login(personas.editor), offline_config)


def test_successful_test_never_shows_the_secret_key(personas, world):
    assert "testing-secret" not in _tested(login(personas.editor), world.config)


# --- while it waits ---------------------------------------------------------------------------


def test_queued_test_on_an_online_gateway_says_it_waits(personas, world, online):
    client = login(personas.editor)
    client.post(_url(world.config))
    html = _page(client, world.config)
    assert "waiting for the gateway “default”" in html
    assert 'id="connection-gateway-down"' not in html
    assert 'data-active="1"' in html


def test_queued_test_on_an_offline_gateway_says_the_gateway_is_offline(personas, world):
    Gateway.objects.filter(pk=personas.gateway.pk).update(
        last_seen_at=timezone.now() - timezone.timedelta(hours=1)
    )
    client = login(personas.editor)
    client.post(_url(world.config))
    html = _page(client, world.config)
    assert "The gateway “default” is offline" in html
    assert "The test runs when the gateway is back." in html


def test_queued_test_on_a_gateway_never_seen_says_so(personas, world):
    assert personas.gateway.last_seen_at is None
    client = login(personas.editor)
    client.post(_url(world.config))
    html = _page(client, world.config)
    assert "The gateway “default” has never been seen" in html
    assert "python manage.py pam gateway run default" in html


def test_a_test_whose_worker_died_is_no_longer_followed(personas, world, settings):
    client = login(personas.editor)
    client.post(_url(world.config))
    started = timezone.now() - timezone.timedelta(seconds=settings.ROTATION_LEASE_SECONDS + 1)
    ConnectionTest.objects.update(status=ConnectionTest.RUNNING, started_at=started)
    data = client.get(_status_url(world.config)).json()
    assert (data["active"], data["waiting"]) == (False, "lost")
    assert "never finished it" in data["html"]
    assert "Press Test connection again." in _result(_page(client, world.config))


def test_the_page_polls_the_status_while_it_waits(personas, world):
    html = _page(login(personas.editor), world.config)
    assert f'data-status-url="{_status_url(world.config)}"' in html
    assert "/static/js/connection-test.js" in html


# --- the status the page polls ----------------------------------------------------------------


def test_status_without_any_test(personas, world):
    data = login(personas.viewer).get(_status_url(world.config)).json()
    assert (data["active"], data["status"]) == (False, None)
    assert 'id="connection-result"' not in data["html"]


def test_status_follows_the_test_until_the_gateway_answers(personas, world):
    client = login(personas.editor)
    client.post(_url(world.config))
    waiting = client.get(_status_url(world.config)).json()
    assert (waiting["active"], waiting["status"], waiting["waiting"]) == (
        True,
        "queued",
        "never_seen",
    )
    assert _gateway_runs_queued_tests() == ["succeeded"]
    done = client.get(_status_url(world.config)).json()
    assert (done["active"], done["status"], done["label"]) == (False, "succeeded", "Succeeded")
    assert f"AWS account <strong>{ACCOUNT_ID}</strong>" in done["html"]


def test_status_of_a_failed_test_has_its_message(personas, offline_config):
    client = login(personas.editor)
    client.post(_url(offline_config))
    _gateway_runs_queued_tests()
    data = client.get(_status_url(offline_config)).json()
    assert data["status"] == "failed"
    assert data["message"].startswith("Could not connect to the endpoint http://127.0.0.1:9")
    assert "testing-secret" not in str(data)


def test_status_refuses_post(personas, world):
    assert login(personas.editor).post(_status_url(world.config)).status_code == 405


def test_status_is_404_for_an_outsider(personas, world):
    assert login(personas.outsider).get(_status_url(world.config)).status_code == 404


# --- the button --------------------------------------------------------------------------------


def test_editor_sees_the_test_connection_button(personas, offline_config):
    html = _page(login(personas.editor), offline_config)
    assert f'action="{_url(offline_config)}"' in html
    assert ">Test connection</button>" in html


def test_viewer_sees_no_test_connection_button(personas, offline_config):
    html = _page(login(personas.viewer), offline_config)
    assert f'action="{_url(offline_config)}"' not in html
    assert ">Test connection</button>" not in html


# --- refused personas --------------------------------------------------------------------------


@pytest.fixture
def no_aws():
    with mock.patch("rotation.aws.test_connection") as called:
        yield called
    assert not ConnectionTest.objects.exists()


def test_test_connection_rejects_get(personas, offline_config, no_aws):
    assert login(personas.editor).get(_url(offline_config)).status_code == 405
    no_aws.assert_not_called()


def test_viewer_forged_test_is_403_and_calls_nothing(personas, offline_config, no_aws):
    before = _snapshot(offline_config)
    assert login(personas.viewer).post(_url(offline_config)).status_code == 403
    no_aws.assert_not_called()
    assert _snapshot(offline_config) == before


def test_outsider_test_is_404_and_calls_nothing(personas, offline_config, no_aws):
    before = _snapshot(offline_config)
    assert login(personas.outsider).post(_url(offline_config)).status_code == 404
    no_aws.assert_not_called()
    assert _snapshot(offline_config) == before


def test_anonymous_test_redirects_to_login_and_calls_nothing(personas, offline_config, no_aws):
    before = _snapshot(offline_config)
    response = Client().post(_url(offline_config))
    assert response.status_code == 302 and response.url.startswith("/login/")
    no_aws.assert_not_called()
    assert _snapshot(offline_config) == before


def test_unknown_configuration_is_404(personas, no_aws):
    assert login(personas.editor).post("/configurations/no-such/test/").status_code == 404
    no_aws.assert_not_called()
