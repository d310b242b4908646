"""Sessions have an absolute lifetime (SESSION_MAX_HOURS after sign-in), besides the idle
timeout: a session in constant use still ends, with a message, and the person signs in again."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.messages import get_messages
from django.contrib.sessions.models import Session
from django.test import Client

from tests.conftest import PASSWORD, login
from tests.security.test_deploy_check import run_manage
from vault.security import SIGNED_IN_AT

pytestmark = pytest.mark.django_db

HOUR = 3600


@pytest.fixture(autouse=True)
def twelve_hours(settings):
    settings.SESSION_MAX_HOURS = 12


def signed_in_hours_ago(client: Client, hours: float) -> None:
    session = client.session
    session[SIGNED_IN_AT] = int(time.time() - hours * HOUR)
    session.save()


def test_signing_in_records_the_time(personas):
    client = Client()
    client.post("/login/", {"username": "viewer", "password": PASSWORD})
    assert abs(client.session[SIGNED_IN_AT] - time.time()) < 60


def test_a_session_within_its_lifetime_stays_signed_in(personas):
    client = login(personas.viewer)
    signed_in_hours_ago(client, 11.9)
    assert client.get("/").status_code == 200


def test_a_session_past_its_lifetime_is_signed_out_with_a_message(personas):
    client = login(personas.viewer)
    signed_in_hours_ago(client, 12.1)
    page = f"/folders/{personas.folder.uid}/"
    response = client.get(page)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert (location.path, parse_qs(location.query)) == ("/login/", {"next": [page]})
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Your session ended: sessions last at most 12 hours after signing in. Sign in again."
    ]


def test_an_ended_session_is_gone_from_the_database(personas):
    client = login(personas.viewer)
    key = client.session.session_key
    signed_in_hours_ago(client, 13)
    client.get("/")
    assert not Session.objects.filter(session_key=key).exists()
    assert client.get("/").status_code == 302  # still signed out on the next request


def test_activity_does_not_extend_the_lifetime(personas):
    client = login(personas.viewer)
    signed_in_hours_ago(client, 11.99)
    assert client.get("/").status_code == 200
    session = client.session
    session[SIGNED_IN_AT] -= 60  # the same session, a minute later
    session.save()
    assert client.get("/").status_code == 302


def test_a_script_whose_session_ended_gets_401_json_and_nothing_is_revealed(personas, record):
    client = login(personas.viewer)
    signed_in_hours_ago(client, 13)
    response = client.post(f"/records/{record.uid}/reveal/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert response.json()["error"] == "session_expired"
    assert "password" not in response.json()


def test_a_session_from_before_the_limit_existed_is_counted_from_its_next_request(personas):
    client = login(personas.viewer)
    session = client.session
    del session[SIGNED_IN_AT]
    session.save()
    assert client.get("/").status_code == 200
    assert abs(client.session[SIGNED_IN_AT] - time.time()) < 60


def _max_hours(tmp_path, **variables: str) -> str:
    show = "from django.conf import settings; print(settings.SESSION_MAX_HOURS)"
    result = run_manage(tmp_path, "shell", "-c", show, **variables)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_the_lifetime_is_twelve_hours_unless_the_environment_says_otherwise(tmp_path):
    assert _max_hours(tmp_path) == "12"
    assert _max_hours(tmp_path, SESSION_MAX_HOURS="2") == "2"


def test_a_lifetime_below_one_hour_fails_the_check(tmp_path):
    result = run_manage(tmp_path, "check", SESSION_MAX_HOURS="0")
    assert result.returncode != 0
    assert "vault.E005" in result.stderr and "SESSION_MAX_HOURS" in result.stderr
