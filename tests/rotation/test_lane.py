"""rotation/lane.py and the drain around it: a batch's AWS calls run on the lane's thread,
in order, while the worker's thread records and claims; the lane never uses the database."""

from __future__ import annotations

import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from rotation import aws, dispatch, engine, gateways
from rotation.lane import AwsLane, LaneTouchedDatabase
from rotation.models import Rotation

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def enqueued():
    with mock.patch("rotation.dispatch.async_task") as async_task:
        yield async_task


def calls_by_thread(real):
    """A wrapper of aws.set_console_password that notes each call's login and thread."""
    seen: list[tuple[str, str]] = []

    def call(config, *, login, password):
        seen.append((login, threading.current_thread().name))
        return real(config, login=login, password=password)

    return seen, call


def test_a_drain_makes_its_password_calls_on_the_lane_in_the_batchs_order(world):
    records = [world.user(f"lane-{n}") for n in range(5)]
    engine.rotation_request_many(records=records, trigger="cli")
    seen, call = calls_by_thread(aws.set_console_password)

    with mock.patch("rotation.aws.set_console_password", side_effect=call):
        assert gateways.gateway_drain(gateway_name="default") == 5

    assert [login for login, _ in seen] == [r.login for r in records]
    assert {thread for _, thread in seen} == {"aws-lane_0"}
    held = world.emulator.passwords()
    for record in records:
        record.refresh_from_db()
        assert record.get_secret("password") == held[record.login]
        assert Rotation.objects.get(pam_user=record).status == Rotation.SUCCEEDED


def test_the_next_batch_is_claimed_while_the_lane_is_still_calling_aws(world, monkeypatch):
    monkeypatch.setattr(dispatch, "DRAIN_BATCH", 2)
    records = [world.user(f"overlap-{n}") for n in range(4)]
    engine.rotation_request_many(records=records, trigger="cli")
    second_claim = threading.Event()
    claimed_first_during_call: list[bool] = []
    real_claim, real_set = engine.rotations_claim_batch, aws.set_console_password
    claims = []

    def claim(**kwargs):
        claims.append(kwargs)
        if len(claims) == 2:
            second_claim.set()
        return real_claim(**kwargs)

    def first_call_waits_for_the_claim(config, *, login, password):
        if login == records[0].login:
            # Without the lane this would wait for the whole timeout: the claim comes after.
            claimed_first_during_call.append(second_claim.wait(timeout=10))
        return real_set(config, login=login, password=password)

    monkeypatch.setattr(engine, "rotations_claim_batch", claim)
    with mock.patch(
        "rotation.aws.set_console_password", side_effect=first_call_waits_for_the_claim
    ):
        assert gateways.gateway_drain(gateway_name="default") == 4

    assert claimed_first_during_call == [True]


def test_a_batch_with_a_rotation_the_lane_cannot_run_is_attempted_in_the_workers_thread(world):
    records = [world.user(f"mixed-{n}") for n in range(3)]
    engine.rotation_request_many(records=records, trigger="cli")
    seen, call = calls_by_thread(aws.set_console_password)
    # The claim could not commit the second one's password (its policy unreachable): its
    # attempt writes ahead first, in the worker's thread, so the whole batch runs there.
    real_secret = engine._secret_if_possible

    def no_secret_for_the_second(rotation):
        return None if rotation.pam_user == records[1] else real_secret(rotation)

    with (
        mock.patch("rotation.engine._secret_if_possible", side_effect=no_secret_for_the_second),
        mock.patch("rotation.aws.set_console_password", side_effect=call),
    ):
        gateways.gateway_drain(gateway_name="default")

    assert {thread for _, thread in seen} == {threading.current_thread().name}
    assert set(Rotation.objects.values_list("status", flat=True)) == {Rotation.SUCCEEDED}


def test_a_refused_rotation_does_not_keep_its_batch_off_the_lane(world):
    records = [world.user(f"refused-{n}") for n in range(3)]
    engine.rotation_request_many(records=records, trigger="cli")
    records[1].managed = False  # unmanaged since the request: refused at the claim
    records[1].save()
    seen, call = calls_by_thread(aws.set_console_password)

    with mock.patch("rotation.aws.set_console_password", side_effect=call):
        gateways.gateway_drain(gateway_name="default")

    assert seen == [(records[0].login, "aws-lane_0"), (records[2].login, "aws-lane_0")]
    assert Rotation.objects.get(pam_user=records[1]).status == Rotation.FAILED


