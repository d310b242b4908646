"""The Cancel button beside a queued rotation on the record page, and `pam action cancel`
(issue 12, defect 1): who sees it, who may press it, what it changes and what it says."""

from __future__ import annotations

import json
import re
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from rotation import engine
from rotation.models import Rotation
from tests.conftest import login, make_configuration, make_pam_user
from tests.rotation.conftest import make_settings
from vault.cli import call_pam
from vault.models import AuditEvent, Gateway

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue():
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


@pytest.fixture
def queued(personas, record):
    gw2 = Gateway.objects.create(name="gw2", application=personas.application)
    make_settings(record, make_configuration(personas.folder, gw2, title="Never started"))
    return engine.rotation_request(record=record, trigger="on_demand", requested_by=personas.editor)


def _url(rotation: Rotation) -> str:
    return f"/records/{rotation.pam_user.uid}/rotations/{rotation.uid}/cancel/"


def _status_html(client, record) -> str:
    return client.get(f"/records/{record.uid}/rotation/status/").json()["html"]


def _cancel_buttons(html: str) -> list[str]:
    return re.findall(r'<button[^>]*id="cancel-rotation"[^>]*>(.*?)</button>', html, re.S)


def _snapshot() -> tuple:
    return (
        list(Rotation.objects.values()),
        list(AuditEvent.objects.values_list("action", flat=True)),
    )


# --- the button --------------------------------------------------------------------------------


def test_editor_sees_cancel_beside_a_queued_rotation(personas, queued):
    client = login(personas.editor)
    page = client.get(f"/records/{queued.pam_user.uid}/").content.decode()
    assert _cancel_buttons(page) == ["Cancel rotation"]
    assert f'action="{_url(queued)}"' in page
    # The status poll renders the same panel, so the button comes and goes with the rotation.
    assert _cancel_buttons(_status_html(client, queued.pam_user)) == ["Cancel rotation"]


def test_viewer_and_manager_see_no_cancel_button(personas, queued):
    for persona in (personas.viewer, personas.manager):
        assert _cancel_buttons(_status_html(login(persona), queued.pam_user)) == []


@pytest.mark.parametrize("status", [Rotation.RUNNING, Rotation.SUCCEEDED, Rotation.FAILED])
def test_no_cancel_button_once_the_rotation_started_or_ended(personas, queued, status):
    Rotation.objects.filter(pk=queued.pk).update(status=status)
    assert _cancel_buttons(_status_html(login(personas.editor), queued.pam_user)) == []


def test_the_offline_gateway_warning_offers_the_cancel(personas, queued):
    html = _status_html(login(personas.editor), queued.pam_user)
    assert "python manage.py pam gateway run gw2" in html
    assert "Cancel rotation" in html


# --- pressing it -------------------------------------------------------------------------------


def test_editor_cancels_a_queued_rotation(personas, queued):
    client = login(personas.editor)
    response = client.post(_url(queued))
    assert response.status_code == 302 and response.url == f"/records/{queued.pam_user.uid}/"
    rotation = Rotation.objects.get(pk=queued.pk)
    assert rotation.status == Rotation.FAILED
    assert rotation.error == "Cancelled by editor before it started."
    event = AuditEvent.objects.get(action="rotation.cancelled")
    assert event.actor == personas.editor and event.source_ip
    page = client.get(response.url).content.decode()
    assert "Rotation cancelled" in page
    assert _cancel_buttons(page) == []


def test_cancelling_a_rotation_that_already_started_says_so_and_changes_nothing(personas, queued):
    Rotation.objects.filter(pk=queued.pk).update(status=Rotation.RUNNING, attempts=1)
    before = _snapshot()
    client = login(personas.editor)
    response = client.post(_url(queued), follow=True)
    assert "has started" in response.content.decode()
    assert _snapshot() == before


def test_get_is_refused(personas, queued):
    assert login(personas.editor).get(_url(queued)).status_code == 405
    assert Rotation.objects.get(pk=queued.pk).status == Rotation.QUEUED


@pytest.mark.parametrize("persona,status", [("viewer", 403), ("manager", 403), ("outsider", 404)])
def test_people_without_the_rotate_rights_are_refused(personas, queued, persona, status):
    before = _snapshot()
    assert login(getattr(personas, persona)).post(_url(queued)).status_code == status
    assert _snapshot() == before


def test_anonymous_is_sent_to_log_in(queued):
    response = Client().post(_url(queued))
    assert response.status_code == 302 and response.url.startswith("/login/")
    assert Rotation.objects.get(pk=queued.pk).status == Rotation.QUEUED


def test_an_enforced_policy_without_rotate_is_refused(personas, queued, settings):
    settings.VAULT_ENFORCE_POLICIES = True
    before = _snapshot()
    client = login(personas.editor)
    assert client.post(_url(queued)).status_code == 403
    assert _snapshot() == before
    assert _cancel_buttons(_status_html(client, queued.pam_user)) == []
    personas.editor.user_permissions.add(Permission.objects.get(codename="rotate"))
    assert login(personas.editor).post(_url(queued)).status_code == 302
    assert Rotation.objects.get(pk=queued.pk).status == Rotation.FAILED


def test_a_rotation_of_another_record_is_404(personas, queued):
    other = make_pam_user(personas.folder, "Other")
    url = f"/records/{other.uid}/rotations/{queued.uid}/cancel/"
    assert login(personas.editor).post(url).status_code == 404
    assert Rotation.objects.get(pk=queued.pk).status == Rotation.QUEUED


# --- pam action cancel -------------------------------------------------------------------------


def test_pam_action_cancel_cancels_the_records_queued_rotation(queued):
    code, out, err = call_pam("action", "cancel", "--record", queued.pam_user.uid)
    assert code == 0, err
    assert json.loads(out) == {
        "record": queued.pam_user.uid,
        "rotation": queued.uid,
        "status": "failed",
        "may_be_live": False,
    }
    rotation = Rotation.objects.get(pk=queued.pk)
    assert rotation.error == "Cancelled from the command line before it started."
    event = AuditEvent.objects.get(action="rotation.cancelled")
    assert event.actor is None and event.actor_kind == "cli"


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pam: error: "), err
    return lines[0]


def test_pam_action_cancel_of_an_unknown_record_is_one_error_line():
    code, out, err = call_pam("action", "cancel", "--record", "nope")
    assert code == 1 and out == ""
    assert "no PAM User with uid nope" in _one_error_line(err)


def test_pam_action_cancel_with_nothing_queued_is_one_error_line(personas, record):
    code, out, err = call_pam("action", "cancel", "--record", record.uid)
    assert code == 1 and out == ""
    assert "has no queued rotation" in _one_error_line(err)


def test_pam_action_cancel_of_a_running_rotation_is_one_error_line(queued):
    Rotation.objects.filter(pk=queued.pk).update(status=Rotation.RUNNING, attempts=1)
    code, out, err = call_pam("action", "cancel", "--record", queued.pam_user.uid)
    assert code == 1 and out == ""
    assert "running" in _one_error_line(err)
    assert Rotation.objects.get(pk=queued.pk).status == Rotation.RUNNING


def test_pam_action_cancel_needs_a_record(queued):
    code, _, err = call_pam("action", "cancel")
    assert code == 2 and "--record" in err
