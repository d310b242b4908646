"""Deleting a PAM User: POST only, needs manage_records."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from tests.conftest import login, make_pam_user
from vault.models import AuditEvent, PamUser


@pytest.fixture
def record(personas):
    return make_pam_user(personas.folder, "Alice", password="Old-Passw0rd!")


def _url(record) -> str:
    return f"/records/{record.uid}/delete/"


def test_editor_with_manage_records_deletes_and_returns_to_the_folder(personas, record):
    response = login(personas.editor).post(_url(record))
    assert response.url == f"/folders/{personas.folder.uid}/"
    assert not PamUser.objects.filter(pk=record.pk).exists()
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Deleted the record “AWS user: Alice”."
    ]


def test_delete_is_audited(personas, record):
    login(personas.editor).post(_url(record))
    assert AuditEvent.objects.filter(action="record.deleted", object_uid=record.uid).exists()


def test_delete_rejects_get(personas, record):
    assert login(personas.editor).get(_url(record)).status_code == 405
    assert PamUser.objects.filter(pk=record.pk).exists()


def test_viewer_forged_delete_is_403_and_keeps_the_record(personas, record):
    assert login(personas.viewer).post(_url(record)).status_code == 403
    assert PamUser.objects.filter(pk=record.pk).exists()


def test_outsider_delete_is_404_and_keeps_the_record(personas, record):
    assert login(personas.outsider).post(_url(record)).status_code == 404
    assert PamUser.objects.filter(pk=record.pk).exists()


def test_anonymous_delete_redirects_and_keeps_the_record(personas, record):
    assert Client().post(_url(record)).status_code == 302
    assert PamUser.objects.filter(pk=record.pk).exists()
