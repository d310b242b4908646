"""/account/notifications/: each person chooses, per folder they edit or manage, which events
they are mailed about and how; others are refused and nothing changes on bad input."""

from __future__ import annotations

import pytest

from notifications.models import DIGEST, NotificationPreference
from tests.conftest import login

pytestmark = pytest.mark.django_db

URL = "/account/notifications/"


def form_data(folder, **fields) -> dict:
    data = {
        "rotation_failed": "on",
        "may_be_live": "on",
        "gateway_offline": "on",
        "gateway_offline_minutes": "15",
        "delivery": "digest",
        **fields,
    }
    return {"folder": folder.uid, **{f"{folder.uid}-{k}": v for k, v in data.items() if v}}


def test_the_account_page_links_to_it(personas):
    page = login(personas.viewer).get("/account/")
    assert f'href="{URL}"' in page.content.decode()


def test_a_manager_sees_the_defaults_without_having_chosen(personas):
    page = login(personas.manager).get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    uid = personas.folder.uid
    assert f'name="{uid}-rotation_failed" id="id_{uid}-rotation_failed" checked' in html
    assert f'name="{uid}-may_be_live" id="id_{uid}-may_be_live" checked' in html
    assert f'name="{uid}-gateway_offline" id="id_{uid}-gateway_offline">' in html
    assert "Team" in html and "Elsewhere" not in html
    assert not NotificationPreference.objects.exists()  # a GET writes nothing


def test_a_viewer_has_nothing_to_choose(personas):
    html = login(personas.viewer).get(URL).content.decode()
    assert "nothing to choose" in html
    assert 'name="folder"' not in html


def test_an_editor_saves_their_choice_for_a_folder(personas):
    response = login(personas.editor).post(URL, form_data(personas.folder))
    assert response.status_code == 302 and response["Location"] == URL
    saved = NotificationPreference.objects.get(user=personas.editor, folder=personas.folder)
    assert (saved.rotation_failed, saved.may_be_live, saved.credentials_refused) == (
        True,
        True,
        False,
    )
    assert (saved.gateway_offline, saved.gateway_offline_minutes, saved.delivery) == (
        True,
        15,
        DIGEST,
    )
    # Saving again changes the one row.
    login(personas.editor).post(URL, form_data(personas.folder, may_be_live=""))
    saved.refresh_from_db()
    assert saved.may_be_live is False
    assert NotificationPreference.objects.count() == 1


@pytest.mark.parametrize(
    "field,value,error",
    [
        ("gateway_offline_minutes", "0", "Enter a number of minutes from 1 to 10080."),
        ("gateway_offline_minutes", "99999", "Enter a number of minutes from 1 to 10080."),
        ("gateway_offline_minutes", "soon", "Enter a whole number."),
        ("delivery", "hourly", "Select a valid choice."),
    ],
)
def test_bad_input_is_a_field_error_and_saves_nothing(personas, field, value, error):
    response = login(personas.manager).post(URL, form_data(personas.folder, **{field: value}))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="id_{personas.folder.uid}-{field}_error"' in html
    assert error in html
    assert not NotificationPreference.objects.exists()


@pytest.mark.parametrize("persona,status", [("viewer", 403), ("outsider", 404), ("superuser", 404)])
def test_people_who_do_not_edit_or_manage_the_folder_are_refused(personas, persona, status):
    response = login(getattr(personas, persona)).post(URL, form_data(personas.folder))
    assert response.status_code == status
    assert not NotificationPreference.objects.exists()


def test_an_unknown_folder_is_404(personas):
    data = form_data(personas.folder)
    data["folder"] = "no-such-folder"
    assert login(personas.manager).post(URL, data).status_code == 404
    assert not NotificationPreference.objects.exists()


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("folder", ["\x00", "abc\x00def"])
def test_a_nul_in_the_folder_is_no_such_folder(personas, folder):
    """PostgreSQL refuses NUL in text: a folder named with one is not found, not a 500."""
    client = login(personas.editor)
    response = client.post("/account/notifications/", {"folder": folder})
    assert response.status_code == 404
    assert not NotificationPreference.objects.exists()


def test_saving_twice_at_once_keeps_one_choice(personas):
    """Two submissions racing (a double click): both read "no choice yet", both save; the
    second updates what the first saved instead of failing on the one-per-folder rule."""
    from notifications.preferences import preference_form, preference_save

    member = personas.folder.members.get(user=personas.editor)
    data = form_data(personas.folder)
    first, second = preference_form(member, data), preference_form(member, data)
    assert first.is_valid() and second.is_valid(), (first.errors, second.errors)
    preference_save(form=first, member=member)
    preference_save(form=second, member=member)
    assert NotificationPreference.objects.filter(user=personas.editor).count() == 1
