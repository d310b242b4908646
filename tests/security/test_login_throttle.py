"""Sign-in throttling (django-axes): five wrong passwords lock a username from an address for
15 minutes, say so without telling whether the username exists, and are audited."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client

from tests.conftest import PASSWORD, login
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db

ADDRESS = "10.1.2.3"


def _attempt(username: str, password: str, address: str = ADDRESS, client=None):
    client = client or Client()
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def _fail(username: str, times: int, address: str = ADDRESS):
    response = None
    for _ in range(times):
        response = _attempt(username, "wrong-password", address)
    return response


def _signed_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def test_settings_lock_after_five_failures_for_fifteen_minutes_per_username_and_address():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=15)
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


def test_four_failures_still_let_the_right_password_in(personas):
    _fail("editor", 4)
    client = Client()
    response = _attempt("editor", PASSWORD, client=client)
    assert response.status_code == 302
    assert _signed_in(client)


def test_fifth_failure_locks_with_a_429_page_that_says_so(personas):
    response = _fail("editor", 5)
    assert response.status_code == 429
    html = response.content.decode()
    assert "locked for 15 minutes" in html
    assert 'id="locked-out"' in html


def test_locked_pair_is_refused_even_with_the_right_password(personas):
    _fail("editor", 5)
    client = Client()
    response = _attempt("editor", PASSWORD, client=client)
    assert response.status_code == 429
    assert not _signed_in(client)


def test_the_same_username_from_another_address_can_still_sign_in(personas):
    _fail("editor", 5)
    client = Client()
    _attempt("editor", PASSWORD, address="10.9.9.9", client=client)
    assert _signed_in(client)


def test_another_username_from_the_locked_address_can_still_sign_in(personas):
    _fail("editor", 5)
    client = Client()
    _attempt("viewer", PASSWORD, client=client)
    assert _signed_in(client)


def test_lock_ends_after_the_cool_off_time(personas):
    _fail("editor", 5)
    attempt = AccessAttempt.objects.get()
    AccessAttempt.objects.update(attempt_time=attempt.attempt_time - timedelta(minutes=16))
    client = Client()
    _attempt("editor", PASSWORD, client=client)
    assert _signed_in(client)


def _page_text(response, username: str) -> str:
    html = response.content.decode()
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)
    return html.replace(f'value="{username}"', 'value="USERNAME"')


def test_lockout_page_is_the_same_for_a_username_that_does_not_exist(personas):
    existing = _fail("editor", 5)
    unknown = _fail("no-such-user", 5)
    assert existing.status_code == unknown.status_code == 429
    assert _page_text(existing, "editor") == _page_text(unknown, "no-such-user")


def test_wrong_password_page_is_the_same_for_a_username_that_does_not_exist(personas):
    existing = _attempt("editor", "wrong-password")
    unknown = _attempt("no-such-user", "wrong-password")
    assert existing.status_code == unknown.status_code == 200
    assert _page_text(existing, "editor") == _page_text(unknown, "no-such-user")


def test_lockout_is_an_audit_event_naming_username_and_address(personas):
    _fail("editor", 5)
    event = AuditEvent.objects.get(action="login.locked_out")
    assert event.details["username"] == "editor"
    assert event.source_ip == ADDRESS
    assert event.actor is None


def test_no_audit_event_before_the_limit(personas):
    _fail("editor", 4)
    assert not AuditEvent.objects.filter(action="login.locked_out").exists()


def test_wrong_passwords_on_the_confirm_page_count_towards_the_lock(personas):
    client = login(personas.editor)
    for _ in range(5):
        response = client.post(
            "/account/confirm/", {"password": "wrong-password"}, REMOTE_ADDR=ADDRESS
        )
    assert response.status_code == 429
    assert "locked for 15 minutes" in response.content.decode()
    assert AuditEvent.objects.filter(action="login.locked_out").exists()
    # ...and the sign-in page refuses that username from that address too.
    assert _attempt("editor", PASSWORD).status_code == 429


def test_password_validators_are_on():
    # (Argon2 as the first hasher is checked on production settings in test_deploy_check.py.)
    names = [v["NAME"].rsplit(".", 1)[-1] for v in settings.AUTH_PASSWORD_VALIDATORS]
    assert names == [
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    ]


def test_an_overlong_username_is_a_field_error_that_reaches_no_attempt_log(db):
    # Django's form left the length unchecked; django-axes' log (255 characters) broke on it.
    response = _attempt("A" * 5000, "wrong-password")
    assert response.status_code == 200
    assert "A username has at most 150 characters." in response.content.decode()
    assert not AccessAttempt.objects.exists()
