"""Saving rotation settings with another configuration while a rotation waits (issue 12,
defect 1): a rotation that has not started goes with the new settings (its configuration and
gateway, conditional on it still being queued, then handed to the new gateway), or is cancelled
when the new settings cannot run it; one that started stays where it is. Each time the page
and `pam rotation edit` say which."""

from __future__ import annotations

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from rotation import engine
from rotation.models import Rotation, RotationSettings
from tests.conftest import login, make_configuration
from tests.rotation.conftest import make_settings
from tests.security.conftest import settings_form_data
from vault.cli import call_pam
from vault.models import AuditEvent, Gateway

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue():
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


@pytest.fixture
def working(personas):
    """The configuration whose gateway runs ("default", online)."""
    Gateway.objects.filter(pk=personas.gateway.pk).update(last_seen_at=timezone.now())
    return make_configuration(personas.folder, personas.gateway, title="Working")


@pytest.fixture
def stuck(personas):
    gw2 = Gateway.objects.create(name="gw2", application=personas.application)
    return make_configuration(personas.folder, gw2, title="Never started")


@pytest.fixture
def queued(personas, record, stuck):
    make_settings(record, stuck)
    return engine.rotation_request(record=record, trigger="on_demand", requested_by=personas.editor)


def _fresh(rotation: Rotation) -> Rotation:
    return Rotation.objects.select_related("configuration").get(pk=rotation.pk)


def _save(client, record, config, **changes):
    data = {**settings_form_data(config), **changes}
    return client.post(f"/records/{record.uid}/rotation/", {k: v for k, v in data.items() if v})


def _messages(client, record) -> str:
    return client.get(f"/records/{record.uid}/").content.decode()


def _enqueued_clusters(no_queue) -> list[str]:
    return [call.kwargs.get("cluster") for call in no_queue.call_args_list]


# --- the settings page -------------------------------------------------------------------------


def test_saving_another_configuration_moves_the_waiting_rotation_to_its_gateway(
    personas, record, queued, working, no_queue, django_capture_on_commit_callbacks
):
    client = login(personas.editor)
    with django_capture_on_commit_callbacks(execute=True):
        response = _save(client, record, working)
    assert response.status_code == 302
    rotation = _fresh(queued)
    assert rotation.status == Rotation.QUEUED
    assert (rotation.configuration, rotation.gateway_name) == (working, "default")
    assert _enqueued_clusters(no_queue) == ["default"]
    page = _messages(client, record)
    assert "Password Rotation Settings saved." in page
    assert "The rotation waiting for the gateway “gw2” now goes to “default”" in page
    event = AuditEvent.objects.get(action="rotation.rerouted")
    assert event.actor == personas.editor
    assert event.details["from_gateway"] == "gw2" and event.details["gateway"] == "default"


def test_the_record_page_then_names_the_working_gateway(personas, record, queued, working):
    client = login(personas.editor)
    _save(client, record, working)
    page = client.get(f"/records/{record.uid}/").content.decode()
    gateway = page.split("<dt>Gateway</dt>", 1)[1].split("</dd>", 1)[0]
    assert "default" in gateway and "gw2" not in gateway


def test_a_moved_rotation_runs_on_the_new_gateway(personas, record, queued, working):
    _save(login(personas.editor), record, working)
    with mock.patch.object(engine, "_secret_if_possible", return_value=None):
        claimed = engine.rotations_claim_batch(gateway_name="default", limit=20)
    assert [r.pk for r in claimed] == [queued.pk]
    assert claimed[0].configuration == working
    assert engine.rotations_claim_batch(gateway_name="gw2", limit=20) is None


def test_a_worker_that_read_the_rotation_before_it_moved_cannot_claim_it(
    personas, record, queued, working
):
    with mock.patch.object(engine, "_secret_if_possible", return_value=None):
        stale = engine._claimable().get(pk=queued.pk)
        _save(login(personas.editor), record, working)
        assert engine._claim_all([engine._prepare_claim(stale)], timezone.now()) == set()
    assert _fresh(queued).status == Rotation.QUEUED


def test_saving_the_same_configuration_leaves_the_rotation_alone(
    personas, record, queued, stuck, no_queue, django_capture_on_commit_callbacks
):
    client = login(personas.editor)
    with django_capture_on_commit_callbacks(execute=True):
        _save(client, record, stuck, length="40")
    assert _fresh(queued).gateway_name == "gw2"
    assert _enqueued_clusters(no_queue) == []
    assert not AuditEvent.objects.filter(action__startswith="rotation.re").exists()
    page = _messages(client, record)
    assert "Password Rotation Settings saved." in page and "waiting for" not in page


