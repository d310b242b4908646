"""Two gateways (two django-q2 clusters) sharing one PostgreSQL and one Redis.

Runs when MULTIHOST=1, with DATABASE_URL on PostgreSQL and REDIS_URL on Redis (`.ci/run` does
this). Each gateway runs only its own configurations' rotations; a stopped gateway's rotations
wait (and its records say "offline") while the other gateway keeps rotating.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from rotation import engine
from rotation.models import Rotation, RotationSettings
from tests.cluster import Gateway, wait_for
from tests.conftest import login, make_configuration, make_pam_user
from vault.models import Application, ApplicationFolder
from vault.models import Gateway as GatewayRow

pytestmark = [
    pytest.mark.multihost,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(os.environ.get("MULTIHOST") != "1", reason="set MULTIHOST=1"),
]

PER_GATEWAY = 4


@pytest.fixture(autouse=True)
def _real_services():
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.fail("MULTIHOST=1 needs DATABASE_URL on PostgreSQL and REDIS_URL on Redis")
    import redis

    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # no task left from an earlier run


def _gateway_with_folder(name: str, folder) -> GatewayRow:
    app = Application.objects.create(name=f"app-{name}")
    ApplicationFolder.objects.create(application=app, folder=folder)
    return GatewayRow.objects.create(name=name, application=app)


@pytest.fixture
def two_gateways(personas, emulator, tmp_path):
    records = {}
    for name in ("gw-a", "gw-b"):
        row = _gateway_with_folder(name, personas.folder)
        config = make_configuration(
            personas.folder, row, endpoint=emulator.endpoint, title=f"Config {name}"
        )
        records[name] = []
        for i in range(PER_GATEWAY):
            login_name = f"{name}-user-{i}"
            emulator.create_user(login_name)
            record = make_pam_user(personas.folder, login_name, password="Initial-Passw0rd!")
            RotationSettings.objects.create(pam_user=record, configuration=config)
            records[name].append(record)
    processes = {name: Gateway(name, log_path=tmp_path / f"{name}.log").start() for name in records}
    yield records, processes, tmp_path
    for process in processes.values():
        process.stop(grace=2)


def _request_all(records) -> dict[int, Rotation]:
    return {r.pk: engine.rotation_request(record=r, trigger="on_demand") for r in records}


def _finished(rotations) -> bool:
    return not Rotation.objects.filter(
        pk__in=[r.pk for r in rotations.values()], status__in=Rotation.ACTIVE
    ).exists()


def test_each_gateway_runs_only_its_own_rotations(two_gateways, emulator):
    records, _, logs = two_gateways
    rotations = {name: _request_all(recs) for name, recs in records.items()}
    for name in records:
        wait_for(lambda name=name: _finished(rotations[name]), timeout=90)
    held = emulator.passwords()
    for name, recs in records.items():
        log = (logs / f"{name}.log").read_text(errors="replace")
        other = "gw-b" if name == "gw-a" else "gw-a"
        other_log = (logs / f"{other}.log").read_text(errors="replace")
        for record in recs:
            rotation = Rotation.objects.get(pk=rotations[name][record.pk].pk)
            assert rotation.status == Rotation.SUCCEEDED, rotation.error
            record.refresh_from_db()
            assert record.get_secret("password") == held[record.login]
            assert rotation.uid in log  # django-q2 logs "processing rotate <uid>"
            assert rotation.uid not in other_log


def test_a_stopped_gateway_waits_while_the_other_keeps_rotating(two_gateways, personas):
    records, processes, _ = two_gateways
    wait_for(lambda: GatewayRow.objects.filter(last_seen_at__isnull=False).count() == 2, 60)
    processes["gw-b"].stop(grace=2)
    # Two minutes without a heartbeat, without waiting them out.
    GatewayRow.objects.filter(name="gw-b").update(
        last_seen_at=timezone.now() - timedelta(minutes=3)
    )
    a = _request_all(records["gw-a"])
    b = _request_all(records["gw-b"])
    wait_for(lambda: _finished(a), timeout=90)
    assert Rotation.objects.filter(pk__in=[r.pk for r in b.values()], status="queued").count() == (
        PER_GATEWAY
    )
    page = login(personas.editor).get(f"/records/{records['gw-b'][0].uid}/")
    assert "offline" in page.content.decode()
    processes["gw-b"].start()
    wait_for(lambda: _finished(b), timeout=90)
    assert set(
        Rotation.objects.filter(pk__in=[r.pk for r in b.values()]).values_list("status", flat=True)
    ) == {Rotation.SUCCEEDED}
