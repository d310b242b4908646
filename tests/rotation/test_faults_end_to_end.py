"""Whole rotations through a fault-injecting proxy in front of the AWS emulator."""

from __future__ import annotations

import pytest

from rotation import engine
from rotation.models import Rotation
from tests.faultproxy import FaultProxy
from tests.rotation.conftest import AwsWorld

pytestmark = pytest.mark.django_db

UPDATE = "Action=UpdateLoginProfile"


@pytest.fixture
def proxy(emulator):
    proxy = FaultProxy(emulator.endpoint).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def faulty_world(personas, emulator, proxy, settings):
    settings.AWS_MAX_ATTEMPTS = 1  # every fault reaches the state machine
    return AwsWorld(personas, emulator, endpoint=proxy.endpoint)


def rotate(record) -> Rotation:
    rotation = engine.rotation_request(record=record, trigger="on_demand")
    engine.rotation_run(rotation_id=rotation.pk)
    rotation.refresh_from_db()
    return rotation


def test_answer_dropped_after_aws_applied_the_change_ends_with_the_new_password(
    faulty_world, proxy
):
    record = faulty_world.user()
    proxy.drop_after(match=UPDATE)
    rotation = rotate(record)
    assert rotation.status == Rotation.SUCCEEDED, rotation.error
    assert rotation.attempts == 2
    record.refresh_from_db()
    assert record.get_secret("password") == faulty_world.aws_password("TestUser")


def test_throttling_then_success_succeeds(faulty_world, proxy):
    record = faulty_world.user()
    proxy.throttle(match=UPDATE, times=2)
    rotation = rotate(record)
    assert rotation.status == Rotation.SUCCEEDED, rotation.error
    record.refresh_from_db()
    assert record.get_secret("password") == faulty_world.aws_password("TestUser")


def test_server_errors_then_success_succeed(faulty_world, proxy):
    record = faulty_world.user()
    proxy.status(503, match=UPDATE, times=2)
    rotation = rotate(record)
    assert rotation.status == Rotation.SUCCEEDED, rotation.error
    record.refresh_from_db()
    assert record.get_secret("password") == faulty_world.aws_password("TestUser")


def test_answers_always_dropped_keep_the_applied_password_as_may_be_live(
    faulty_world, proxy, settings
):
    settings.ROTATION_MAX_ATTEMPTS = 3
    record = faulty_world.user()
    proxy.drop_after(match=UPDATE, times=None)
    rotation = rotate(record)
    assert rotation.status == Rotation.FAILED
    assert rotation.holds_possibly_live_password
    # AWS holds the pending password; the vault still has it, beside the old current one.
    assert rotation.get_secret("pending_password") == faulty_world.aws_password("TestUser")
    record.refresh_from_db()
    assert record.get_secret("password") == "Initial-Passw0rd!"


def test_server_errors_until_the_cap_fail_with_a_message(faulty_world, proxy, settings):
    settings.ROTATION_MAX_ATTEMPTS = 2
    record = faulty_world.user()
    proxy.status(500, match=UPDATE, times=None)
    rotation = rotate(record)
    assert rotation.status == Rotation.FAILED
    assert "gave up after 2 attempts" in rotation.error