def test_a_failed_call_on_the_lane_is_retried_in_the_workers_thread(world, settings):
    settings.ROTATION_RETRY_BACKOFF_SCALE = 0
    records = [world.user(f"retry-{n}") for n in range(2)]
    engine.rotation_request_many(records=records, trigger="cli")
    seen, call = calls_by_thread(aws.set_console_password)
    failures = [aws.AwsTransient("The endpoint did not answer.", "ReadTimeout")]

    def first_one_fails_once(config, *, login, password):
        if login == records[0].login and failures:
            seen.append((login, threading.current_thread().name))
            raise failures.pop()
        return call(config, login=login, password=password)

    with mock.patch("rotation.aws.set_console_password", side_effect=first_one_fails_once):
        gateways.gateway_drain(gateway_name="default")

    first = [thread for login, thread in seen if login == records[0].login]
    assert first == ["aws-lane_0", threading.current_thread().name]
    for record in records:
        record.refresh_from_db()
        assert record.get_secret("password") == world.aws_password(record.login)


def test_the_lane_does_not_call_aws_for_a_rotation_whose_lease_is_no_longer_fresh(world):
    record = world.user("stale")
    engine.rotation_request_many(records=[record], trigger="cli")
    (rotation,) = engine.rotations_claim_batch(gateway_name="default", limit=5)
    secret = engine.rotations_lane_secrets([rotation])[rotation.pk]
    rotation.lease_expires_at = timezone.now() + timedelta(seconds=5)  # most of it spent

    with mock.patch("rotation.aws.set_console_password") as set_password:
        assert engine.rotation_apply(rotation, secret) is None
    set_password.assert_not_called()


def test_only_rotations_read_by_a_claim_can_go_to_the_lane(world):
    record = world.user("unclaimed")
    rotation = engine.rotation_request(record=record, trigger="cli")
    assert engine.rotations_lane_secrets([rotation]) is None


def test_a_step_on_the_lane_cannot_use_the_database(world):
    with AwsLane() as lane:
        result = lane.submit(Rotation.objects.count)
        with pytest.raises(LaneTouchedDatabase):
            result()


def test_leaving_the_lane_cancels_what_has_not_started():
    started, release = threading.Event(), threading.Event()
    ran: list[int] = []

    def blocking(n):
        started.set()
        release.wait(timeout=10)
        ran.append(n)

    with pytest.raises(RuntimeError, match="the worker failed"):
        with AwsLane() as lane:
            lane.submit(blocking, 1)
            lane.submit(ran.append, 2)
            started.wait(timeout=10)
            threading.Timer(0.2, release.set).start()
            raise RuntimeError("the worker failed")
    assert ran == [1]  # the running one finished; the queued one never ran


def test_a_drain_claims_larger_batches_while_the_queue_is_deep(world, monkeypatch, settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 1}
    monkeypatch.setattr(dispatch, "DRAIN_BATCH", 2)
    monkeypatch.setattr(dispatch, "DRAIN_BATCH_SIZES", (2, 4))
    monkeypatch.setattr(dispatch, "DRAIN_TURNS_AHEAD", 1)
    records = [world.user(f"deep-{n}") for n in range(11)]
    engine.rotation_request_many(records=records, trigger="cli")
    limits: list[int] = []
    real_claim = engine.rotations_claim_batch

    def claim(**kwargs):
        limits.append(kwargs["limit"])
        return real_claim(**kwargs)

    monkeypatch.setattr(engine, "rotations_claim_batch", claim)
    assert gateways.gateway_drain(gateway_name="default") == 11

    # 2 claimed (9 left: 4 next), 4 (5 left: 4), 4 (1 left: 2), then the last one and none.
    assert limits == [2, 4, 4, 2, 2]
    assert set(Rotation.objects.values_list("status", flat=True)) == {Rotation.SUCCEEDED}
