"""Sessions end after SESSION_IDLE_MINUTES without a request; revealing a password or changing
rotation settings more than VAULT_REAUTH_MINUTES after the last password entry asks for the
password again."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from rotation.models import RotationSettings
from tests.conftest import PASSWORD, login
from tests.security.conftest import CURRENT_PASSWORD, OLDER_PASSWORD
from tests.security.test_access_matrix import post_data
from vault.models import AuditEvent
from vault.security import PASSWORD_CONFIRMED_AT

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def stale(client: Client, minutes: float = 6) -> Client:
    """As if the password was last entered `minutes` ago."""
    session = client.session
    session[PASSWORD_CONFIRMED_AT] = int(time.time() - minutes * 60)
    session.save()
    return client


def reveals() -> int:
    return AuditEvent.objects.filter(action="password.revealed").count()


# --- idle sessions -----------------------------------------------------------------------------


def test_idle_limit_is_thirty_minutes():
    assert settings.SESSION_COOKIE_AGE == 30 * 60


def test_a_request_a_minute_later_extends_the_idle_limit(personas):
    client = login(personas.editor)
    with _at(20):
        assert client.get("/").status_code == 200
    with _at(45):  # 25 idle minutes after the request at 20
        assert client.get("/").status_code == 200


def test_requests_within_a_minute_do_not_write_the_session(personas):
    from django.contrib.sessions.models import Session

    client = login(personas.editor)
    client.get("/")
    expiry = Session.objects.get().expire_date
    with _at(0.5):
        client.get("/")
    assert Session.objects.get().expire_date == expiry


def _at(minutes: float):
    later = timezone.now() + timedelta(minutes=minutes)
    return mock.patch("django.utils.timezone.now", return_value=later)


def test_session_ends_after_thirty_idle_minutes(personas):
    client = login(personas.editor)
    with _at(31):
        response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_session_survives_twenty_nine_idle_minutes(personas):
    client = login(personas.editor)
    with _at(29):
        assert client.get("/").status_code == 200


def test_each_request_restarts_the_idle_clock(personas):
    client = login(personas.editor)
    with _at(29):
        client.get("/")
    with _at(58):
        assert client.get("/").status_code == 200


def test_session_cookie_lasts_the_idle_time(personas):
    response = Client().post("/login/", {"username": "editor", "password": PASSWORD})
    assert response.cookies["sessionid"]["max-age"] == 30 * 60


# --- reveal asks for the password again --------------------------------------------------------


def test_reveal_right_after_signing_in_needs_no_confirmation(vault_world):
    client = Client()
    client.post("/login/", {"username": "viewer", "password": PASSWORD})
    response = client.post(f"/records/{vault_world.record.uid}/reveal/", follow=True)
    assert response.redirect_chain == [(f"/records/{vault_world.record.uid}/", 302)]
    assert CURRENT_PASSWORD in response.content.decode()


def test_reveal_five_minutes_after_the_password_still_works(vault_world):
    client = stale(vault_world.client("viewer"), minutes=4.5)
    response = client.post(f"/records/{vault_world.record.uid}/reveal/")
    assert response["Location"] == f"/records/{vault_world.record.uid}/"  # revealed


def test_late_reveal_sends_to_the_confirm_page_and_reveals_nothing(vault_world):
    record = vault_world.record
    client = stale(vault_world.client("viewer"))
    response = client.post(f"/records/{record.uid}/reveal/")
    assert response.status_code == 302
    assert response["Location"] == f"/account/confirm/?next=%2Frecords%2F{record.uid}%2F"
    assert reveals() == 0


def test_late_copy_gets_401_json_naming_the_confirm_page(vault_world):
    record = vault_world.record
    client = stale(vault_world.client("viewer"))
    response = client.post(f"/records/{record.uid}/reveal/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "password_confirmation_required"
    assert body["confirm_url"] == f"/account/confirm/?next=%2Frecords%2F{record.uid}%2F"
    assert "password" not in body
    assert reveals() == 0


def test_late_history_reveal_asks_too(vault_world):
    record, version = vault_world.record, vault_world.version
    client = stale(vault_world.client("editor"))
    response = client.post(f"/records/{record.uid}/versions/{version.uid}/reveal/")
    assert response["Location"].startswith("/account/confirm/")
    assert OLDER_PASSWORD not in response.content.decode()
    assert reveals() == 0


def test_confirming_the_password_goes_back_and_reveals_again(vault_world):
    record = vault_world.record
    client = stale(vault_world.client("viewer"))
    page = client.get(f"/account/confirm/?next=/records/{record.uid}/")
    assert page.status_code == 200
    response = client.post(
        "/account/confirm/", {"password": PASSWORD, "next": f"/records/{record.uid}/"}
    )
    assert response["Location"] == f"/records/{record.uid}/"
    response = client.post(f"/records/{record.uid}/reveal/", follow=True)
    assert CURRENT_PASSWORD in response.content.decode()


def test_wrong_password_on_the_confirm_page_is_a_field_error(vault_world):
    record = vault_world.record
    client = stale(vault_world.client("viewer"))
    response = client.post("/account/confirm/", {"password": "not-mine"})
    assert response.status_code == 200
    assert "That is not your password." in response.content.decode()
    response = client.post(f"/records/{record.uid}/reveal/")
    assert response["Location"].startswith("/account/confirm/")


def test_confirm_page_never_redirects_to_another_site(vault_world):
    client = stale(vault_world.client("viewer"))
    response = client.post(
        "/account/confirm/", {"password": PASSWORD, "next": "https://evil.example/x"}
    )
    assert response["Location"] == "/account/"


# --- rotation settings ask for the password again ----------------------------------------------


def _settings_row(world) -> list:
    return list(RotationSettings.objects.filter(pam_user=world.record).values())


def test_late_rotation_settings_change_is_refused_until_confirmed(vault_world):
    record = vault_world.record
    before = _settings_row(vault_world)
    client = stale(vault_world.client("editor"))
    url = f"/records/{record.uid}/rotation/"
    response = client.post(url, post_data("rotation_settings", vault_world))
    assert response["Location"] == f"/account/confirm/?next=%2Frecords%2F{record.uid}%2Frotation%2F"
    assert _settings_row(vault_world) == before


def test_late_rotation_settings_page_asks_before_the_form_is_filled(vault_world):
    client = stale(vault_world.client("editor"))
    response = client.get(f"/records/{vault_world.record.uid}/rotation/")
    assert response["Location"].startswith("/account/confirm/")


def test_recent_password_lets_rotation_settings_change(vault_world):
    client = vault_world.client("editor")
    url = f"/records/{vault_world.record.uid}/rotation/"
    response = client.post(url, post_data("rotation_settings", vault_world))
    assert response.status_code == 302
    assert RotationSettings.objects.get(pam_user=vault_world.record).length == 40


def test_copy_button_script_follows_the_confirm_url():
    script = (ROOT / "static" / "js" / "vault.js").read_text()
    assert "response.status === 401" in script and "data.confirm_url" in script


@pytest.mark.parametrize("next_url", ["home", "evil.example", "//evil.example/", "÷Hÿ"])
def test_confirm_page_takes_only_a_path_on_this_site_as_next(vault_world, next_url):
    # A bare word would have been taken by redirect() for a view name: a server error.
    client = stale(vault_world.client("viewer"))
    client.raise_request_exception = True
    response = client.post("/account/confirm/", {"password": PASSWORD, "next": next_url})
    assert response["Location"] == "/account/"
