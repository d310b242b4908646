"""A gateway reports its version (vault.__version__) with each heartbeat; the Gateways page and
`pam gateway list` show it, and say when it is not the web app's."""

from __future__ import annotations

import json

import pytest

import vault
from rotation import gateways
from tests.conftest import login, make_configuration
from tests.rotation.test_views_gateways import gateway_section, page
from vault.cli import call_pam
from vault.models import Gateway

pytestmark = pytest.mark.django_db


def test_heartbeat_records_the_gateways_version(personas):
    assert personas.gateway.version == ""
    gateways.gateway_heartbeat(gateway_name="default")
    personas.gateway.refresh_from_db()
    assert personas.gateway.version == vault.__version__ != ""


@pytest.fixture
def member(personas):
    """The editor, whose folder has a configuration on the gateway `default`."""
    make_configuration(personas.folder, personas.gateway)
    return login(personas.editor)


def test_gateways_page_shows_the_reported_version(personas, member):
    client = member
    assert "not reported yet" in gateway_section(page(client), "default")
    gateways.gateway_heartbeat(gateway_name="default")
    section = gateway_section(page(client), "default")
    assert f'<dd class="gateway-version">{vault.__version__}' in section
    assert "not the web app" not in section


def test_gateways_page_says_when_a_gateway_runs_other_code(personas, member):
    gateways.gateway_heartbeat(gateway_name="default")
    Gateway.objects.filter(pk=personas.gateway.pk).update(version="0.0.1-old")
    section = gateway_section(page(member), "default")
    assert "0.0.1-old" in section
    assert f"not the web app's {vault.__version__}" in section


def test_pam_gateway_list_reports_the_version(personas):
    gateways.gateway_heartbeat(gateway_name="default")
    code, out, err = call_pam("gateway", "list", "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)["gateways"]
    assert row["gateway_version"] == vault.__version__
    code, out, err = call_pam("gateway", "list")
    assert code == 0, err
    assert "VERSION" in out and vault.__version__ in out