def test_another_configuration_on_the_same_gateway_is_used_without_a_new_task(
    personas, record, stuck, no_queue, django_capture_on_commit_callbacks
):
    queued = engine.rotation_request(record=_on(record, stuck), trigger="on_demand")
    sibling = make_configuration(personas.folder, stuck.gateway, title="Sibling")
    client = login(personas.editor)
    with django_capture_on_commit_callbacks(execute=True):
        _save(client, record, sibling)
    rotation = _fresh(queued)
    assert (rotation.configuration, rotation.gateway_name) == (sibling, "gw2")
    assert _enqueued_clusters(no_queue) == []  # its task is already on that gateway
    assert "The waiting rotation now uses the configuration “Sibling”" in _messages(client, record)


def _on(record, config):
    make_settings(record, config)
    return record


def test_saving_disabled_with_another_configuration_cancels_the_waiting_rotation(
    personas, record, queued, working
):
    client = login(personas.editor)
    _save(client, record, working, enabled="")
    assert not RotationSettings.objects.get(pam_user=record).enabled
    rotation = _fresh(queued)
    assert rotation.status == Rotation.FAILED
    assert rotation.error.startswith("Cancelled by editor before it started")
    assert "disabled" in rotation.error
    page = _messages(client, record)
    assert "The rotation waiting for the gateway “gw2” was cancelled" in page
    assert AuditEvent.objects.filter(action="rotation.cancelled").count() == 1


def test_a_rotation_that_is_running_stays_and_the_page_says_so(
    personas, record, queued, working, no_queue, django_capture_on_commit_callbacks
):
    Rotation.objects.filter(pk=queued.pk).update(status=Rotation.RUNNING, attempts=1)
    client = login(personas.editor)
    with django_capture_on_commit_callbacks(execute=True):
        _save(client, record, working)
    rotation = _fresh(queued)
    assert (rotation.status, rotation.gateway_name) == (Rotation.RUNNING, "gw2")
    assert _enqueued_clusters(no_queue) == []
    assert "already running on the gateway “gw2”" in _messages(client, record)


def test_a_queued_rotation_holding_a_committed_password_stays_and_the_page_says_so(
    personas, record, queued, working
):
    queued.set_secret("pending_password", "Pending-Passw0rd!1")
    Rotation.objects.filter(pk=queued.pk).update(
        pending_password_enc=queued.pending_password_enc,
        pending_may_be_live=True,
        attempts=1,
        unanswered_until=timezone.now() + timedelta(minutes=5),
    )
    client = login(personas.editor)
    _save(client, record, working)
    rotation = _fresh(queued)
    assert (rotation.status, rotation.gateway_name) == (Rotation.QUEUED, "gw2")
    page = _messages(client, record)
    assert "stays with the gateway “gw2”" in page
    assert "Cancel rotation" in page  # the way out, if gw2 never comes back


# --- the service, for what the form cannot submit -----------------------------------------------


def test_settings_the_new_configuration_cannot_run_cancel_the_waiting_rotation(
    personas, record, queued
):
    unshared = Gateway.objects.create(name="gw3")  # belongs to no application
    config = make_configuration(personas.folder, unshared, title="No application")
    rs = RotationSettings.objects.get(pam_user=record)
    rs.configuration = config
    rs.save()
    outcome = engine.rotation_follow_settings(record=record, rs=rs, actor=personas.editor)
    assert outcome.outcome == "cancelled"
    assert "belongs to no application" in outcome.message
    rotation = _fresh(queued)
    assert rotation.status == Rotation.FAILED and "belongs to no application" in rotation.error


def test_nothing_to_follow_without_an_active_rotation(personas, record, working):
    rs = make_settings(record, working)
    assert engine.rotation_follow_settings(record=record, rs=rs) is None


# --- pam rotation edit -------------------------------------------------------------------------


def test_pam_rotation_edit_moves_the_waiting_rotation_and_says_so(record, queued, working):
    code, out, err = call_pam("rotation", "edit", "--record", record.uid, "--config", working.uid)
    assert code == 0, err
    line = json.loads(out)
    assert line["queued_rotation"] == {
        "rotation": queued.uid,
        "outcome": "rerouted",
        "gateway": "default",
        "note": mock.ANY,
    }
    assert _fresh(queued).gateway_name == "default"
    event = AuditEvent.objects.get(action="rotation.rerouted")
    assert event.actor_kind == "cli"


def test_pam_rotation_edit_without_a_waiting_rotation_prints_as_before(record, working):
    make_settings(record, working)
    code, out, err = call_pam("rotation", "edit", "--record", record.uid, "--on-demand")
    assert code == 0, err
    assert "queued_rotation" not in json.loads(out)
