"""A worker whose database fails mid-rotation hands its rotations back at once (issue 11,
finding 2): they run again as soon as the database answers, not when their leases run out."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import OperationalError

from rotation import engine, gateways
from rotation.models import Rotation

pytestmark = pytest.mark.django_db


def _queued(world, n: int) -> list[Rotation]:
    return [
        engine.rotation_request(record=world.user(f"User{i}"), trigger="on_demand")
        for i in range(n)
    ]


def test_a_drain_whose_database_fails_hands_its_batch_back(world):
    rotations = _queued(world, 3)
    lost = OperationalError("no answer from the database within 30 s (read_timeout)")
    with (
        mock.patch.object(engine, "rotations_finish", side_effect=lost),
        mock.patch("rotation.dispatch.enqueue_drains") as drains,
        pytest.raises(OperationalError),
    ):
        gateways.gateway_drain(gateway_name=rotations[0].gateway_name)
    for rotation in rotations:
        rotation.refresh_from_db()
        assert rotation.status == Rotation.QUEUED
        # AWS took the password; the vault had not recorded it: kept, and may be live.
        assert rotation.holds_possibly_live_password is False  # queued, not failed
        assert rotation.pending_may_be_live and rotation.has_secret("pending_password")
    drains.assert_called_once_with({rotations[0].gateway_name: 3})
    # The next drain finishes them with the password AWS already holds.
    assert gateways.gateway_drain(gateway_name=rotations[0].gateway_name) == 3
    for rotation in rotations:
        rotation.refresh_from_db()
        assert rotation.status == Rotation.SUCCEEDED
        record = rotation.pam_user
        assert record.get_secret("password") == world.aws_password(record.login)


def test_a_rotation_already_taken_over_is_not_handed_back(world):
    [rotation] = _queued(world, 1)
    claimed = engine.rotation_claim_with_pending(rotation_id=rotation.pk)
    Rotation.objects.filter(pk=rotation.pk).update(attempts=claimed.attempts + 1)  # recovered
    assert engine.rotations_release(rotations=[claimed]) == 0
    rotation.refresh_from_db()
    assert rotation.status == Rotation.RUNNING


def test_release_retries_until_the_database_answers(world):
    [rotation] = _queued(world, 1)
    claimed = engine.rotation_claim_with_pending(rotation_id=rotation.pk)
    real = engine._hand_back
    failures = iter([OperationalError("down"), OperationalError("down")])

    def flaky(r, now):
        failure = next(failures, None)
        if failure:
            raise failure
        return real(r, now)

    with (
        mock.patch.object(engine, "_hand_back", side_effect=flaky),
        mock.patch.object(engine, "RELEASE_RETRY_SECONDS", 0),
        mock.patch.object(engine.db_connection, "close"),
        mock.patch("rotation.dispatch.enqueue_drains"),
    ):
        assert engine.rotations_release(rotations=[claimed]) == 1
    rotation.refresh_from_db()
    assert rotation.status == Rotation.QUEUED
