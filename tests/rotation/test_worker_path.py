"""Rotations through the real pipeline: request, django-q2 queue, a `qcluster` process, AWS."""

from __future__ import annotations

import pytest
from django_q.models import OrmQ, Schedule, Task

from rotation import engine
from rotation.models import Rotation
from tests.cluster import Gateway, wait_for
from vault.models import Gateway as GatewayRow

pytestmark = pytest.mark.django_db(transaction=True)

N = 8


@pytest.fixture
def gateway(tmp_path):
    process = Gateway("default", log_path=tmp_path / "gateway.log").start()
    yield process
    process.stop()


def _all_finished(records) -> bool:
    return not Rotation.objects.filter(pam_user__in=records, status__in=Rotation.ACTIVE).exists()


def test_rotations_through_a_real_gateway_leave_vault_and_aws_in_agreement(world, gateway):
    records = [world.user(f"worker-user-{i}") for i in range(N)]
    for record in records:
        engine.rotation_request(record=record, trigger="on_demand")
    wait_for(lambda: _all_finished(records), timeout=60)
    held = world.emulator.passwords()
    for record in records:
        record.refresh_from_db()
        rotation = Rotation.objects.get(pam_user=record)
        assert rotation.status == Rotation.SUCCEEDED, rotation.error
        assert record.get_secret("password") == held[record.login]
        assert held[record.login] != "Initial-Passw0rd!"


def test_no_rotated_password_reaches_django_q_tables_or_the_gateway_log(world, gateway, tmp_path):
    records = [world.user(f"secret-user-{i}") for i in range(3)]
    for record in records:
        engine.rotation_request(record=record, trigger="on_demand")
    wait_for(lambda: _all_finished(records), timeout=60)
    passwords = [
        r.get_secret("password") for r in (x.__class__.objects.get(pk=x.pk) for x in records)
    ]
    stored = " ".join(
        repr(row) for model in (Task, OrmQ, Schedule) for row in model.objects.values()
    )
    log = (tmp_path / "gateway.log").read_text(errors="replace")
    for password in passwords:
        assert password not in stored
        assert password not in log


def test_gateway_reports_a_heartbeat_when_it_starts(world, gateway):
    wait_for(
        lambda: GatewayRow.objects.filter(name="default", last_seen_at__isnull=False).exists(),
        timeout=30,
    )
    assert GatewayRow.objects.get(name="default").is_online
    # The tick writes the heartbeat first, then makes sure its every-minute schedule exists.
    wait_for(lambda: Schedule.objects.filter(name="gateway-tick:default").exists(), timeout=30)


def test_duplicate_tick_schedules_are_merged_instead_of_failing_the_tick(db):
    from rotation import dispatch

    for _ in range(2):  # two workers of one gateway starting at once
        Schedule.objects.create(
            name="gateway-tick:default", func="rotation.tasks.gateway_tick", args="'default'"
        )
    dispatch.ensure_gateway_schedule("default")
    assert Schedule.objects.filter(name="gateway-tick:default").count() == 1
