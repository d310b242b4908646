"""A request that went unanswered may still reach AWS later: it must never overwrite a newer
password unnoticed (issue 11, finding 1). Through the fault proxy: it holds one
UpdateLoginProfile past the read timeout, then delivers it to the emulator."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from rotation import engine
from rotation.models import Rotation
from tests.faultproxy import FaultProxy
from tests.rotation.conftest import AwsWorld

pytestmark = pytest.mark.django_db

UPDATE = "Action=UpdateLoginProfile"
HELD = 2.5  # seconds the proxy holds the first request: longer than the read timeout
WINDOW = 4  # the stale-request window in these tests: longer than HELD


@pytest.fixture
def proxy(emulator):
    proxy = FaultProxy(emulator.endpoint).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def slow_world(personas, emulator, proxy, settings):
    # botocore retries on its own (as by default), with a short read timeout.
    settings.AWS_MAX_ATTEMPTS = 3
    settings.AWS_READ_TIMEOUT = 1
    settings.ROTATION_UNANSWERED_WINDOW_SECONDS = WINDOW
    return AwsWorld(personas, emulator, endpoint=proxy.endpoint)


def run(rotation: Rotation) -> Rotation:
    engine.rotation_run(rotation_id=rotation.pk)
    rotation.refresh_from_db()
    return rotation


def request(record) -> Rotation:
    return engine.rotation_request(record=record, trigger="on_demand")


def wait_until_delivered(proxy: FaultProxy) -> None:
    """Until the held request has reached the emulator (the proxy counts it once forwarded)."""
    deadline = time.monotonic() + HELD + 5
    while not proxy.counters["slow"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proxy.counters["slow"], "the held request was never delivered"


def test_a_success_after_an_unanswered_attempt_records_until_when_it_may_still_arrive(
    slow_world, proxy
):
    record = slow_world.user()
    proxy.slow(HELD, match=UPDATE)
    before = timezone.now()
    first = run(request(record))
    assert first.status == Rotation.SUCCEEDED, first.error
    assert first.unanswered_until is not None
    assert first.unanswered_until >= before + timedelta(seconds=WINDOW)


def test_the_next_rotation_waits_until_the_unanswered_request_can_no_longer_arrive(
    slow_world, proxy
):
    record = slow_world.user()
    proxy.slow(HELD, match=UPDATE)
    first = run(request(record))
    assert first.status == Rotation.SUCCEEDED, first.error
    second = request(record)
    assert engine.rotation_run(rotation_id=second.pk) == "skipped"
    second.refresh_from_db()
    assert second.status == Rotation.QUEUED
    assert engine.rotation_wait_until(record) == first.unanswered_until


def test_a_delayed_request_cannot_overwrite_a_newer_password(slow_world, proxy):
    record = slow_world.user()
    proxy.slow(HELD, match=UPDATE)
    first = run(request(record))
    assert first.status == Rotation.SUCCEEDED, first.error
    second = request(record)
    run(second)  # before the fix: sets a newer password that the held request then overwrites
    wait_until_delivered(proxy)
    deadline = time.monotonic() + WINDOW + 5
    while second.status == Rotation.QUEUED and time.monotonic() < deadline:
        time.sleep(0.2)
        run(second)
    assert second.status == Rotation.SUCCEEDED, second.error
    wait_until_delivered(proxy)
    record.refresh_from_db()
    assert record.get_secret("password") == slow_world.aws_password("TestUser")


def test_an_ambiguous_failure_makes_the_next_rotation_wait_too(slow_world, proxy, settings):
    settings.ROTATION_MAX_ATTEMPTS = 1
    settings.AWS_MAX_ATTEMPTS = 1
    record = slow_world.user()
    proxy.slow(HELD, match=UPDATE)
    first = run(request(record))
    assert first.status == Rotation.FAILED
    assert first.holds_possibly_live_password
    assert first.unanswered_until is not None
    second = request(record)
    assert engine.rotation_run(rotation_id=second.pk) == "skipped"


def test_an_answered_rotation_sets_no_window(slow_world):
    record = slow_world.user()
    first = run(request(record))
    assert first.status == Rotation.SUCCEEDED, first.error
    assert first.unanswered_until is None
    assert engine.rotation_wait_until(record) is None
    assert run(request(record)).status == Rotation.SUCCEEDED


def test_the_candidate_is_retired_after_the_window_when_nothing_else_happened(slow_world, proxy):
    record = slow_world.user()
    proxy.slow(HELD, match=UPDATE)
    first = run(request(record))
    assert first.holds_unanswered_password
    Rotation.objects.filter(pk=first.pk).update(
        unanswered_until=timezone.now() - timedelta(seconds=1)
    )
    assert engine.rotations_retire_unanswered() == 1
    first.refresh_from_db()
    assert not first.holds_unanswered_password


def test_the_candidate_stays_when_the_password_changed_during_the_window(slow_world, proxy):
    record = slow_world.user()
    proxy.slow(HELD, match=UPDATE)
    first = run(request(record))
    record.refresh_from_db()
    record.set_secret("password", "Set-By-Hand-123!")
    record.save()
    Rotation.objects.filter(pk=first.pk).update(
        unanswered_until=timezone.now() - timedelta(seconds=1)
    )
    assert engine.rotations_retire_unanswered() == 0
    first.refresh_from_db()
    assert first.holds_unanswered_password
    engine.rotation_resolve(rotation=first, use_pending=False)
    first.refresh_from_db()
    assert not first.holds_unanswered_password


def _expire_lease(rotation: Rotation) -> None:
    Rotation.objects.filter(pk=rotation.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_lease_lost_after_the_write_ahead_counts_as_an_unanswered_request(world, settings):
    """The worker that lost it may have sent its request, which may still arrive."""
    settings.ROTATION_UNANSWERED_WINDOW_SECONDS = 60
    record = world.user()
    rotation = engine.rotation_claim_with_pending(rotation_id=request(record).pk)
    engine.rotation_write_ahead(rotation=rotation)
    _expire_lease(rotation)
    assert engine.rotation_recover() == 1
    rotation.refresh_from_db()
    assert rotation.status == Rotation.QUEUED
    assert rotation.unanswered_until > timezone.now() + timedelta(seconds=50)
    # Its own next attempt sends the same password: it does not wait for itself.
    assert engine.rotation_run(rotation_id=rotation.pk) == Rotation.SUCCEEDED


def test_a_lease_lost_before_the_write_ahead_sets_no_window(world):
    record = world.user()
    rotation = engine.rotation_claim_with_pending(rotation_id=request(record).pk)
    Rotation.objects.filter(pk=rotation.pk).update(pending_password_enc="")
    _expire_lease(rotation)
    engine.rotation_recover()
    rotation.refresh_from_db()
    assert rotation.unanswered_until is None


def test_giving_up_after_lost_leases_says_what_may_have_happened(world, settings):
    settings.ROTATION_MAX_ATTEMPTS = 1
    rotation = engine.rotation_claim_with_pending(rotation_id=request(world.user()).pk)
    _expire_lease(rotation)
    engine.rotation_recover()
    rotation.refresh_from_db()
    assert rotation.status == Rotation.FAILED
    assert rotation.error == engine.lease_lost_message(1)
    assert "took longer than the lease" in rotation.error
    assert rotation.unanswered_until is not None  # its committed password may still arrive


def test_the_record_page_says_until_when_the_next_rotation_waits(world, personas, settings):
    from tests.conftest import login_verified

    settings.ROTATION_UNANSWERED_WINDOW_SECONDS = 300
    record = world.user()
    first = request(record)
    Rotation.objects.filter(pk=first.pk).update(
        status=Rotation.FAILED, unanswered_until=timezone.now() + timedelta(minutes=5)
    )
    request(record)
    answer = login_verified(personas.editor).get(f"/records/{record.uid}/rotation/status/")
    assert answer.status_code == 200
    assert "Waits until" in answer.json()["html"]
    assert "went unanswered" in answer.json()["html"]
    assert "(in 5 minutes)" in answer.json()["html"]


def _succeeded_after_an_unanswered_request(slow_world, proxy) -> tuple:
    record = slow_world.user()
    proxy.slow(HELD, match=UPDATE)
    first = run(request(record))
    assert first.status == Rotation.SUCCEEDED, first.error
    return record, first


def test_pam_get_lists_the_candidate_and_says_until_when_the_next_rotation_waits(slow_world, proxy):
    import json

    from vault.cli import call_pam

    record, first = _succeeded_after_an_unanswered_request(slow_world, proxy)
    code, out, err = call_pam("get", record.uid, "--unmask", "--format", "json")
    assert code == 0, err
    shown = json.loads(out)
    [candidate] = shown["candidates"]
    assert candidate["rotation"] == first.uid and candidate["kind"] == "unanswered"
    assert candidate["password"] == shown["password"]  # nothing else happened: the same
    assert shown["waits_until"] == first.unanswered_until.isoformat()
    assert "went unanswered" in shown["waits_because"]


def test_the_gateway_tick_retires_candidates_whose_request_can_no_longer_arrive(slow_world, proxy):
    from rotation.gateways import gateway_tick

    record, first = _succeeded_after_an_unanswered_request(slow_world, proxy)
    Rotation.objects.filter(pk=first.pk).update(
        unanswered_until=timezone.now() - timedelta(seconds=1)
    )
    assert gateway_tick(gateway_name=first.gateway_name)["retired"] == 1
    first.refresh_from_db()
    assert not first.holds_unanswered_password
