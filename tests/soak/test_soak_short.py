"""The soak, short form (about a minute): no password or access key is lost under faults, kills
and restarts.

Real processes against the test database: a gateway (`manage.py qcluster`, 2 workers) that is
SIGKILLed and restarted, and the web app (gunicorn) that is restarted, with a fault-injecting
proxy between the vault and the AWS emulator. See tests/soak/engine.py; the long form is
bench/soak.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest

from rotation import aws, counts
from rotation.models import RotationSettings
from tests.cluster import ROOT, Gateway, process_env
from tests.conftest import PASSWORD, make_configuration, make_pam_user
from tests.faultproxy import FaultProxy
from tests.soak.engine import PROCESS_ENV, SoakPlan
from tests.soak.keys import KeySoak
from vault.models import Gateway as GatewayRow

pytestmark = pytest.mark.django_db(transaction=True)

ON_DEMAND = 10
SCHEDULED = 10
DAILY = {"type": "DAILY", "time": "03:00", "tz": "UTC", "intervalCount": 1}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Web:
    """gunicorn serving the app on `port`, against the test database."""

    def __init__(self, port: int, log_path) -> None:
        self.port, self.log_path = port, log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> Web:
        argv = [sys.executable, "-m", "gunicorn", "vault.wsgi:application"]
        argv += ["-w", "1", "-b", f"127.0.0.1:{self.port}"]
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=process_env(**PROCESS_ENV),
            stdout=open(self.log_path, "ab"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    stop = kill


@pytest.fixture
def proxy(emulator):
    with FaultProxy(upstream=emulator.endpoint) as running:
        yield running


def test_nothing_is_lost_under_faults_kills_and_restarts(
    personas, emulator, proxy, settings, tmp_path
):
    """Console passwords and access keys, rotated together under the same chaos: no password
    lost; every key user keeps a working key, no key the vault does not hold is left in AWS,
    no rotation needs a third key (tests/soak/keys.py)."""
    settings.ROTATION_LEASE_SECONDS = int(PROCESS_ENV["ROTATION_LEASE_SECONDS"])
    settings.ROTATION_UNANSWERED_WINDOW_SECONDS = int(
        PROCESS_ENV["ROTATION_UNANSWERED_WINDOW_SECONDS"]
    )
    settings.ROTATION_KEY_CLOCK_SKEW_SECONDS = int(PROCESS_ENV["ROTATION_KEY_CLOCK_SKEW_SECONDS"])
    aws.clear_caches()
    # A gateway name of its own: runs sharing one Redis never take each other's tasks.
    name = f"soak-{uuid.uuid4().hex[:8]}"
    gateway_row = GatewayRow.objects.create(name=name, application=personas.application)
    config = make_configuration(personas.folder, gateway_row, endpoint=proxy.endpoint)
    iam = emulator.iam()
    records = []
    for n in range(ON_DEMAND + SCHEDULED):
        login = f"soak-user-{n:03d}"
        emulator.create_user(login, password="Initial-Passw0rd!")
        record = make_pam_user(personas.folder, login, password="Initial-Passw0rd!")
        keys = n % 2 == 1  # every other record, on demand and scheduled alike
        if keys:
            key = iam.create_access_key(UserName=login)["AccessKey"]
            record.access_key_id = key["AccessKeyId"]
            record.set_secret("access_secret_key", key["SecretAccessKey"])
            record.save()
        RotationSettings.objects.create(
            pam_user=record,
            configuration=config,
            method="iam_access_key" if keys else "iam_user",
            schedule=DAILY if n >= ON_DEMAND else {"type": "ON_DEMAND"},
            length=20,
            min_upper=2,
            min_lower=2,
            min_digits=2,
            min_symbols=2,
            # Rotated again and again within a minute: the replaced key may go at once.
            key_deactivate_after_hours=0,
            key_delete_after_hours=0,
        )
        records.append(record)
    web_port = _free_port()
    soak = KeySoak(
        emulator_endpoint=emulator.endpoint,
        plan=SoakPlan(seconds=32.0, settle_seconds=45.0),
        proxy=proxy,
        gateways={name: lambda: Gateway(name, log_path=tmp_path / "gateway.log", **PROCESS_ENV)},
        web=lambda: Web(web_port, tmp_path / "web.log"),
        web_port=web_port,
        editor=(personas.editor.username, PASSWORD),
        on_demand=records[:ON_DEMAND],
        scheduled=records[ON_DEMAND:],
        aws_passwords=emulator.passwords,
    )

    report = soak.run()

    print("\n".join(report.lines() + [soak.keys.line()]))
    assert not soak.errors, soak.errors
    assert report.lost == [], f"lost passwords: {report.lost}\n" + "\n".join(report.lines())
    assert report.still_active == 0
    assert soak.keys.lost == [], soak.keys.line()
    assert soak.keys.orphans == [], soak.keys.orphans
    assert soak.keys.three_keys == 0, soak.keys.line()
    # The home page's counts followed every change (rotation/counts.py: database triggers).
    assert counts.check()[0] == 0, counts.check()[1]
    # The soak did what it says: rotations of both kinds and methods ran, and the chaos happened.
    assert report.succeeded > 0 and report.requested_by_schedule > 0
    assert soak.keys.keys_created > 0 and soak.keys.working_current > 0
    assert report.gateway_kills >= 2 and report.web_restarts >= 1 and report.outages >= 1
