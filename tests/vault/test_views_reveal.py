"""Revealing the current password and a history version: POST, audited, JSON for fetch; the page
is post/redirect/get (the record page shows what was revealed once, from the session, sealed),
and a GET of a reveal address is a page that says how to reveal."""

import json

import pytest
from django.contrib.messages import get_messages
from django.contrib.sessions.models import Session
from django.test import Client

from tests.conftest import login
from vault import crypto, services
from vault.models import AuditEvent, PamUser, PasswordVersion

PASSWORD = "Current-Passw0rd!"
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def record(personas):
    return services.pam_user_create(
        folder=personas.folder,
        title="AWS user: Alice",
        login="Alice",
        distinguished_name="arn:aws:iam::123456789012:user/Alice",
        password=PASSWORD,
        actor=personas.editor,
    )


def _reveals() -> int:
    return AuditEvent.objects.filter(action="password.revealed").count()


def test_reveal_with_accept_json_returns_the_password(personas, record):
    response = login(personas.viewer).post(f"/records/{record.uid}/reveal/", **JSON)
    assert response.status_code == 200
    assert response.json() == {"password": PASSWORD}


def test_reveal_is_not_cached(personas, record):
    response = login(personas.viewer).post(f"/records/{record.uid}/reveal/", **JSON)
    assert "no-store" in response["Cache-Control"]


def test_reveal_without_json_redirects_to_the_record_page_which_shows_the_password(
    personas, record
):
    client = login(personas.viewer)
    response = client.post(f"/records/{record.uid}/reveal/")
    assert response.status_code == 302
    assert response["Location"] == f"/records/{record.uid}/"
    assert PASSWORD not in response.content.decode()
    page = client.get(response["Location"])
    assert f'id="password-value">{PASSWORD}<' in page.content.decode()


def test_the_revealed_page_is_not_cached_and_shows_the_password_once(personas, record):
    client = login(personas.viewer)
    client.post(f"/records/{record.uid}/reveal/")
    shown = client.get(f"/records/{record.uid}/")
    assert "no-store" in shown["Cache-Control"]
    # Back, Forward or a reload asks again: the password is masked, and no reveal is repeated.
    again = client.get(f"/records/{record.uid}/").content.decode()
    assert PASSWORD not in again
    assert 'id="password-value" aria-label="Password hidden"' in again
    assert _reveals() == 1


def test_the_revealed_password_is_kept_for_the_next_page_only_for_a_minute(
    personas, record, monkeypatch
):
    import time

    client = login(personas.viewer)
    client.post(f"/records/{record.uid}/reveal/")
    later = time.time() + 61
    monkeypatch.setattr("vault.revealed.time.time", lambda: later)
    assert PASSWORD not in client.get(f"/records/{record.uid}/").content.decode()


def test_the_revealed_password_waits_in_the_session_only_sealed(personas, record):
    client = login(personas.viewer)
    client.post(f"/records/{record.uid}/reveal/")
    for row in Session.objects.all():
        assert PASSWORD not in json.dumps(row.get_decoded())


def test_another_records_page_does_not_show_or_consume_the_revealed_password(personas, record):
    other = services.pam_user_create(
        folder=personas.folder,
        title="AWS user: Other",
        login="Other",
        distinguished_name="arn:aws:iam::123456789012:user/Other",
        password="Other-Passw0rd!",
    )
    client = login(personas.viewer)
    client.post(f"/records/{record.uid}/reveal/")
    assert PASSWORD not in client.get(f"/records/{other.uid}/").content.decode()
    assert PASSWORD in client.get(f"/records/{record.uid}/").content.decode()


def test_reveal_says_it_was_audited(personas, record):
    response = login(personas.viewer).post(f"/records/{record.uid}/reveal/", follow=True)
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == ["Password revealed. This was recorded in the audit log."]


def test_reveal_writes_an_audit_event_without_the_secret(personas, record):
    login(personas.viewer).post(f"/records/{record.uid}/reveal/", **JSON)
    event = AuditEvent.objects.get(action="password.revealed")
    assert (event.actor, event.object_uid) == (personas.viewer, record.uid)
    assert event.source_ip == "127.0.0.1"
    assert PASSWORD not in str(event.details)


def test_get_of_the_reveal_address_is_a_page_that_says_how_to_reveal(personas, record):
    response = login(personas.viewer).get(f"/records/{record.uid}/reveal/")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    html = response.content.decode()
    assert "Reveal from the record page" in html
    assert f'href="/records/{record.uid}/"' in html
    assert f'action="/records/{record.uid}/reveal/"' in html  # a Reveal button, a POST
    assert PASSWORD not in html
    assert _reveals() == 0


def test_get_of_the_reveal_address_by_an_outsider_is_404(personas, record):
    assert login(personas.outsider).get(f"/records/{record.uid}/reveal/").status_code == 404


def test_reveal_by_outsider_is_404_and_not_audited(personas, record):
    response = login(personas.outsider).post(f"/records/{record.uid}/reveal/", **JSON)
    assert response.status_code == 404
    assert PASSWORD not in response.content.decode()
    assert _reveals() == 0


def test_reveal_by_anonymous_redirects_to_login(personas, record):
    response = Client().post(f"/records/{record.uid}/reveal/", **JSON)
    assert response.status_code == 302
    assert _reveals() == 0


def _version(record):
    return record.versions.get()


def test_editor_reveals_a_history_version_as_json(personas, record):
    url = f"/records/{record.uid}/versions/{_version(record).uid}/reveal/"
    response = login(personas.editor).post(url, **JSON)
    assert response.json() == {"password": PASSWORD}


