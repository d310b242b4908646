"""Many people (and the scheduler) asking for the same record at once get one rotation."""

from __future__ import annotations

import threading
from unittest import mock

import pytest
from django.db import connection

from rotation import engine
from rotation.models import Rotation

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = 50


def test_fifty_concurrent_rotate_requests_make_exactly_one_rotation(world):
    record = world.user()
    start = threading.Barrier(REQUESTS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def click() -> None:
        try:
            start.wait()
            try:
                engine.rotation_request(record=record, trigger="on_demand")
                outcome = "queued"
            except engine.RotationInProgress:
                outcome = "in progress"
            except engine.RotationRequestError as exc:  # "a rotation just finished"
                outcome = str(exc)
            with lock:
                outcomes.append(outcome)
        finally:
            connection.close()  # each thread has its own database connection

    with mock.patch("rotation.dispatch.async_task"):
        threads = [threading.Thread(target=click) for _ in range(REQUESTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    assert len(outcomes) == REQUESTS
    assert outcomes.count("queued") == 1
    assert outcomes.count("in progress") == REQUESTS - 1
    assert Rotation.objects.filter(pam_user=record).count() == 1


@pytest.mark.postgres
def test_a_rotation_finishing_while_its_record_falls_due_does_not_deadlock(world):
    """A scheduler pass holds the due records' settings (FOR UPDATE) and then inserts their
    rotations, whose one-active check waits on a rotation row that an open finish changed;
    a finish that changed the rotation first and then waits for the settings closed the
    cycle (PostgreSQL's "deadlock detected", seen in the two-gateway soak). Finishes take
    the settings first, so the pass skips the record instead."""
    from datetime import timedelta

    from django.utils import timezone

    from rotation import scheduler
    from rotation.models import RotationSettings

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has one writer at a time")
    record = world.user(schedule={"type": "DAILY", "time": "03:00", "tz": "UTC"})
    with mock.patch("rotation.dispatch.async_task"):
        queued = engine.rotation_request(record=record, trigger="on_demand")
        claimed = engine.rotation_claim_with_pending(rotation_id=queued.pk)
    assert claimed is not None
    RotationSettings.objects.filter(pam_user=record).update(
        next_run_at=timezone.now() - timedelta(seconds=1)
    )
    finishing, go_on = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    promote = engine._promote_passwords

    def slow_promote(done, now):  # the finish is under way: its first writes are made
        finishing.set()
        go_on.wait(10)
        return promote(done, now)

    def finish() -> None:
        try:
            engine.rotations_finish(done=[(claimed, "Finished-Passw0rd!1")])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    def schedule() -> None:
        try:
            assert finishing.wait(10)
            threading.Timer(1.0, go_on.set).start()  # the pass reaches its insert meanwhile
            with mock.patch("rotation.dispatch.async_task"):
                scheduler.rotation_schedule_due()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            go_on.set()
            connection.close()

    with mock.patch.object(engine, "_promote_passwords", slow_promote):
        threads = [threading.Thread(target=finish), threading.Thread(target=schedule)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert errors == []
    claimed.refresh_from_db()
    assert claimed.status == Rotation.SUCCEEDED


CLAIMERS = 4


def test_workers_claiming_the_same_batch_at_once_each_rotation_goes_to_one_of_them(world):
    """Drains started together read the same queued rotations and claim them with one UPDATE
    each: every rotation is claimed once, by the worker whose pending password it holds."""
    records = [world.user(f"contended-{n}") for n in range(12)]
    with mock.patch("rotation.dispatch.async_task"):
        engine.rotation_request_many(records=records, trigger="cli")
    start = threading.Barrier(CLAIMERS)
    won: list[list[tuple[int, str]]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def drain() -> None:
        try:
            start.wait()
            claimed = engine.rotations_claim_batch(gateway_name="default", limit=20) or []
            mine = [(r.pk, r.get_secret("pending_password")) for r in claimed]
            with lock:
                won.append(mine)
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(CLAIMERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == [] and len(won) == CLAIMERS
    claims = [claim for mine in won for claim in mine]
    assert sorted(pk for pk, _ in claims) == sorted(
        Rotation.objects.filter(pam_user__in=records).values_list("pk", flat=True)
    )
    for pk, secret in claims:
        stored = Rotation.objects.get(pk=pk)
        assert (stored.status, stored.attempts) == (Rotation.RUNNING, 1)
        assert stored.get_secret("pending_password") == secret


@pytest.mark.postgres
def test_two_workers_claiming_at_once_get_different_rotations(world, monkeypatch):
    """Two drains read the oldest queued rotations at the same moment. On PostgreSQL the
    first one's read locks its rows until its claim commits and the second's skips them, so
    the second claims the next ones instead of preparing the same batch (a new password for
    each) and then losing every row of it to the first."""
    if not engine._claims_skip_locked():
        pytest.skip("PostgreSQL only: SQLite has no row locks (one writer at a time)")
    records = [world.user(f"claim-{n}") for n in range(10)]
    with mock.patch("rotation.dispatch.async_task"):
        engine.rotation_request_many(records=records, trigger="cli")
    first_has_read, second_claimed = threading.Event(), threading.Event()
    real_prepare = engine._prepare_claim

    def prepare(rotation, memo=None):
        if threading.current_thread().name == "first" and not first_has_read.is_set():
            first_has_read.set()  # its rows are read (and, on PostgreSQL, locked)
            second_claimed.wait(timeout=10)
        return real_prepare(rotation, memo)

    monkeypatch.setattr(engine, "_prepare_claim", prepare)
    claimed: dict[str, list] = {}

    def worker(name: str) -> None:
        try:
            if name == "second":
                first_has_read.wait(timeout=10)
            claimed[name] = engine.rotations_claim_batch(gateway_name="default", limit=5)
            if name == "second":
                second_claimed.set()
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,), name=n) for n in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    first, second = ({r.pk for r in claimed[n]} for n in ("first", "second"))
    assert len(first) == len(second) == 5 and not first & second
    assert Rotation.objects.filter(status=Rotation.RUNNING).count() == 10
