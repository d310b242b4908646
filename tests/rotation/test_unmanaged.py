"""A record that is not managed by the vault (Keeper's `managed` false) is never rotated: not by
its schedule, not on demand (Rotate, `pam action rotate`, Rotate all), and a rotation queued
before it became unmanaged is not run."""

from __future__ import annotations

import importlib
import json
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rotation import dashboard, engine, gateways, scheduler
from rotation.models import Rotation, RotationSettings
from tests.conftest import login, make_pam_user
from vault.cli import call_pam
from vault.models import PamUser

pytestmark = pytest.mark.django_db

DAILY = {"type": "DAILY", "time": "02:00", "tz": "UTC", "intervalCount": 1}
NOT_MANAGED = "not managed by the vault"


@pytest.fixture(autouse=True)
def enqueued():
    with mock.patch("rotation.dispatch.async_task") as async_task:
        yield async_task


def _unmanage(record: PamUser) -> None:
    PamUser.objects.filter(pk=record.pk).update(managed=False)
    record.refresh_from_db()


def _make_due(records, minutes: int = 5) -> None:
    RotationSettings.objects.filter(pam_user__in=records).update(
        next_run_at=timezone.now() - timedelta(minutes=minutes)
    )


# --- the model ---------------------------------------------------------------------------------


def test_a_new_record_is_managed_and_has_no_notes(personas):
    record = make_pam_user(personas.folder, "Fresh")
    record.refresh_from_db()
    assert (record.managed, record.notes) == (True, "")


def test_the_migration_makes_every_existing_record_managed_without_notes():
    migration = importlib.import_module("vault.migrations.0003_pamuser_notes_managed").Migration
    fields = {op.name: op.field for op in migration.operations if op.model_name == "pamuser"}
    assert fields["managed"].default is True
    assert fields["notes"].default == "" and fields["notes"].blank


# --- by schedule -------------------------------------------------------------------------------


def test_the_scheduler_never_selects_an_unmanaged_due_record(world):
    managed = world.user("managed", schedule=DAILY)
    unmanaged = world.user("unmanaged", schedule=DAILY)
    _unmanage(unmanaged)
    _make_due([managed, unmanaged])

    assert scheduler.rotation_schedule_due() == 1

    assert Rotation.objects.filter(pam_user=managed, trigger="scheduled").count() == 1
    assert not Rotation.objects.filter(pam_user=unmanaged).exists()


def test_an_unmanaged_due_record_is_moved_on_so_later_passes_do_not_read_it_again(world):
    unmanaged = world.user("unmanaged", schedule=DAILY)
    _unmanage(unmanaged)
    _make_due([unmanaged])

    assert scheduler.rotation_schedule_due() == 0

    rs = RotationSettings.objects.get(pam_user=unmanaged)
    assert rs.next_run_at > timezone.now()
    assert scheduler.rotation_schedule_due() == 0
    assert not Rotation.objects.exists()


def test_a_record_managed_again_follows_its_schedule(world):
    record = world.user("again", schedule=DAILY)
    _unmanage(record)
    _make_due([record])
    scheduler.rotation_schedule_due()
    PamUser.objects.filter(pk=record.pk).update(managed=True)
    _make_due([record])

    assert scheduler.rotation_schedule_due() == 1


def test_unmanaged_records_cost_the_scheduler_no_extra_queries(world):
    records = [world.user(f"due-{n}", schedule=DAILY) for n in range(4)]
    _make_due(records)
    with CaptureQueriesContext(connection) as all_managed:
        scheduler.rotation_schedule_due(batch_size=100)
    for record in records[:2]:
        _unmanage(record)
    _make_due(records)
    with CaptureQueriesContext(connection) as some_unmanaged:
        scheduler.rotation_schedule_due(batch_size=100)

    assert len(some_unmanaged) <= len(all_managed)


def test_the_home_page_does_not_list_an_unmanaged_record_as_due(world, personas):
    managed = world.user("soon", schedule=DAILY)
    unmanaged = world.user("never", schedule=DAILY)
    _unmanage(unmanaged)
    RotationSettings.objects.update(next_run_at=timezone.now() + timedelta(days=1))

    due = dashboard.rotation_dashboard(user=personas.editor).due

    assert [rs.pam_user for rs in due] == [managed]


