"""The Rotate button: who sees it, who may press it, and what one or two presses create."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from django.test import Client

from rotation.models import Rotation
from tests.conftest import login, make_configuration, make_member, make_pam_user, make_user
from tests.rotation.conftest import make_settings
from vault.models import ApplicationFolder, AuditEvent, PamUser

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture(autouse=True)
def no_queue():
    """The view only requests a rotation; nothing goes to django-q2 here."""
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


@pytest.fixture
def rotatable(personas, record, config):
    make_settings(record, config)
    return record


def _url(record) -> str:
    return f"/records/{record.uid}/rotate/"


def _page(client, record) -> str:
    return client.get(f"/records/{record.uid}/").content.decode()


def _snapshot(record) -> tuple:
    return (
        list(Rotation.objects.filter(pam_user=record).values()),
        list(AuditEvent.objects.values_list("action", flat=True)),
    )


# --- the button --------------------------------------------------------------------------------


def test_editor_sees_a_button_named_exactly_rotate(personas, rotatable):
    html = _page(login(personas.editor), rotatable)
    buttons = re.findall(r'<button[^>]*id="rotate-button"[^>]*>(.*?)</button>', html, re.S)
    assert buttons == ["Rotate"]
    assert f'action="{_url(rotatable)}"' in html


def test_editor_sees_the_settings_link(personas, rotatable):
    html = _page(login(personas.editor), rotatable)
    assert f'href="/records/{rotatable.uid}/rotation/"' in html


def test_viewer_sees_no_rotate_button(personas, rotatable):
    html = _page(login(personas.viewer), rotatable)
    assert ">Rotate</button>" not in html
    assert f'action="{_url(rotatable)}"' not in html


def test_viewer_sees_no_settings_link(personas, rotatable):
    html = _page(login(personas.viewer), rotatable)
    assert f'/records/{rotatable.uid}/rotation/"' not in html
    assert "Password Rotation Settings</a>" not in html


def test_record_without_settings_offers_settings_but_no_rotate_button(personas, record):
    html = _page(login(personas.editor), record)
    assert "Password rotation is not set up for this record." in html
    assert ">Rotate</button>" not in html


def test_rotate_button_form_carries_a_working_csrf_token(personas, rotatable):
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.editor)
    html = _page(client, rotatable)
    form = html[html.index(f'action="{_url(rotatable)}"') :]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[1]
    assert client.post(_url(rotatable), {"csrfmiddlewaretoken": token}).status_code == 302
    assert Rotation.objects.filter(pam_user=rotatable).count() == 1


def test_rotate_without_a_csrf_token_is_refused(personas, rotatable):
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.editor)
    assert client.post(_url(rotatable)).status_code == 403
    assert not Rotation.objects.exists()


# --- pressing it ------------------------------------------------------------------------------


def test_rotate_creates_one_queued_on_demand_rotation(personas, rotatable):
    response = login(personas.editor).post(_url(rotatable))
    assert response.status_code == 302
    assert response.url == f"/records/{rotatable.uid}/"
    rotation = Rotation.objects.get(pam_user=rotatable)
    assert rotation.status == Rotation.QUEUED
    assert rotation.trigger == "on_demand"
    assert rotation.requested_by == personas.editor


def test_rotate_hands_the_rotation_to_its_gateway_after_commit(
    personas, rotatable, no_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        login(personas.editor).post(_url(rotatable))
    rotation = Rotation.objects.get(pam_user=rotatable)
    no_queue.assert_called_once()
    assert no_queue.call_args.args == ("rotation.tasks.run_rotation", rotation.pk)
    assert no_queue.call_args.kwargs["cluster"] == "default"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("as_json", [False, True])
def test_rotate_answers_queued_when_the_broker_refuses_after_commit(
    personas, rotatable, no_queue, as_json
):
    """Not a 500: the rotation committed, and the gateway's tick starts it
    (tests/rotation/test_broker_faults.py runs it end to end)."""
    no_queue.side_effect = ConnectionError("Error 111 connecting to 127.0.0.1:6379.")
    client = login(personas.editor)
    if as_json:
        response = client.post(_url(rotatable), **JSON)
        rotation = Rotation.objects.get(pam_user=rotatable)
        assert response.status_code == 200
        assert response.json() == {
            "ok": True,
            "rotation": rotation.uid,
            "status": "queued",
            "message": "Rotation requested. The gateway will pick it up within a minute (its "
            "task queue did not answer just now).",
        }
    else:
        response = client.post(_url(rotatable), follow=True)
        assert response.status_code == 200
        assert "The gateway will pick it up within a minute" in response.content.decode()
    no_queue.assert_called_once()
    assert Rotation.objects.get(pam_user=rotatable).status == Rotation.QUEUED
    # The next press says one is in progress, as for any queued rotation.
    response = client.post(_url(rotatable), **JSON)
    assert response.status_code == 409


def test_rotate_says_the_status_will_update(personas, rotatable):
    response = login(personas.editor).post(_url(rotatable), follow=True)
    assert "Rotation requested" in response.content.decode()


def test_rotate_as_json_answers_the_new_rotation(personas, rotatable):
    response = login(personas.editor).post(_url(rotatable), **JSON)
    rotation = Rotation.objects.get(pam_user=rotatable)
    assert response.status_code == 200
    assert response.json() == {"ok": True, "rotation": rotation.uid, "status": "queued"}


def test_second_rotate_while_one_is_active_says_one_is_in_progress(personas, rotatable):
    client = login(personas.editor)
    client.post(_url(rotatable))
    response = client.post(_url(rotatable), follow=True)
    assert "A rotation of this record is already in progress." in response.content.decode()
    assert Rotation.objects.filter(pam_user=rotatable).count() == 1


def test_second_rotate_as_json_is_409_and_creates_nothing(personas, rotatable):
    client = login(personas.editor)
    client.post(_url(rotatable), **JSON)
    before = _snapshot(rotatable)
    response = client.post(_url(rotatable), **JSON)
    assert response.status_code == 409
    assert response.json() == {
        "ok": False,
        "message": "A rotation of this record is already in progress.",
    }
    assert _snapshot(rotatable) == before


def test_two_editors_pressing_rotate_give_one_rotation(personas, rotatable):
    other = make_user("second-editor")
    make_member(personas.folder, other, can_edit=True)
    login(personas.editor).post(_url(rotatable))
    response = login(other).post(_url(rotatable), follow=True)
    assert "already in progress" in response.content.decode()
    assert Rotation.objects.filter(pam_user=rotatable).count() == 1


def test_rotate_while_running_is_refused(personas, rotatable):
    client = login(personas.editor)
    client.post(_url(rotatable))
    Rotation.objects.filter(pam_user=rotatable).update(status=Rotation.RUNNING)
    response = client.post(_url(rotatable), **JSON)
    assert response.status_code == 409
    assert Rotation.objects.filter(pam_user=rotatable).count() == 1


def test_rotate_after_the_last_one_finished_creates_another(personas, rotatable):
    client = login(personas.editor)
    client.post(_url(rotatable))
    Rotation.objects.filter(pam_user=rotatable).update(status=Rotation.SUCCEEDED)
    client.post(_url(rotatable))
    assert Rotation.objects.filter(pam_user=rotatable, status=Rotation.QUEUED).count() == 1
    assert Rotation.objects.filter(pam_user=rotatable).count() == 2


def test_rotate_without_settings_says_to_set_up_rotation(personas, record):
    response = login(personas.editor).post(_url(record), follow=True)
    assert "Password rotation is not set up for this record" in response.content.decode()
    assert not Rotation.objects.exists()


def test_rotate_without_settings_as_json_explains_why(personas, record):
    response = login(personas.editor).post(_url(record), **JSON)
    assert response.json()["ok"] is False
    assert "not set up" in response.json()["message"]
    assert not Rotation.objects.exists()


def test_rotate_with_disabled_settings_says_it_is_disabled(personas, record, config):
    make_settings(record, config, enabled=False)
    response = login(personas.editor).post(_url(record), follow=True)
    assert "Password rotation is disabled for this record" in response.content.decode()
    assert not Rotation.objects.exists()


def test_rotate_when_the_folder_is_no_longer_shared_says_what_to_share(personas, rotatable):
    ApplicationFolder.objects.filter(folder=personas.folder).delete()
    response = login(personas.editor).post(_url(rotatable), follow=True)
    html = response.content.decode()
    assert "is not shared to the application" in html and "Rotation App" in html
    assert not Rotation.objects.exists()


# --- refused personas ------------------------------------------------------------------------


def test_rotate_rejects_get(personas, rotatable):
    assert login(personas.editor).get(_url(rotatable)).status_code == 405
    assert not Rotation.objects.exists()


def test_viewer_forged_rotate_is_403_and_creates_nothing(personas, rotatable):
    before = _snapshot(rotatable)
    assert login(personas.viewer).post(_url(rotatable)).status_code == 403
    assert _snapshot(rotatable) == before


def test_outsider_rotate_is_404_and_creates_nothing(personas, rotatable):
    before = _snapshot(rotatable)
    assert login(personas.outsider).post(_url(rotatable)).status_code == 404
    assert _snapshot(rotatable) == before


def test_anonymous_rotate_redirects_to_login_and_creates_nothing(personas, rotatable):
    before = _snapshot(rotatable)
    response = Client().post(_url(rotatable))
    assert response.status_code == 302 and response.url.startswith("/login/")
    assert _snapshot(rotatable) == before


def test_rotate_of_an_unknown_record_is_404(personas):
    assert login(personas.editor).post("/records/no-such-uid/rotate/").status_code == 404


def test_editor_of_one_folder_cannot_rotate_a_record_of_another(personas):
    foreign = make_pam_user(personas.other_folder, "Foreign")
    before = _snapshot(foreign)
    assert login(personas.editor).post(_url(foreign)).status_code == 404
    assert _snapshot(foreign) == before


# --- a record the vault does not manage --------------------------------------------------------


def test_an_unmanaged_record_offers_no_rotate_but_says_why(personas, rotatable):
    PamUser.objects.filter(pk=rotatable.pk).update(managed=False)
    html = _page(login(personas.editor), rotatable)
    assert f'action="{_url(rotatable)}"' not in html
    button = re.search(r'<button[^>]*id="rotate-button"[^>]*>', html).group(0)
    assert "disabled" in button
    assert "This record is not managed by the vault: it is never rotated." in html


def test_an_unmanaged_records_rotate_is_refused_and_changes_nothing(personas, rotatable):
    PamUser.objects.filter(pk=rotatable.pk).update(managed=False)
    before = _snapshot(rotatable)
    response = login(personas.editor).post(_url(rotatable), follow=True)
    assert "not managed by the vault" in response.content.decode()
    assert _snapshot(rotatable) == before
