"""A PAM User's access key on the web: entered on the record's form (the secret write-only, both
or neither), kept in the history (kind access_key), and shown on the record page with the
secret masked behind Reveal and Copy (POST only, audited)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import login
from vault import services
from vault.models import AuditEvent, PamUser, PasswordVersion

pytestmark = pytest.mark.django_db

ARN = "arn:aws:iam::123456789012:user/Alice"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
NEW_KEY_ID = "AKIAI44QH8DHBEXAMPLE"
NEW_SECRET = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def record(personas):
    return services.pam_user_create(
        folder=personas.folder,
        title="AWS user: Alice",
        login="Alice",
        distinguished_name=ARN,
        password="Old-Passw0rd!",
        access_key=(KEY_ID, SECRET),
    )


@pytest.fixture
def bare(personas):
    """A record without an access key."""
    return services.pam_user_create(
        folder=personas.folder, title="AWS user: Bob", login="Bob",
        distinguished_name="arn:aws:iam::123456789012:user/Bob",
    )  # fmt: skip


def _edit_data(**changes) -> dict:
    return {
        "title": "AWS user: Alice",
        "login": "Alice",
        "distinguished_name": ARN,
        "password": "",
        "access_key_id": KEY_ID,
        "access_secret_key": "",
        "managed": "on",
        **changes,
    }


def _state(record) -> tuple:
    record = PamUser.objects.get(pk=record.pk)
    return (
        record.access_key_id,
        record.access_secret_key_enc,
        list(PasswordVersion.objects.filter(pam_user=record).values_list("uid", flat=True)),
        AuditEvent.objects.count(),
    )


def _key_versions(record) -> list[PasswordVersion]:
    return list(PasswordVersion.objects.filter(pam_user=record, kind="access_key"))


# --- the service -------------------------------------------------------------------------------


def test_creating_with_an_access_key_keeps_it_encrypted_with_history(record):
    assert record.access_key_id == KEY_ID
    assert SECRET not in record.access_secret_key_enc
    assert record.get_secret("access_secret_key") == SECRET
    [version] = _key_versions(record)
    assert version.access_key_id == KEY_ID and version.get_secret("password") == SECRET
    assert version.reason == "created"


def test_pam_user_set_access_key_adds_a_history_entry(bare, personas):
    services.pam_user_set_access_key(
        record=bare, access_key_id=KEY_ID, secret=SECRET, set_by=personas.editor,
        source="rotation", reason="rotated",
    )  # fmt: skip
    bare.save()
    bare.refresh_from_db()
    assert bare.get_secret("access_secret_key") == SECRET
    [version] = _key_versions(bare)
    assert (version.source, version.set_by, version.access_key_id) == (
        "rotation",
        personas.editor,
        KEY_ID,
    )


# --- the form ----------------------------------------------------------------------------------


def test_the_edit_form_shows_the_key_id_but_never_the_secret(personas, record):
    html = login(personas.editor).get(f"/records/{record.uid}/edit/").content.decode()
    assert f'value="{KEY_ID}"' in html
    assert SECRET not in html
    assert "Leave blank to keep the current secret." in html


def test_a_blank_secret_with_the_same_key_id_changes_nothing(personas, record):
    before = _state(record)
    response = login(personas.editor).post(f"/records/{record.uid}/edit/", _edit_data())
    assert response.status_code == 302
    after = _state(record)
    assert after[:3] == before[:3]  # an audit event for "no fields", nothing else


def test_a_new_access_key_is_stored_with_history_and_audited_without_its_secret(personas, record):
    data = _edit_data(access_key_id=NEW_KEY_ID, access_secret_key=NEW_SECRET)
    response = login(personas.editor).post(f"/records/{record.uid}/edit/", data)
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.access_key_id == NEW_KEY_ID
    assert record.get_secret("access_secret_key") == NEW_SECRET
    assert record.get_secret("password") == "Old-Passw0rd!"
    newest = _key_versions(record)[0]
    assert newest.access_key_id == NEW_KEY_ID and newest.set_by == personas.editor
    assert newest.reason == "edited by a person"
    event = AuditEvent.objects.filter(action="record.updated").latest("id")
    assert event.details == {"fields": ["access_key"], "access_key_id": NEW_KEY_ID}
    assert NEW_SECRET not in str(event.details)


def test_a_new_secret_for_the_same_key_is_stored(personas, record):
    data = _edit_data(access_secret_key=NEW_SECRET)
    login(personas.editor).post(f"/records/{record.uid}/edit/", data)
    record.refresh_from_db()
    assert record.get_secret("access_secret_key") == NEW_SECRET
    assert len(_key_versions(record)) == 2


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"access_key_id": NEW_KEY_ID}, "access_secret_key", "Give the secret access key"),
        ({"access_key_id": "", "access_secret_key": NEW_SECRET}, "access_key_id", "Give the"),
        ({"access_key_id": "USE_INSTANCE_ROLE", "access_secret_key": NEW_SECRET},
         "access_key_id", "Not an access key ID"),
        ({"access_key_id": "akia-lower", "access_secret_key": NEW_SECRET},
         "access_key_id", "Not an access key ID"),
        ({"access_secret_key": "tab\there"}, "access_secret_key", "printable ASCII"),
        ({"access_secret_key": "x" * 129}, "access_secret_key", "at most 128"),
    ],
)  # fmt: skip
def test_a_bad_access_key_is_an_error_on_its_field_and_changes_nothing(
    personas, record, changes, field, words
):
    before = _state(record)
    response = login(personas.editor).post(f"/records/{record.uid}/edit/", _edit_data(**changes))
    assert response.status_code == 200
    assert words in " ".join(response.context["form"].errors[field])
    assert _state(record) == before
    assert NEW_SECRET not in response.content.decode()  # write-only, even when refused


def test_emptying_the_key_id_removes_the_access_key(personas, record):
    data = _edit_data(access_key_id="")
    login(personas.editor).post(f"/records/{record.uid}/edit/", data)
    record.refresh_from_db()
    assert record.access_key_id == "" and not record.has_secret("access_secret_key")
    assert len(_key_versions(record)) == 1  # the old key stays in the history


def test_a_new_record_may_carry_an_access_key(personas):
    data = {
        "title": "AWS user: Carol",
        "login": "Carol",
        "distinguished_name": "arn:aws:iam::123456789012:user/Carol",
        "password": "",
        "access_key_id": KEY_ID,
        "access_secret_key": SECRET,
        "managed": "on",
    }
    response = login(personas.editor).post(f"/folders/{personas.folder.uid}/records/new/", data)
    assert response.status_code == 302
    created = PamUser.objects.get(title="AWS user: Carol")
    assert created.get_secret("access_secret_key") == SECRET
    assert len(_key_versions(created)) == 1


def test_a_new_record_with_a_key_id_and_no_secret_is_refused(personas):
    data = {
        "title": "AWS user: Carol",
        "login": "Carol",
        "distinguished_name": "arn:aws:iam::123456789012:user/Carol",
        "access_key_id": KEY_ID,
        "managed": "on",
    }
    response = login(personas.editor).post(f"/folders/{personas.folder.uid}/records/new/", data)
    assert response.status_code == 200
    assert "access_secret_key" in response.context["form"].errors
    assert not PamUser.objects.filter(title="AWS user: Carol").exists()


def test_viewer_cannot_set_an_access_key(personas, record):
    before = _state(record)
    data = _edit_data(access_key_id=NEW_KEY_ID, access_secret_key=NEW_SECRET)
    assert login(personas.viewer).post(f"/records/{record.uid}/edit/", data).status_code == 403
    assert login(personas.outsider).post(f"/records/{record.uid}/edit/", data).status_code == 404
    assert _state(record) == before


# --- the record page ---------------------------------------------------------------------------


def _url(record) -> str:
    return f"/records/{record.uid}/reveal-access-key/"


def test_the_record_page_shows_the_key_id_and_the_masked_secret(personas, record):
    html = login(personas.viewer).get(f"/records/{record.uid}/").content.decode()
    assert f'<code id="access-key-id">{KEY_ID}</code>' in html
    assert 'id="access-secret-value" aria-label="Secret access key hidden"' in html
    assert SECRET not in html
    assert f'data-copy-url="{_url(record)}"' in html


def test_a_record_without_an_access_key_shows_no_key_rows(personas, bare):
    html = login(personas.viewer).get(f"/records/{bare.uid}/").content.decode()
    assert 'id="access-key-id"' not in html


def test_copy_returns_the_secret_and_is_audited(personas, record):
    response = login(personas.viewer).post(_url(record), **JSON)
    assert response.status_code == 200
    assert response.json() == {"access_key_id": KEY_ID, "password": SECRET}
    assert "no-store" in response["Cache-Control"]
    event = AuditEvent.objects.get(action="password.revealed")
    assert event.details == {"what": "access_secret_key", "access_key_id": KEY_ID}
    assert event.actor == personas.viewer


def test_reveal_shows_the_secret_once_on_the_record_page(personas, record):
    client = login(personas.viewer)
    response = client.post(_url(record))
    assert response.status_code == 302 and response["Location"] == f"/records/{record.uid}/"
    assert SECRET not in response.content.decode()
    shown = client.get(response["Location"]).content.decode()
    assert f'id="access-secret-value">{SECRET}<' in shown
    assert "Old-Passw0rd!" not in shown  # the password stays masked
    again = client.get(f"/records/{record.uid}/").content.decode()
    assert SECRET not in again


def test_a_get_of_the_reveal_address_reveals_nothing(personas, record):
    response = login(personas.viewer).get(_url(record))
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "Reveal the secret access key" in response.content.decode()
    assert SECRET not in response.content.decode()
    assert not AuditEvent.objects.filter(action="password.revealed").exists()


def test_outsider_and_anonymous_cannot_reveal_the_secret(personas, record):
    assert login(personas.outsider).post(_url(record), **JSON).status_code == 404
    response = Client().post(_url(record), **JSON)
    assert response.status_code in (302, 401)
    assert SECRET not in response.content.decode()
    assert not AuditEvent.objects.filter(action="password.revealed").exists()


def test_revealing_a_record_without_an_access_key_says_so(personas, bare):
    response = login(personas.viewer).post(_url(bare), **JSON)
    assert response.status_code == 404
    assert response.json()["error"] == "no_access_key"
    assert not AuditEvent.objects.filter(action="password.revealed").exists()


def test_the_history_names_each_access_key_and_marks_the_current_ones(personas, record):
    services.pam_user_update(
        record=record, title=record.title, login=record.login, distinguished_name=ARN,
        access_key=(NEW_KEY_ID, NEW_SECRET),
    )  # fmt: skip
    html = login(personas.editor).get(f"/records/{record.uid}/").content.decode()
    assert f'Access key <code class="access-key-id">{NEW_KEY_ID}</code>' in html
    assert f'Access key <code class="access-key-id">{KEY_ID}</code>' in html
    assert "Console password" in html
    # The newest key and the password are each current.
    assert html.count('<span class="badge badge-succeeded">current</span>') == 2
    assert SECRET not in html and NEW_SECRET not in html


def test_a_history_access_key_is_revealed_with_its_key_id(personas, record):
    version = _key_versions(record)[0]
    client = login(personas.editor)
    url = f"/records/{record.uid}/versions/{version.uid}/reveal/"
    assert client.post(url, **JSON).json() == {"password": SECRET}
    client.post(url)
    page = client.get(f"/records/{record.uid}/").content.decode()
    assert f"Revealed the secret of access key {KEY_ID}" in page
