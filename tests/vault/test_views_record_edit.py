"""Editing a PAM User: needs can_edit; a blank password keeps the current one."""

import re

import pytest
from django.test import Client

from tests.conftest import login, make_pam_user
from vault import services
from vault.models import AuditEvent, PamUser, PasswordVersion

ARN = "arn:aws:iam::123456789012:user/Alice"


@pytest.fixture
def record(personas):
    return services.pam_user_create(
        folder=personas.folder,
        title="AWS user: Alice",
        login="Alice",
        distinguished_name=ARN,
        password="Old-Passw0rd!",
    )


def _url(record) -> str:
    return f"/records/{record.uid}/edit/"


def _data(**changes) -> dict:
    return {
        "title": "AWS user: Alice",
        "login": "Alice",
        "distinguished_name": ARN,
        "password": "",
        "managed": "on",  # a browser sends the checkbox while it is ticked
        **changes,
    }


def test_edit_form_shows_current_values_but_never_the_password(personas, record):
    html = login(personas.editor).get(_url(record)).content.decode()
    assert 'value="AWS user: Alice"' in html
    assert "Old-Passw0rd!" not in html
    assert "Leave blank to keep the current password." in html


def test_editor_changes_the_title(personas, record):
    response = login(personas.editor).post(_url(record), _data(title="Renamed"))
    record.refresh_from_db()
    assert response.url == f"/records/{record.uid}/"
    assert record.title == "Renamed"
    assert AuditEvent.objects.get(action="record.updated").details == {"fields": ["title"]}


def test_blank_password_keeps_the_current_one(personas, record):
    login(personas.editor).post(_url(record), _data(title="Renamed"))
    record.refresh_from_db()
    assert record.get_secret("password") == "Old-Passw0rd!"
    assert PasswordVersion.objects.filter(pam_user=record).count() == 1


def test_new_password_replaces_it_and_joins_the_history(personas, record):
    login(personas.editor).post(_url(record), _data(password="New-Passw0rd!"))
    record.refresh_from_db()
    assert record.get_secret("password") == "New-Passw0rd!"
    assert PasswordVersion.objects.filter(pam_user=record).count() == 2


def test_keeping_its_own_title_is_not_a_duplicate(personas, record):
    response = login(personas.editor).post(_url(record), _data())
    assert response.status_code == 302


def test_taking_another_records_title_is_a_field_error(personas, record):
    make_pam_user(personas.folder, "Bob", title="Taken")
    response = login(personas.editor).post(_url(record), _data(title="Taken"))
    assert list(response.context["form"].errors) == ["title"]
    record.refresh_from_db()
    assert record.title == "AWS user: Alice"


def test_arn_login_mismatch_is_a_field_error_and_changes_nothing(personas, record):
    response = login(personas.editor).post(_url(record), _data(login="Bob", password="X-1"))
    assert list(response.context["form"].errors) == ["distinguished_name"]
    record.refresh_from_db()
    assert (record.login, record.get_secret("password")) == ("Alice", "Old-Passw0rd!")


def test_viewer_gets_403_on_the_form(personas, record):
    assert login(personas.viewer).get(_url(record)).status_code == 403


def test_viewer_forged_post_changes_nothing(personas, record):
    response = login(personas.viewer).post(_url(record), _data(title="Hacked", password="p"))
    assert response.status_code == 403
    record.refresh_from_db()
    assert (record.title, record.get_secret("password")) == ("AWS user: Alice", "Old-Passw0rd!")


def test_outsider_gets_404_and_changes_nothing(personas, record):
    assert login(personas.outsider).get(_url(record)).status_code == 404
    assert login(personas.outsider).post(_url(record), _data(title="X")).status_code == 404
    record.refresh_from_db()
    assert record.title == "AWS user: Alice"


def test_anonymous_post_redirects_and_changes_nothing(personas, record):
    assert Client().post(_url(record), _data(title="X")).status_code == 302
    record.refresh_from_db()
    assert record.title == "AWS user: Alice"


def test_refusal_page_says_which_permission_is_missing(personas, record):
    html = login(personas.viewer).get(_url(record)).content.decode()
    assert "Refused" in html
    assert "“Edit records” (can_edit)" in html


def test_an_edit_without_a_password_keeps_a_password_rotated_meanwhile(personas):
    from tests.conftest import make_pam_user
    from vault import services
    from vault.models import PamUser

    record = make_pam_user(personas.folder, "Racer", password="Old-Passw0rd!")
    stale = PamUser.objects.get(pk=record.pk)  # the edit form loaded the record...
    services.pam_user_set_password(record=record, password="Rotated-Passw0rd!", source="rotation")
    record.save(update_fields=["password_enc"])  # ...then a rotation finished
    services.pam_user_update(
        record=stale, title="Renamed", login="Racer", distinguished_name=stale.distinguished_name
    )
    record.refresh_from_db()
    assert record.title == "Renamed"
    assert record.get_secret("password") == "Rotated-Passw0rd!"


# --- notes and the managed flag ----------------------------------------------------------------


def test_edit_form_shows_the_notes_and_the_managed_flag(personas, record):
    services.pam_user_update(
        record=record,
        title=record.title,
        login=record.login,
        distinguished_name=record.distinguished_name,
        notes="Owned by <ops>",
        managed=False,
    )
    html = login(personas.editor).get(_url(record)).content.decode()
    assert "Owned by &lt;ops&gt;</textarea>" in html
    checkbox = re.search(r'<input[^>]*name="managed"[^>]*>', html).group(0)
    assert "checked" not in checkbox


def test_unticking_managed_is_saved_and_audited_like_other_edits(personas, record):
    data = {k: v for k, v in _data().items() if k != "managed"}
    login(personas.editor).post(_url(record), data)
    record.refresh_from_db()
    assert record.managed is False
    event = AuditEvent.objects.get(action="record.updated")
    assert event.details == {"fields": ["managed"], "managed": False}
    assert event.actor == personas.editor


def test_ticking_managed_again_is_audited(personas, record):
    PamUser.objects.filter(pk=record.pk).update(managed=False)
    login(personas.editor).post(_url(record), _data())
    record.refresh_from_db()
    assert record.managed is True
    event = AuditEvent.objects.get(action="record.updated")
    assert event.details == {"fields": ["managed"], "managed": True}


def test_editing_the_notes_is_audited_without_their_text(personas, record):
    login(personas.editor).post(_url(record), _data(notes="Rotated by the vault."))
    record.refresh_from_db()
    assert record.notes == "Rotated by the vault."
    event = AuditEvent.objects.get(action="record.updated")
    assert event.details == {"fields": ["notes"]}


def test_an_unchanged_save_audits_no_field(personas, record):
    login(personas.editor).post(_url(record), _data())
    assert AuditEvent.objects.get(action="record.updated").details == {"fields": []}
