"""The PAM User page: fields, masked password, history for editors, the rotation panel hook."""

from django.test import Client

from tests.conftest import login
from vault import services
from vault.models import PamUser, PasswordVersion


def _make_record(personas, password: str = "Current-Passw0rd!"):
    return services.pam_user_create(
        folder=personas.folder,
        title="AWS user: Alice",
        login="Alice",
        distinguished_name="arn:aws:iam::123456789012:user/ops/Alice",
        password=password,
        actor=personas.editor,
    )


def test_record_page_shows_the_fields(personas):
    record = _make_record(personas)
    html = login(personas.viewer).get(f"/records/{record.uid}/").content.decode()
    assert "AWS user: Alice" in html
    assert "<code>Alice</code>" in html
    assert "arn:aws:iam::123456789012:user/ops/Alice" in html
    assert f'href="/folders/{personas.folder.uid}/"' in html


def test_record_page_masks_the_password_before_reveal(personas):
    record = _make_record(personas)
    html = login(personas.editor).get(f"/records/{record.uid}/").content.decode()
    assert "Current-Passw0rd!" not in html
    assert "••••••••" in html


def test_record_page_offers_reveal_and_copy(personas):
    record = _make_record(personas)
    html = login(personas.viewer).get(f"/records/{record.uid}/").content.decode()
    assert f'action="/records/{record.uid}/reveal/"' in html
    assert f'data-copy-url="/records/{record.uid}/reveal/"' in html


def test_record_without_password_says_so_and_offers_no_reveal(personas):
    record = _make_record(personas, password="")
    html = login(personas.viewer).get(f"/records/{record.uid}/").content.decode()
    assert "No password stored" in html
    assert "/reveal/" not in html


def test_editor_sees_password_history_without_passwords(personas):
    record = _make_record(personas, password="First-Passw0rd!")
    services.pam_user_update(
        record=record,
        title=record.title,
        login=record.login,
        distinguished_name=record.distinguished_name,
        password="Second-Passw0rd!",
        actor=personas.editor,
    )
    response = login(personas.editor).get(f"/records/{record.uid}/")
    html = response.content.decode()
    assert len(response.context["versions"]) == 2
    assert "Password history" in html
    assert "First-Passw0rd!" not in html and "Second-Passw0rd!" not in html
    for version in PasswordVersion.objects.filter(pam_user=record):
        assert f"/records/{record.uid}/versions/{version.uid}/reveal/" in html


def test_history_says_who_and_how(personas):
    record = _make_record(personas)
    html = login(personas.editor).get(f"/records/{record.uid}/").content.decode()
    assert "Entered by a person" in html
    assert "<td>editor</td>" in html


def test_viewer_does_not_see_password_history(personas):
    record = _make_record(personas)
    html = login(personas.viewer).get(f"/records/{record.uid}/").content.decode()
    assert "Password history" not in html
    assert "/versions/" not in html


def test_viewer_sees_no_edit_or_delete(personas):
    record = _make_record(personas)
    html = login(personas.viewer).get(f"/records/{record.uid}/").content.decode()
    assert f"/records/{record.uid}/edit/" not in html
    assert f"/records/{record.uid}/delete/" not in html


def test_editor_sees_edit_and_delete(personas):
    record = _make_record(personas)
    html = login(personas.editor).get(f"/records/{record.uid}/").content.decode()
    assert f'href="/records/{record.uid}/edit/"' in html
    assert f'action="/records/{record.uid}/delete/"' in html


def test_record_page_includes_the_rotation_panel_template(personas):
    record = _make_record(personas)
    response = login(personas.editor).get(f"/records/{record.uid}/")
    assert "rotation/panel.html" in [t.name for t in response.templates]
    assert response.context["record"] == record
    assert response.context["member"].user == personas.editor


def test_outsider_gets_404(personas):
    record = _make_record(personas)
    assert login(personas.outsider).get(f"/records/{record.uid}/").status_code == 404


def test_unknown_record_is_404(personas):
    assert login(personas.editor).get("/records/nothing-here/").status_code == 404


def test_anonymous_is_sent_to_login(personas):
    record = _make_record(personas)
    response = Client().get(f"/records/{record.uid}/")
    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_outsider_404_page_does_not_name_the_record(personas):
    record = _make_record(personas)
    response = login(personas.outsider).get(f"/records/{record.uid}/")
    assert "AWS user: Alice" not in response.content.decode()
    assert "Not found" in response.content.decode()


def test_record_page_shows_notes_escaped_with_their_line_breaks(personas):
    record = _make_record(personas)
    services.pam_user_update(
        record=record,
        title=record.title,
        login=record.login,
        distinguished_name=record.distinguished_name,
        notes="<script>alert(1)</script>\nSecond line",
    )
    html = login(personas.viewer).get(f"/records/{record.uid}/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>Second line" in html


def test_record_page_says_when_the_vault_does_not_manage_the_record(personas):
    record = _make_record(personas)
    page = login(personas.viewer).get(f"/records/{record.uid}/").content.decode()
    assert "never rotated" not in page
    PamUser.objects.filter(pk=record.pk).update(managed=False)
    html = login(personas.viewer).get(f"/records/{record.uid}/").content.decode()
    assert "Not managed by the vault: it is never rotated." in html
