"""Cancelling a queued rotation that has not started (issue 12, defect 1): one conditional
UPDATE, queued -> failed with who cancelled it, audited where each party looks. A queued
rotation whose pending password an earlier attempt committed may have reached AWS: cancelling
it keeps that password as "may be live", exactly as a failure does."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from rotation import dashboard, engine
from rotation.candidates import MAY_BE_LIVE, password_candidates
from rotation.models import Rotation, RotationSettings
from tests.conftest import make_configuration
from tests.rotation.conftest import make_settings
from vault.models import AuditEvent, Gateway, PamConfiguration, SharedFolder

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue():
    """Nothing goes to django-q2 here: the tests call the engine themselves."""
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


@pytest.fixture
def offline_gateway(personas):
    """A gateway created with a configuration and never started (the defect's "gw2")."""
    return Gateway.objects.create(name="gw2", application=personas.application)


@pytest.fixture
def stuck_config(personas, offline_gateway):
    return make_configuration(personas.folder, offline_gateway, title="Never started")


@pytest.fixture
def queued(personas, record, stuck_config):
    make_settings(record, stuck_config)
    return engine.rotation_request(record=record, trigger="on_demand", requested_by=personas.editor)


def _fresh(rotation: Rotation) -> Rotation:
    return Rotation.objects.get(pk=rotation.pk)


# --- the transition ----------------------------------------------------------------------------


def test_cancel_ends_a_queued_rotation_as_failed_saying_who_cancelled_it(personas, queued):
    engine.rotation_cancel(rotation=queued, actor=personas.editor)
    rotation = _fresh(queued)
    assert rotation.status == Rotation.FAILED
    assert rotation.error == "Cancelled by editor before it started."
    assert rotation.finished_at is not None
    assert not rotation.pending_may_be_live and not rotation.has_secret("pending_password")
    assert RotationSettings.objects.get(pam_user=queued.pam_user).last_status == "failed"


def test_cancel_from_the_command_line_says_so(queued):
    engine.rotation_cancel(rotation=queued, actor_kind="cli")
    assert _fresh(queued).error == "Cancelled from the command line before it started."


def test_a_cancel_reason_is_part_of_the_error(personas, queued):
    engine.rotation_cancel(rotation=queued, actor=personas.editor, reason="wrong account")
    assert _fresh(queued).error == "Cancelled by editor before it started: wrong account."


def test_cancel_is_audited_in_the_records_folder_with_the_canceller(personas, queued):
    engine.rotation_cancel(rotation=queued, actor=personas.editor)
    event = AuditEvent.objects.get(action="rotation.cancelled")
    assert event.actor == personas.editor
    assert event.folder == personas.folder and event.object_uid == queued.pam_user.uid
    assert event.details["rotation"] == queued.uid
    assert event.details["gateway"] == "gw2"
    assert event.details["may_be_live"] is False


def test_cancel_is_audited_in_the_configurations_folder_too(personas, record, offline_gateway):
    elsewhere = SharedFolder.objects.create(name="Configurations")
    config = make_configuration(elsewhere, offline_gateway, title="Kept elsewhere")
    make_settings(record, config)
    rotation = Rotation.objects.create(
        pam_user=record,
        configuration=config,
        gateway_name="gw2",
        trigger="on_demand",
        lease_expires_at=engine.lease_deadline(),
    )
    engine.rotation_cancel(rotation=rotation, actor=personas.editor)
    events = AuditEvent.objects.filter(action="rotation.cancelled")
    assert {e.folder for e in events} == {personas.folder, elsewhere}
    in_config = events.get(folder=elsewhere)
    assert in_config.object_uid == config.uid and in_config.details["record"] == record.uid


def test_a_cancelled_record_can_be_rotated_again(personas, queued, record):
    engine.rotation_cancel(rotation=queued, actor=personas.editor)
    again = engine.rotation_request(record=record, trigger="on_demand")
    assert again.pk != queued.pk and again.status == Rotation.QUEUED


def test_the_home_page_counts_a_cancelled_rotation_as_failed_not_rotating(personas, queued):
    before = dashboard.rotation_dashboard(user=personas.editor).counts
    assert (before["rotating"], before["failed"]) == (1, 0)
    engine.rotation_cancel(rotation=queued, actor=personas.editor)
    after = dashboard.rotation_dashboard(user=personas.editor).counts
    assert (after["rotating"], after["failed"]) == (0, 1)


# --- a committed pending password survives --------------------------------------------------------


def _recovered_with_pending(rotation: Rotation) -> Rotation:
    """As after a claim that committed its pending password and a lease that ran out."""
    rotation.set_secret("pending_password", "Pending-Passw0rd!1")
    Rotation.objects.filter(pk=rotation.pk).update(
        status=Rotation.RUNNING,
        attempts=1,
        pending_password_enc=rotation.pending_password_enc,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert engine.rotation_recover(gateway_name=rotation.gateway_name) == 1
    recovered = _fresh(rotation)
    assert recovered.status == Rotation.QUEUED and recovered.pending_may_be_live
    return recovered


def test_cancel_keeps_a_committed_pending_password_as_may_be_live(personas, queued, record):
    recovered = _recovered_with_pending(queued)
    engine.rotation_cancel(rotation=recovered, actor=personas.editor)
    rotation = _fresh(queued)
    assert rotation.status == Rotation.FAILED
    assert rotation.pending_may_be_live
    assert rotation.get_secret("pending_password") == "Pending-Passw0rd!1"
    assert rotation.unanswered_until is not None  # the next rotation still waits for it
    assert "may already hold" in rotation.error
    [candidate] = password_candidates(record)
    assert candidate.kind == MAY_BE_LIVE.name and candidate.rotation.pk == queued.pk
    event = AuditEvent.objects.get(action="rotation.cancelled")
    assert event.details["may_be_live"] is True
    assert "Pending-Passw0rd!1" not in str(event.details)


def test_cancel_decides_what_to_keep_from_the_row_not_from_a_stale_copy(personas, queued):
    """The copy read before a worker committed a pending password says there is none; the
    database's row decides, in the cancelling UPDATE itself."""
    stale = _fresh(queued)
    _recovered_with_pending(queued)
    # A pending password committed but the flag not set (defensive: any committed secret).
    Rotation.objects.filter(pk=queued.pk).update(pending_may_be_live=False)
    engine.rotation_cancel(rotation=stale, actor=personas.editor)
    rotation = _fresh(queued)
    assert rotation.pending_may_be_live and rotation.has_secret("pending_password")


def test_a_record_holding_a_cancelled_may_be_live_password_cannot_be_deleted(personas, queued):
    from django.db.models import ProtectedError

    engine.rotation_cancel(rotation=_recovered_with_pending(queued), actor=personas.editor)
    with pytest.raises(ProtectedError):
        queued.pam_user.delete()


# --- only a queued rotation ----------------------------------------------------------------------


def test_a_running_rotation_cannot_be_cancelled(personas, queued):
    Rotation.objects.filter(pk=queued.pk).update(status=Rotation.RUNNING, attempts=1)
    before = list(Rotation.objects.filter(pk=queued.pk).values())
    with pytest.raises(engine.RotationRequestError, match="has started"):
        engine.rotation_cancel(rotation=queued, actor=personas.editor)
    assert list(Rotation.objects.filter(pk=queued.pk).values()) == before
    assert not AuditEvent.objects.filter(action="rotation.cancelled").exists()


@pytest.mark.parametrize("status", [Rotation.SUCCEEDED, Rotation.FAILED])
def test_a_finished_rotation_cannot_be_cancelled(personas, queued, status):
    Rotation.objects.filter(pk=queued.pk).update(status=status, finished_at=timezone.now())
    with pytest.raises(engine.RotationRequestError, match="already ended"):
        engine.rotation_cancel(rotation=queued, actor=personas.editor)
    assert _fresh(queued).status == status


def test_a_claim_after_the_cancel_finds_nothing_to_run(personas, queued):
    engine.rotation_cancel(rotation=queued, actor=personas.editor)
    assert engine.rotation_run(rotation_id=queued.pk) == "skipped"
    assert engine.rotations_claim_batch(gateway_name="gw2", limit=20) is None
    assert _fresh(queued).status == Rotation.FAILED


def test_a_cancel_after_the_claim_is_refused_and_the_worker_keeps_it(personas, queued):
    with mock.patch.object(engine, "_secret_if_possible", return_value=None):
        claimed = engine.rotation_claim_with_pending(rotation_id=queued.pk)
    assert claimed is not None
    with pytest.raises(engine.RotationRequestError):
        engine.rotation_cancel(rotation=queued, actor=personas.editor)
    assert _fresh(queued).status == Rotation.RUNNING


# --- the configuration it used can then be deleted (part 4) -------------------------------------


def test_the_configuration_of_a_cancelled_rotation_can_be_deleted(
    personas, queued, record, stuck_config
):
    from django.db.models import ProtectedError

    working = make_configuration(personas.folder, personas.gateway, title="Working")
    RotationSettings.objects.filter(pam_user=record).update(configuration=working)
    with pytest.raises(ProtectedError, match="queued"):  # the defect: no way out
        stuck_config.delete()
    engine.rotation_cancel(rotation=queued, actor=personas.editor)
    stuck_config.delete()
    assert not PamConfiguration.objects.filter(pk=stuck_config.pk).exists()
    rotation = _fresh(queued)
    assert rotation.configuration is None and rotation.status == Rotation.FAILED


def test_the_audit_log_says_who_cancelled_what_in_words(personas, queued):
    from rotation.auditlog import event_sentence

    engine.rotation_cancel(rotation=queued, actor=personas.editor)
    sentence = event_sentence(AuditEvent.objects.get(action="rotation.cancelled"))
    assert sentence.startswith("editor cancelled the queued rotation of ")
    assert "on the gateway “gw2”" in sentence
