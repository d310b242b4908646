"""Creating a PAM User: needs manage_records; every bad input is a field error; nothing written."""

import re

from django.contrib.messages import get_messages
from django.test import Client

from tests.conftest import login, make_pam_user
from vault.models import AuditEvent, PamUser, PasswordVersion

VALID = {
    "title": "AWS user: Alice",
    "login": "Alice",
    "distinguished_name": "arn:aws:iam::123456789012:user/Alice",
    "password": "Typed-Passw0rd!",
    "managed": "on",  # a browser sends the checkbox, checked by default
}


def _url(personas) -> str:
    return f"/folders/{personas.folder.uid}/records/new/"


def _post(personas, user, **changes):
    return login(user).post(_url(personas), {**VALID, **changes})


def test_form_labels_every_input(personas):
    html = login(personas.editor).get(_url(personas)).content.decode()
    for name in ("title", "login", "distinguished_name", "password"):
        assert f'<label for="id_{name}">' in html


def test_editor_creates_a_record_and_lands_on_it(personas):
    response = _post(personas, personas.editor)
    record = PamUser.objects.get(title="AWS user: Alice")
    assert response.status_code == 302
    assert response.url == f"/records/{record.uid}/"
    assert record.folder == personas.folder
    assert record.get_secret("password") == "Typed-Passw0rd!"


def test_create_keeps_the_password_in_history_and_audits(personas):
    response = _post(personas, personas.editor)
    record = PamUser.objects.get()
    assert PasswordVersion.objects.filter(pam_user=record, set_by=personas.editor).count() == 1
    assert AuditEvent.objects.filter(action="record.created", object_uid=record.uid).exists()
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Created the record “AWS user: Alice”."
    ]


def test_password_is_optional(personas):
    _post(personas, personas.editor, password="")
    assert PamUser.objects.get().has_secret("password") is False


def test_arn_with_a_path_and_other_partitions_is_accepted(personas):
    for n, partition in enumerate(["aws-cn", "aws-us-gov"]):
        arn = f"arn:{partition}:iam::123456789012:user/division/team/Alice"
        _post(personas, personas.editor, title=f"T{n}", distinguished_name=arn)
    assert PamUser.objects.count() == 2


def test_arn_not_matching_login_is_a_field_error(personas):
    response = _post(personas, personas.editor, login="alice")
    errors = response.context["form"].errors
    assert list(errors) == ["distinguished_name"]
    assert "“Alice” but the login is “alice”" in errors["distinguished_name"][0]
    assert PamUser.objects.count() == 0


def test_malformed_arn_is_a_field_error(personas):
    for arn in (
        "arn:aws:iam::12345:user/Alice",
        "arn:aws:s3:::bucket",
        "arn:azure:iam::123456789012:user/Alice",
        "arn:aws:iam::123456789012:role/Alice",
    ):
        response = _post(personas, personas.editor, distinguished_name=arn)
        assert "Not an IAM user ARN" in response.content.decode(), arn
    assert PamUser.objects.count() == 0


def test_login_with_invalid_characters_is_a_field_error(personas):
    response = _post(
        personas,
        personas.editor,
        login="Al ice",
        distinguished_name="arn:aws:iam::123456789012:user/Al ice",
    )
    assert "login" in response.context["form"].errors
    assert PamUser.objects.count() == 0


def test_duplicate_title_in_the_folder_is_a_field_error(personas):
    make_pam_user(personas.folder, "Bob", title="AWS user: Alice")
    response = _post(personas, personas.editor)
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["title"]
    assert PamUser.objects.count() == 1


def test_same_title_in_another_folder_is_fine(personas):
    make_pam_user(personas.other_folder, "Bob", title="AWS user: Alice")
    _post(personas, personas.editor)
    assert PamUser.objects.filter(folder=personas.folder).count() == 1


def test_password_longer_than_128_is_a_field_error(personas):
    response = _post(personas, personas.editor, password="a" * 129)
    assert list(response.context["form"].errors) == ["password"]
    assert PamUser.objects.count() == 0


def test_password_with_non_ascii_is_a_field_error(personas):
    response = _post(personas, personas.editor, password="pässword")
    assert list(response.context["form"].errors) == ["password"]


def test_errors_keep_what_was_typed_but_not_the_password(personas):
    response = _post(personas, personas.editor, login="alice")
    html = response.content.decode()
    assert 'value="AWS user: Alice"' in html
    assert 'value="alice"' in html
    assert 'value="arn:aws:iam::123456789012:user/Alice"' in html
    assert "Typed-Passw0rd!" not in html


def test_errors_are_tied_to_their_input(personas):
    html = _post(personas, personas.editor, login="alice").content.decode()
    assert 'aria-invalid="true"' in html
    assert 'id="id_distinguished_name_error"' in html


def test_nothing_typed_is_a_field_error_for_each_required_field(personas):
    response = login(personas.editor).post(_url(personas), {})
    assert set(response.context["form"].errors) == {"title", "login", "distinguished_name"}


def test_viewer_gets_403_on_the_form(personas):
    assert login(personas.viewer).get(_url(personas)).status_code == 403


def test_viewer_forged_post_is_refused_and_writes_nothing(personas):
    response = _post(personas, personas.viewer)
    assert response.status_code == 403
    assert PamUser.objects.count() == 0


def test_outsider_gets_404_and_writes_nothing(personas):
    assert login(personas.outsider).get(_url(personas)).status_code == 404
    assert _post(personas, personas.outsider).status_code == 404
    assert PamUser.objects.count() == 0


def test_anonymous_post_redirects_and_writes_nothing(personas):
    response = Client().post(_url(personas), VALID)
    assert response.status_code == 302
    assert PamUser.objects.count() == 0


# --- notes and the managed flag ----------------------------------------------------------------


def test_the_form_has_notes_and_a_managed_checkbox_checked_by_default(personas):
    html = login(personas.editor).get(_url(personas)).content.decode()
    assert '<label for="id_notes">' in html
    assert re.search(r'<textarea[^>]*name="notes"', html)
    checkbox = re.search(r'<input[^>]*name="managed"[^>]*>', html).group(0)
    assert 'type="checkbox"' in checkbox and "checked" in checkbox
    assert "Managed by the vault (rotate this record)" in html


def test_a_record_is_created_with_its_notes_and_unmanaged(personas):
    data = {k: v for k, v in VALID.items() if k != "managed"}  # the box unticked
    login(personas.editor).post(_url(personas), {**data, "notes": "Break-glass.\nAsk ops."})
    record = PamUser.objects.get(title="AWS user: Alice")
    assert (record.notes, record.managed) == ("Break-glass.\nAsk ops.", False)


def test_notes_with_a_nul_character_are_a_field_error_and_nothing_is_written(personas):
    response = _post(personas, personas.editor, notes="bad\x00notes")
    assert response.status_code == 200
    assert response.context["form"].errors["notes"]
    assert not PamUser.objects.exists()
