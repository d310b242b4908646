"""A worker that outlives its lease (paused, partitioned) while another takes its rotation over:
the vault must still hold every password that may be live in AWS."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from rotation import engine, rotation_settings
from rotation.models import Rotation
from rotation.schedules import next_run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue():
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


def _expire(rotation: Rotation) -> None:
    past = timezone.now() - timedelta(seconds=1)
    Rotation.objects.filter(pk=rotation.pk).update(lease_expires_at=past)
    rotation.lease_expires_at = past  # the stale worker's clock says so too


def _taken_over(record):
    """A claims the rotation, A's lease runs out, recovery re-queues it, B claims it."""
    queued = engine.rotation_request(record=record, trigger="on_demand")
    stale = engine.rotation_claim_with_pending(rotation_id=queued.pk)
    _expire(stale)
    assert engine.rotation_recover() == 1
    fresh = engine.rotation_claim_with_pending(rotation_id=queued.pk)
    return stale, fresh


def test_a_worker_that_lost_its_claim_cannot_replace_the_pending_password(world):
    stale, fresh = _taken_over(world.user())
    pending = engine.rotation_write_ahead(rotation=fresh)

    with pytest.raises(engine.LeaseLost):
        engine.rotation_write_ahead(rotation=stale)

    fresh.refresh_from_db()
    assert fresh.get_secret("pending_password") == pending


def test_a_worker_that_lost_its_claim_does_not_call_aws(world):
    stale, fresh = _taken_over(world.user())

    with mock.patch("rotation.aws.set_console_password") as call:
        assert engine.rotation_run_claimed(rotation=stale) == "skipped"

    call.assert_not_called()


def test_a_stale_worker_finishing_after_a_takeover_changes_nothing(world):
    record = world.user()
    stale, fresh = _taken_over(record)
    pending = engine.rotation_write_ahead(rotation=fresh)

    assert engine.rotation_finish(rotation=stale, password=pending) == "skipped"

    record.refresh_from_db()
    assert record.get_secret("password") == "Initial-Passw0rd!"
    assert Rotation.objects.get(pk=fresh.pk).status == Rotation.RUNNING


def test_recovery_decides_may_be_live_from_the_database_not_from_what_it_read(world):
    record = world.user()
    rotation = engine.rotation_claim_with_pending(
        rotation_id=engine.rotation_request(record=record, trigger="on_demand").pk
    )
    engine.rotation_write_ahead(rotation=rotation)
    _expire(rotation)
    # What recovery read says "no pending password": the worker wrote it just after the read.
    with mock.patch.object(Rotation, "has_secret", return_value=False):
        engine.rotation_recover()

    rotation.refresh_from_db()
    assert rotation.status == Rotation.QUEUED
    assert rotation.pending_may_be_live


def test_recovery_giving_up_keeps_a_pending_password_written_after_its_read(world, settings):
    settings.ROTATION_MAX_ATTEMPTS = 1
    record = world.user()
    rotation = engine.rotation_claim_with_pending(
        rotation_id=engine.rotation_request(record=record, trigger="on_demand").pk
    )
    pending = engine.rotation_write_ahead(rotation=rotation)
    _expire(rotation)
    with mock.patch.object(Rotation, "has_secret", return_value=False):
        engine.rotation_recover()

    rotation.refresh_from_db()
    assert rotation.status == Rotation.FAILED
    assert rotation.holds_possibly_live_password
    assert rotation.get_secret("pending_password") == pending


def test_a_rotation_claimed_long_ago_renews_its_lease_before_calling_aws(world):
    record = world.user()
    rotation = engine.rotation_claim_with_pending(
        rotation_id=engine.rotation_request(record=record, trigger="on_demand").pk
    )
    # It waited in a drain's batch behind slow rotations: most of its lease is gone.
    rotation.lease_expires_at = timezone.now() + timedelta(seconds=1)
    Rotation.objects.filter(pk=rotation.pk).update(lease_expires_at=rotation.lease_expires_at)

    assert engine.rotation_run_claimed(rotation=rotation) == Rotation.SUCCEEDED

    record.refresh_from_db()
    assert record.get_secret("password") == world.aws_password(record.login)


def test_an_edit_of_the_schedule_during_a_rotation_keeps_the_edits_next_run(world):
    record = world.user()
    rotation = engine.rotation_claim_with_pending(
        rotation_id=engine.rotation_request(record=record, trigger="on_demand").pk
    )
    daily = {"type": "DAILY", "time": "02:00", "tz": "UTC", "intervalCount": 1}
    rs = record.rotation_settings
    edited = rotation_settings.rotation_settings_save(
        record=record,
        configuration=rs.configuration,
        schedule=daily,
        use_configuration_schedule=False,
        complexity=rotation_settings.settings_complexity(rs),
        enabled=True,
    )

    assert engine.rotation_run_claimed(rotation=rotation) == Rotation.SUCCEEDED

    rs.refresh_from_db()
    assert rs.next_run_at == edited.next_run_at
    assert rs.next_run_at >= next_run(daily, timezone.now() - timedelta(minutes=1))
    assert rs.last_status == Rotation.SUCCEEDED
