"""The soak with two gateways on PostgreSQL + Redis: configurations split across them, each
gateway's cluster SIGKILLed, paused and restarted under faults, AWS requests delivered after
the gateway gave up on them, the gateways' database black-holed for 8 s, and no password lost,
as `pam get` shows it.

Runs when MULTIHOST=1 with DATABASE_URL on PostgreSQL and REDIS_URL on Redis (`.ci/run`).
"""

from __future__ import annotations

import os
import uuid

import pytest
from django.conf import settings
from django.db import connection
from django_q.models import Task

from rotation import aws, counts
from rotation.models import Rotation, RotationSettings
from tests import cluster
from tests.cluster import Gateway
from tests.conftest import PASSWORD, make_configuration, make_pam_user
from tests.faultproxy import FaultProxy
from tests.soak.engine import PROCESS_ENV, Soak, SoakPlan
from tests.soak.test_soak_short import DAILY, Web, _free_port
from tests.tcpproxy import TcpProxy
from vault.models import Application, ApplicationFolder
from vault.models import Gateway as GatewayRow

pytestmark = [
    pytest.mark.multihost,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(os.environ.get("MULTIHOST") != "1", reason="set MULTIHOST=1"),
]

PER_GATEWAY = 8


@pytest.fixture
def proxy(emulator):
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.fail("MULTIHOST=1 needs DATABASE_URL on PostgreSQL and REDIS_URL on Redis")
    with FaultProxy(upstream=emulator.endpoint) as running:
        yield running


@pytest.fixture
def database_proxy(proxy):
    s = connection.settings_dict
    with TcpProxy(s.get("HOST") or "127.0.0.1", int(s.get("PORT") or 5432)) as running:
        yield running


def test_two_gateways_lose_no_password_and_run_only_their_own_rotations(
    personas, emulator, proxy, database_proxy, settings, tmp_path
):
    settings.ROTATION_LEASE_SECONDS = int(PROCESS_ENV["ROTATION_LEASE_SECONDS"])
    settings.ROTATION_UNANSWERED_WINDOW_SECONDS = int(
        PROCESS_ENV["ROTATION_UNANSWERED_WINDOW_SECONDS"]
    )
    aws.clear_caches()
    token = uuid.uuid4().hex[:6]  # queues of their own in a Redis other runs may share
    names = [f"soak-a-{token}", f"soak-b-{token}"]
    on_demand, scheduled = [], []
    for name in names:
        app = Application.objects.create(name=f"app-{name}")
        ApplicationFolder.objects.create(application=app, folder=personas.folder)
        row = GatewayRow.objects.create(name=name, application=app)
        config = make_configuration(
            personas.folder, row, endpoint=proxy.endpoint, title=f"Config {name}"
        )
        for n in range(PER_GATEWAY):
            login = f"{name}-user-{n}"
            emulator.create_user(login, password="Initial-Passw0rd!")
            record = make_pam_user(personas.folder, login, password="Initial-Passw0rd!")
            is_scheduled = n % 2 == 1
            RotationSettings.objects.create(
                pam_user=record,
                configuration=config,
                schedule=DAILY if is_scheduled else {"type": "ON_DEMAND"},
                length=20,
                min_upper=2,
                min_lower=2,
                min_digits=2,
                min_symbols=2,
            )
            (scheduled if is_scheduled else on_demand).append(record)
    web_port = _free_port()

    # The gateways reach PostgreSQL through a proxy that black-holes it for a while (issue 11):
    # short deadlines so that they notice within the soak.
    through = cluster.test_database_url().replace(
        f":{connection.settings_dict.get('PORT') or 5432}/", f":{database_proxy.port}/", 1
    )
    gateway_env = {
        **PROCESS_ENV,
        "DATABASE_URL": through,
        "GATEWAY_DB_STATEMENT_TIMEOUT": "5",
        "GATEWAY_DB_READ_TIMEOUT": "8",
    }

    def serving(name: str):
        return lambda: Gateway(name, log_path=tmp_path / f"{name}.log", **gateway_env)

    soak = Soak(
        plan=SoakPlan(seconds=40.0, settle_seconds=60.0, gateway_processes=1),
        proxy=proxy,
        gateways={name: serving(name) for name in names},
        web=lambda: Web(web_port, tmp_path / "web.log"),
        web_port=web_port,
        editor=(personas.editor.username, PASSWORD),
        on_demand=on_demand,
        scheduled=scheduled,
        aws_passwords=emulator.passwords,
        database_proxy=database_proxy,
    )

    report = soak.run()

    print("\n".join(report.lines()))
    assert not soak.errors, soak.errors
    assert report.lost == [], f"lost passwords: {report.lost}\n" + "\n".join(report.lines())
    assert report.still_active == 0 and report.succeeded > 0
    assert report.database_blackholes == 1
    # The home page's counts followed every change (rotation/counts.py: database triggers).
    assert counts.check()[0] == 0, counts.check()[1]
    # Every task went to the cluster of the rotation's own gateway...
    tasks = list(Task.objects.filter(group="rotation"))
    assert tasks
    gateway_of = dict(Rotation.objects.values_list("pk", "gateway_name"))
    for task in tasks:
        target = task.args[0] if task.func.endswith("drain_gateway") else gateway_of[task.args[0]]
        assert task.cluster == target, (task.func, task.args, task.cluster)
    # ...and each gateway's processes ran only tasks addressed to it.
    for name in names:
        other = next(n for n in names if n != name)
        log = (tmp_path / f"{name}.log").read_text(errors="replace")
        assert f"drain {name}" in log or "rotate " in log
        assert f"drain {other}" not in log
