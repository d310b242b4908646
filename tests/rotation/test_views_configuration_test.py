"""Test connection on a PAM Configuration page: what it shows, and who may press it."""

from __future__ import annotations

from unittest import mock

import pytest
from django.test import Client

from tests.conftest import login, make_configuration
from tests.emulator import ACCOUNT_ID
from vault.models import AuditEvent, PamConfiguration

pytestmark = pytest.mark.django_db

NOTHING_LISTENS = "http://127.0.0.1:9"


@pytest.fixture
def offline_config(personas):
    return make_configuration(personas.folder, personas.gateway, endpoint=NOTHING_LISTENS)


def _url(config) -> str:
    return f"/configurations/{config.uid}/test/"


def _page(client, config) -> str:
    return client.get(f"/configurations/{config.uid}/").content.decode()


def _snapshot(config) -> tuple:
    return (
        list(PamConfiguration.objects.filter(pk=config.pk).values()),
        list(AuditEvent.objects.values_list("action", flat=True)),
    )


def _result(html: str) -> str:
    start = html.index('id="connection-result"')
    return html[start : html.index("</div>", start)]


# --- what it shows -------------------------------------------------------------------------------


def test_test_connection_returns_to_the_configuration_page(personas, world):
    response = login(personas.editor).post(_url(world.config))
    assert response.status_code == 302
    assert response.url == f"/configurations/{world.config.uid}/"


def test_success_shows_the_account_id_on_the_configuration_page(personas, world):
    html = login(personas.editor).post(_url(world.config), follow=True).content.decode()
    assert f"AWS account <strong>{ACCOUNT_ID}</strong>" in _result(html)


def test_success_shows_the_account_password_policy(personas, world):
    world.emulator.iam().update_account_password_policy(
        MinimumPasswordLength=14, RequireSymbols=True
    )
    client = login(personas.editor)
    html = client.post(_url(world.config), follow=True).content.decode()
    assert "minimum length 14; requires symbols" in _result(html)


def test_account_without_a_policy_says_so(personas, world):
    html = login(personas.editor).post(_url(world.config), follow=True).content.decode()
    assert "no custom password policy" in _result(html)


def test_result_is_shown_once(personas, world):
    client = login(personas.editor)
    client.post(_url(world.config), follow=True)
    assert 'id="connection-result"' not in _page(client, world.config)


def test_result_is_not_shown_on_another_configuration(personas, world):
    other = make_configuration(personas.folder, personas.gateway, title="Other")
    client = login(personas.editor)
    client.post(_url(world.config))
    assert 'id="connection-result"' not in _page(client, other)
    assert ACCOUNT_ID in _result(_page(client, world.config))


def test_endpoint_where_nothing_listens_shows_a_clear_error(personas, offline_config):
    response = login(personas.editor).post(_url(offline_config), follow=True)
    assert response.status_code == 200
    text = _result(response.content.decode())
    assert "Could not connect to the endpoint http://127.0.0.1:9" in text
    assert "Check the endpoint URL" in text


def test_failed_test_never_shows_the_secret_key(personas, offline_config):
    html = login(personas.editor).post(_url(offline_config), follow=True).content.decode()
    assert "testing-secret" not in html


def test_successful_test_never_shows_the_secret_key(personas, world):
    html = login(personas.editor).post(_url(world.config), follow=True).content.decode()
    assert "testing-secret" not in html


# --- the button --------------------------------------------------------------------------------


def test_editor_sees_the_test_connection_button(personas, offline_config):
    html = _page(login(personas.editor), offline_config)
    assert f'action="{_url(offline_config)}"' in html
    assert ">Test connection</button>" in html


def test_viewer_sees_no_test_connection_button(personas, offline_config):
    html = _page(login(personas.viewer), offline_config)
    assert _url(offline_config) not in html
    assert ">Test connection</button>" not in html


# --- refused personas --------------------------------------------------------------------------


@pytest.fixture
def no_aws():
    with mock.patch("rotation.aws.test_connection") as called:
        yield called


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