# --- on demand ---------------------------------------------------------------------------------


def test_a_rotation_of_an_unmanaged_record_is_refused_saying_why(world):
    record = world.user()
    _unmanage(record)

    with pytest.raises(engine.RotationRequestError) as refused:
        engine.rotation_request(record=record, trigger="on_demand")

    assert str(refused.value) == engine.NOT_MANAGED
    assert NOT_MANAGED in str(refused.value) and "Mark it managed" in str(refused.value)
    assert not Rotation.objects.exists()


def test_an_unmanaged_record_without_settings_is_refused_as_unmanaged(personas):
    record = make_pam_user(personas.folder, "Bare")
    _unmanage(record)

    with pytest.raises(engine.RotationRequestError, match=NOT_MANAGED):
        engine.rotation_check_requestable(record=record)


def test_request_many_rotates_the_managed_and_says_why_not_for_the_unmanaged(world):
    managed = world.user("managed")
    unmanaged = world.user("unmanaged")
    _unmanage(unmanaged)

    active, problems = engine.rotation_request_many(records=[managed, unmanaged], trigger="cli")

    assert set(active) == {managed.uid}
    assert problems == {unmanaged.uid: engine.NOT_MANAGED}
    assert not Rotation.objects.filter(pam_user=unmanaged).exists()


def test_pam_action_rotate_refuses_an_unmanaged_record(world):
    record = world.user()
    _unmanage(record)

    code, out, _ = call_pam("action", "rotate", "--record", record.uid)

    assert code == 1
    [line] = [json.loads(x) for x in out.splitlines() if x.strip()]
    assert line["record"] == record.uid and line["status"] == "failed"
    assert NOT_MANAGED in line["error"]
    assert not Rotation.objects.exists()


def test_pam_action_rotate_dry_run_says_an_unmanaged_record_would_be_refused(world):
    record = world.user()
    _unmanage(record)

    code, out, _ = call_pam("action", "rotate", "--record", record.uid, "--dry-run")

    assert code == 1
    [line] = [json.loads(x) for x in out.splitlines() if x.strip()]
    assert line["ok"] is False and NOT_MANAGED in line["error"]


def test_the_rotate_view_refuses_an_unmanaged_record(world, personas):
    record = world.user()
    _unmanage(record)
    client = login(personas.editor)

    page = client.post(f"/records/{record.uid}/rotate/", follow=True).content.decode()
    answer = client.post(f"/records/{record.uid}/rotate/", HTTP_ACCEPT="application/json")

    assert NOT_MANAGED in page
    assert answer.status_code == 409 and NOT_MANAGED in answer.json()["message"]
    assert not Rotation.objects.exists()


# --- a rotation queued before the record became unmanaged ---------------------------------------


def test_a_queued_rotation_of_a_record_that_became_unmanaged_is_not_run(world):
    record = world.user()
    rotation = engine.rotation_request(record=record, trigger="on_demand")
    _unmanage(record)

    assert engine.rotation_run(rotation_id=rotation.pk) == Rotation.FAILED

    rotation.refresh_from_db()
    assert NOT_MANAGED in rotation.error
    assert not rotation.has_secret("pending_password")
    assert world.aws_password(record.login) == "Initial-Passw0rd!"
    record.refresh_from_db()
    assert record.get_secret("password") == "Initial-Passw0rd!"


def test_a_gateways_drain_does_not_run_a_queued_rotation_of_a_now_unmanaged_record(world):
    kept, dropped = world.user("kept"), world.user("dropped")
    engine.rotation_request_many(records=[kept, dropped], trigger="cli")
    _unmanage(dropped)

    gateways.gateway_drain(gateway_name="default")

    assert Rotation.objects.get(pam_user=kept).status == Rotation.SUCCEEDED
    failed = Rotation.objects.get(pam_user=dropped)
    assert failed.status == Rotation.FAILED and NOT_MANAGED in failed.error
    assert world.aws_password("dropped") == "Initial-Passw0rd!"