def test_history_reveal_redirects_to_the_record_page_with_that_version(personas, record):
    url = f"/records/{record.uid}/versions/{_version(record).uid}/reveal/"
    client = login(personas.editor)
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"] == f"/records/{record.uid}/#password-history"
    html = client.get(f"/records/{record.uid}/").content.decode()
    version = _version(record).uid
    assert f'<code class="secret revealed" data-version="{version}">{PASSWORD}</code>' in html
    assert PASSWORD not in client.get(f"/records/{record.uid}/").content.decode()


def test_history_reveal_is_audited_with_the_version(personas, record):
    version = _version(record)
    login(personas.editor).post(f"/records/{record.uid}/versions/{version.uid}/reveal/", **JSON)
    event = AuditEvent.objects.get(action="password.revealed")
    assert event.details == {"what": "history", "version": version.uid}


def test_history_reveal_by_viewer_is_403_and_not_audited(personas, record):
    url = f"/records/{record.uid}/versions/{_version(record).uid}/reveal/"
    response = login(personas.viewer).post(url, **JSON)
    assert response.status_code == 403
    assert PASSWORD not in response.content.decode()
    assert _reveals() == 0


def test_history_reveal_by_outsider_is_404(personas, record):
    url = f"/records/{record.uid}/versions/{_version(record).uid}/reveal/"
    assert login(personas.outsider).post(url).status_code == 404
    assert _reveals() == 0


def test_history_reveal_by_anonymous_redirects_to_login(personas, record):
    url = f"/records/{record.uid}/versions/{_version(record).uid}/reveal/"
    assert Client().post(url).status_code == 302
    assert _reveals() == 0


def test_get_of_a_history_reveal_address_is_a_page_that_says_how_to_reveal(personas, record):
    url = f"/records/{record.uid}/versions/{_version(record).uid}/reveal/"
    response = login(personas.editor).get(url)
    assert response.status_code == 405
    assert f'action="{url}"' in response.content.decode()
    assert login(personas.viewer).get(url).status_code == 403  # as for a POST
    assert _reveals() == 0


def test_history_version_of_another_record_is_404(personas, record):
    other = services.pam_user_create(
        folder=personas.folder,
        title="Other",
        login="Bob",
        distinguished_name="arn:aws:iam::123456789012:user/Bob",
        password="Other-Passw0rd!",
    )
    url = f"/records/{record.uid}/versions/{_version(other).uid}/reveal/"
    assert login(personas.editor).post(url).status_code == 404
    assert _reveals() == 0


def test_editor_reveals_the_current_password(personas, record):
    response = login(personas.editor).post(f"/records/{record.uid}/reveal/", **JSON)
    assert response.json() == {"password": PASSWORD}
    assert AuditEvent.objects.get(action="password.revealed").actor == personas.editor


def test_outsider_gets_404_before_any_password_confirmation(personas, record):
    from django.test import Client

    client = Client()
    client.force_login(personas.outsider)  # no recent password entry in this session
    response = client.post(f"/records/{record.uid}/reveal/")
    assert response.status_code == 404


# --- a stored password that cannot be decrypted ------------------------------------------------


def _tamper(blob: str) -> str:
    """The same blob with one bit of its ciphertext flipped: AES-GCM refuses it."""
    import base64

    version, kid, body = blob.split(":", 2)
    payload = bytearray(base64.urlsafe_b64decode(body))
    payload[-1] ^= 1
    return f"{version}:{kid}:{base64.urlsafe_b64encode(bytes(payload)).decode()}"


def _corrupt(model, row, how: str, settings) -> None:
    if how == "tampered":
        model.objects.filter(pk=row.pk).update(password_enc=_tamper(row.password_enc))
    else:  # the vault now runs with another key than the one the password was sealed with
        settings.VAULT_ENCRYPTION_KEYS = [crypto.generate_key()]


UNDECRYPTABLE = "The stored password cannot be decrypted, so it was not revealed."


@pytest.mark.parametrize("how", ["tampered", "wrong key"])
def test_reveal_of_an_undecryptable_password_shows_an_error_on_the_record_page(
    personas, record, settings, how
):
    _corrupt(PamUser, record, how, settings)
    response = login(personas.viewer).post(f"/records/{record.uid}/reveal/")
    assert response.status_code == 409
    html = response.content.decode()
    assert UNDECRYPTABLE in html
    assert record.title in html  # the record page, not an error page
    assert 'id="password-value" aria-label="Password hidden"' in html  # still masked


def test_copy_of_an_undecryptable_password_gets_a_json_error(personas, record, settings):
    _corrupt(PamUser, record, "tampered", settings)
    response = login(personas.viewer).post(f"/records/{record.uid}/reveal/", **JSON)
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "reveal_failed" and "password" not in body
    assert body["message"].startswith(UNDECRYPTABLE)


def test_failed_reveal_is_audited_as_failed_and_not_as_revealed(personas, record, settings):
    _corrupt(PamUser, record, "tampered", settings)
    login(personas.viewer).post(f"/records/{record.uid}/reveal/")
    event = AuditEvent.objects.get(action="password.reveal_failed")
    assert (event.actor, event.object_uid) == (personas.viewer, record.uid)
    assert event.details["what"] == "password"
    assert "failed authentication" in event.details["error"]
    assert _reveals() == 0


@pytest.mark.parametrize("how", ["tampered", "wrong key"])
def test_history_reveal_of_an_undecryptable_version_shows_an_error(personas, record, settings, how):
    version = _version(record)
    _corrupt(PasswordVersion, version, how, settings)
    url = f"/records/{record.uid}/versions/{version.uid}/reveal/"
    response = login(personas.editor).post(url)
    assert response.status_code == 409
    assert UNDECRYPTABLE in response.content.decode()
    event = AuditEvent.objects.get(action="password.reveal_failed")
    assert event.details["what"] == "history" and event.details["version"] == version.uid
    assert _reveals() == 0
