"""Revealing the current password and a history version: POST only, audited, JSON for fetch."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from tests.conftest import login
from vault import services
from vault.models import AuditEvent

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


def test_reveal_without_json_renders_the_page_with_the_password(personas, record):
    response = login(personas.viewer).post(f"/records/{record.uid}/reveal/")
    assert response.status_code == 200
    assert f'id="password-value">{PASSWORD}<' in response.content.decode()


def test_reveal_says_it_was_audited(personas, record):
    response = login(personas.viewer).post(f"/records/{record.uid}/reveal/")
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == ["Password revealed. This was recorded in the audit log."]


def test_reveal_writes_an_audit_event_without_the_secret(personas, record):
    login(personas.viewer).post(f"/records/{record.uid}/reveal/", **JSON)
    event = AuditEvent.objects.get(action="password.revealed")
    assert (event.actor, event.object_uid) == (personas.viewer, record.uid)
    assert event.source_ip == "127.0.0.1"
    assert PASSWORD not in str(event.details)


def test_reveal_rejects_get(personas, record):
    assert login(personas.viewer).get(f"/records/{record.uid}/reveal/").status_code == 405
    assert _reveals() == 0


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


def test_history_reveal_renders_the_page_with_that_version(personas, record):
    url = f"/records/{record.uid}/versions/{_version(record).uid}/reveal/"
    html = login(personas.editor).post(url).content.decode()
    assert f'<code class="secret revealed">{PASSWORD}</code>' in html


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


def test_history_reveal_rejects_get(personas, record):
    url = f"/records/{record.uid}/versions/{_version(record).uid}/reveal/"
    assert login(personas.editor).get(url).status_code == 405


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
