"""Rotations in bulk: many requests at once, drains working through a gateway's queue in
batches, and the scheduler's pass whose cost follows batches, not records."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import OutboxMessage
from rotation import aws, dispatch, engine, gateways, scheduler
from rotation.models import Rotation, RotationSettings
from rotation.schedules import next_run
from tests.conftest import make_pam_user
from vault.models import AuditEvent, PasswordVersion

pytestmark = pytest.mark.django_db

DAILY = {"type": "DAILY", "time": "02:00", "tz": "UTC", "intervalCount": 1}
WEEKLY = {"type": "WEEKLY", "time": "09:30", "weekday": "MONDAY", "tz": "Europe/Berlin"}


@pytest.fixture(autouse=True)
def enqueued():
    with mock.patch("rotation.dispatch.async_task") as async_task:
        yield async_task


def _funcs(async_task) -> list[str]:
    return [c.args[0] for c in async_task.call_args_list]


def test_request_many_queues_one_rotation_per_record_and_says_why_not_for_the_rest(world, personas):
    ready = [world.user(f"ready-{n}") for n in range(3)]
    busy = world.user("busy")
    already = engine.rotation_request(record=busy, trigger="on_demand")
    disabled = world.user("disabled", enabled=False)
    unset = make_pam_user(personas.folder, "no-settings")

    active, problems = engine.rotation_request_many(
        records=[*ready, busy, disabled, unset], trigger="cli"
    )

    assert set(active) == {r.uid for r in ready} | {busy.uid}
    assert active[busy.uid] == already
    assert {r.uid for r in ready} == {
        r.pam_user.uid for r in Rotation.objects.filter(trigger="cli", status=Rotation.QUEUED)
    }
    assert "disabled" in problems[disabled.uid]
    assert "not set up" in problems[unset.uid]


def test_request_many_commits_in_chunks_and_hands_each_to_the_gateway_as_it_commits(
    world, monkeypatch, enqueued, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(engine, "REQUEST_CHUNK", 2)
    records = [world.user(f"chunk-{n}") for n in range(5)]
    with django_capture_on_commit_callbacks(execute=True):
        busy = engine.rotation_request(record=records[3], trigger="on_demand")
    enqueued.reset_mock()

    with django_capture_on_commit_callbacks(execute=True) as commits:
        active, problems = engine.rotation_request_many(records=records, trigger="cli")

    assert len(commits) == 3  # 2 + 2 + 1 records: one commit, and one handover, each
    new = Rotation.objects.filter(trigger="cli", status=Rotation.QUEUED)
    handed = [c.args[1] for c in enqueued.call_args_list]  # at most `workers`: one task each
    assert sorted(handed) == sorted(new.values_list("pk", flat=True)) and len(handed) == 4
    assert set(active) == {r.uid for r in records} and not problems
    assert active[records[3].uid] == busy


def test_request_many_names_what_to_share_when_the_folder_is_not_shared(world, personas):
    record = world.user()
    personas.application.folders.clear()

    active, problems = engine.rotation_request_many(records=[record], trigger="cli")

    assert active == {}
    problem = problems[record.uid]
    assert f"“{record.folder.name}” is not shared to the application “Rotation App”" in problem
    assert "an administrator of “Rotation App”" in problem and "must share it, editable" in problem
    assert not Rotation.objects.filter(pam_user=record).exists()


def test_request_many_hands_a_large_batch_to_drain_tasks(
    world, enqueued, settings, django_capture_on_commit_callbacks
):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 2}
    records = [world.user(f"many-{n}") for n in range(30)]

    with django_capture_on_commit_callbacks(execute=True):
        engine.rotation_request_many(records=records, trigger="cli")

    assert _funcs(enqueued) == ["rotation.tasks.drain_gateway"] * 2
    assert {c.kwargs["cluster"] for c in enqueued.call_args_list} == {"default"}


def test_request_many_gives_a_small_batch_a_task_per_rotation(
    world, enqueued, django_capture_on_commit_callbacks
):
    records = [world.user(f"few-{n}") for n in range(2)]

    with django_capture_on_commit_callbacks(execute=True):
        active, _ = engine.rotation_request_many(records=records, trigger="cli")

    assert _funcs(enqueued) == ["rotation.tasks.run_rotation"] * 2
    assert sorted(c.args[1] for c in enqueued.call_args_list) == sorted(
        r.pk for r in active.values()
    )


def test_a_drain_rotates_every_queued_rotation_and_vault_and_aws_agree(world):
    records = [world.user(f"drained-{n}") for n in range(dispatch.DRAIN_BATCH + 5)]
    engine.rotation_request_many(records=records, trigger="cli")

    assert gateways.gateway_drain(gateway_name="default") == len(records)

    held = world.emulator.passwords()
    for record in records:
        record.refresh_from_db()
        assert record.get_secret("password") == held[record.login] != "Initial-Passw0rd!"
        assert record.rotation_settings.last_status == Rotation.SUCCEEDED
    assert set(Rotation.objects.values_list("status", flat=True)) == {Rotation.SUCCEEDED}
    assert PasswordVersion.objects.filter(source="rotation").count() == len(records)
    assert AuditEvent.objects.filter(action="rotation.on_demand.ok").count() == len(records)


def test_a_batch_is_claimed_with_one_update_that_writes_each_pending_password(world):
    records = [world.user(f"claimed-{n}") for n in range(4)]
    engine.rotation_request_many(records=records, trigger="cli")
    with CaptureQueriesContext(connection) as captured:
        claimed = engine.rotations_claim_batch(gateway_name="default", limit=10)
    updates = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 1 and "RETURNING" in updates[0]
    assert sorted(r.pam_user_id for r in claimed) == sorted(r.pk for r in records)
    secrets = set()
    for rotation in claimed:
        stored = Rotation.objects.get(pk=rotation.pk)
        assert (stored.status, stored.attempts) == (Rotation.RUNNING, 1)
        assert stored.get_secret("pending_password") == rotation.get_secret("pending_password")
        secrets.add(stored.get_secret("pending_password"))
    assert len(secrets) == len(records)


def test_a_second_claim_of_the_same_rows_wins_none_of_them(world):
    records = [world.user(f"raced-{n}") for n in range(3)]
    engine.rotation_request_many(records=records, trigger="cli")
    read = list(engine._claimable().filter(gateway_name="default"))
    first = engine.rotations_claim_batch(gateway_name="default", limit=10)
    assert len(first) == 3
    # A worker that read the rows before the first claim: its conditions no longer hold.
    late = [engine._prepare_claim(rotation) for rotation in read]
    assert engine._claim_all(late, timezone.now()) == set()
    for rotation in first:
        stored = Rotation.objects.get(pk=rotation.pk)
        assert stored.get_secret("pending_password") == rotation.get_secret("pending_password")
        assert stored.attempts == 1


def test_a_drain_writes_its_batchs_audit_events_and_their_outbox_rows_in_one_insert_each(world):
    records = [world.user(f"audited-{n}") for n in range(4)]
    engine.rotation_request_many(records=records, trigger="cli")
    with CaptureQueriesContext(connection) as captured:
        assert gateways.gateway_drain(gateway_name="default") == len(records)
    inserts = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("INSERT")]
    assert sum('"vault_auditevent"' in q for q in inserts) == 1
    assert sum('"events_outboxmessage"' in q for q in inserts) == 1
    events = AuditEvent.objects.filter(action="rotation.on_demand.ok")
    assert sorted(events.values_list("object_uid", flat=True)) == sorted(r.uid for r in records)
    # What derives from audit events hears of these as of events written one by one.
    assert OutboxMessage.objects.filter(event__in=events, consumer="webhooks").count() == 4


def test_a_drain_finishes_the_rest_of_a_batch_when_one_rotation_was_taken_over(world):
    records = [world.user(f"batch-{n}") for n in range(4)]
    engine.rotation_request_many(records=records, trigger="cli")
    stolen = records[1]
    real = engine.rotations_finish

    def taken_over_before_recorded(*, done):
        # Between its AWS call and the record: its lease ran out; another worker claimed it.
        Rotation.objects.filter(pam_user=stolen).update(attempts=9)
        return real(done=done)

    with mock.patch("rotation.engine.rotations_finish", side_effect=taken_over_before_recorded):
        gateways.gateway_drain(gateway_name="default")

    held = world.emulator.passwords()
    for record in records:
        record.refresh_from_db()
        rotation = Rotation.objects.get(pam_user=record)
        if record == stolen:
            assert rotation.status == Rotation.RUNNING  # the other worker's to finish
            assert rotation.get_secret("pending_password") == held[record.login]
        else:
            assert rotation.status == Rotation.SUCCEEDED
            assert record.get_secret("password") == held[record.login]


def test_a_drain_keeps_the_pending_password_of_a_failure_after_an_ambiguous_answer(world):
    records = [world.user(f"mixed-{n}") for n in range(3)]
    engine.rotation_request_many(records=records, trigger="cli")
    real = aws.set_console_password
    answers = [
        aws.AwsTransient("closed", "ConnectionClosed", may_have_applied=True),
        aws.AwsRefused("denied", "AccessDenied"),
    ]

    def second_one_fails(config, *, login, password):
        if login == records[1].login and answers:
            raise answers.pop(0)
        real(config, login=login, password=password)

    with mock.patch("rotation.aws.set_console_password", side_effect=second_one_fails):
        gateways.gateway_drain(gateway_name="default")

    failed = Rotation.objects.get(pam_user=records[1])
    assert failed.holds_possibly_live_password
    for record in (records[0], records[2]):
        record.refresh_from_db()
        assert record.get_secret("password") == world.aws_password(record.login)


def _make_due(records, minutes: int = 5) -> None:
    RotationSettings.objects.filter(pam_user__in=records).update(
        next_run_at=timezone.now() - timedelta(minutes=minutes)
    )


def _pass_queries(batch_size: int) -> int:
    with CaptureQueriesContext(connection) as queries:
        scheduler.rotation_schedule_due(batch_size=batch_size)
    return len(queries)


def test_a_scheduler_pass_costs_the_same_queries_for_more_records_in_one_batch(world):
    few = [world.user(f"few-{n}", schedule=DAILY) for n in range(5)]
    _make_due(few)
    queries_for_few = _pass_queries(batch_size=100)
    more = [world.user(f"more-{n}", schedule=DAILY) for n in range(40)]
    _make_due(more)

    assert _pass_queries(batch_size=100) == queries_for_few


def test_a_scheduler_pass_costs_queries_per_batch(world):
    records = [world.user(f"batched-{n}", schedule=DAILY) for n in range(20)]
    _make_due(records[:10])
    one_batch = _pass_queries(batch_size=10) - _pass_queries(batch_size=10)  # 1 full + 1 empty
    _make_due(records)
    Rotation.objects.all().delete()

    assert _pass_queries(batch_size=10) - _pass_queries(batch_size=10) == 2 * one_batch


def test_a_scheduler_pass_gives_each_record_the_next_run_of_its_own_schedule(world):
    daily = [world.user(f"daily-{n}", schedule=DAILY) for n in range(3)]
    weekly = [world.user(f"weekly-{n}", schedule=WEEKLY) for n in range(2)]
    _make_due(daily + weekly)
    before = timezone.now()

    assert scheduler.rotation_schedule_due() == 5

    for records, schedule in ((daily, DAILY), (weekly, WEEKLY)):
        for record in records:
            rs = RotationSettings.objects.get(pam_user=record)
            assert (
                next_run(schedule, before) <= rs.next_run_at <= next_run(schedule, rs.next_run_at)
            )
            assert Rotation.objects.filter(pam_user=record, trigger="scheduled").count() == 1


def test_a_scheduler_pass_starts_a_gateways_drains_once_and_again_at_the_end(
    world, enqueued, django_capture_on_commit_callbacks
):
    records = [world.user(f"due-{n}", schedule=DAILY) for n in range(25)]
    _make_due(records)

    with django_capture_on_commit_callbacks(execute=True):
        assert scheduler.rotation_schedule_due(batch_size=10) == 25

    drains = [c for c in enqueued.call_args_list if c.args[0] == "rotation.tasks.drain_gateway"]
    assert 2 <= len(drains) <= 4  # up to 2 drains when work starts, up to 2 more at the end
    assert {c.args[1] for c in drains} == {"default"}


def test_a_busy_record_gets_no_second_rotation_from_the_scheduler(world):
    record = world.user("busy", schedule=DAILY)
    engine.rotation_request(record=record, trigger="on_demand")
    _make_due([record])

    assert scheduler.rotation_schedule_due() == 0

    assert Rotation.objects.filter(pam_user=record).count() == 1
    assert RotationSettings.objects.get(pam_user=record).next_run_at > timezone.now()


def test_a_scheduler_pass_reads_a_large_backlog_window_by_window(world, monkeypatch):
    """The pass reads the due ids a window of batches at a time, most overdue first, and
    claims each window in id order; every due record is requested once, records due at the
    same instant across a window's edge too, and the next window starts where the last
    ended."""
    monkeypatch.setattr(scheduler, "DUE_WINDOW_BATCHES", 2)
    records = [world.user(f"backlog-{n}", schedule=DAILY) for n in range(23)]
    now = timezone.now()
    for n, record in enumerate(records):  # ties in next_run_at, and out of id order
        RotationSettings.objects.filter(pam_user=record).update(
            next_run_at=now - timedelta(minutes=1 + (n * 7) % 5)
        )
    busy = records[5]
    engine.rotation_request(record=busy, trigger="on_demand")

    with CaptureQueriesContext(connection) as queries:
        assert scheduler.rotation_schedule_due(batch_size=3) == 22

    scheduled = Rotation.objects.filter(trigger="scheduled")
    assert sorted(scheduled.values_list("pam_user_id", flat=True)) == sorted(
        r.pk for r in records if r != busy
    )
    assert not RotationSettings.objects.filter(next_run_at__lte=now).exists()
    # 8 batches in 4 windows of 6: per window its ids and where it ends; per batch a few.
    assert len(queries) <= 4 * 2 + 8 * 6
