"""PostgreSQL, then Redis, black-holed for 40 s under a running gateway (issue 11, finding 2):
every rotation settles within 60 s of the restore, without restarting anything, and no password
is lost.

The gateway runs as `pam gateway run` with its DATABASE_URL (or REDIS_URL) pointing at a TCP
proxy (tests/tcpproxy.py); the test process itself talks to both directly. Rotations are queued
with every UpdateLoginProfile slowed down, so that the blackhole catches workers mid-rotation,
the runner's heartbeat and recovery, the sentinel's scheduler and the monitor, each with a
connection that TCP still believes healthy. Without a deadline on the answers they all wait
forever (django-q2's 15-minute task timeout aside).

Runs when MULTIHOST=1, with DATABASE_URL on PostgreSQL and REDIS_URL on Redis (`.ci/run`).
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.parse
import uuid
from collections import Counter

import pytest
from django.conf import settings
from django.db import connection

from rotation import aws, engine
from rotation.models import Rotation, RotationSettings
from tests import cluster
from tests.cluster import GatewayRun, wait_for
from tests.conftest import make_configuration, make_pam_user
from tests.faultproxy import FaultProxy
from tests.tcpproxy import TcpProxy
from vault.models import Application, ApplicationFolder, PamUser
from vault.models import Gateway as GatewayRow

pytestmark = [
    pytest.mark.multihost,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(os.environ.get("MULTIHOST") != "1", reason="set MULTIHOST=1"),
]

RECORDS = 30
BLACKHOLE_SECONDS = 40
SETTLE_SECONDS = 60
# The gateway's settings: the default lease (300 s). A worker whose database stopped answering
# hands its rotations back as soon as it answers again (engine.released_on_database_error),
# so nothing waits for a lease; AWS's timeouts are short only to keep the test quick.
GATEWAY_ENV = {
    "ROTATION_MAX_ATTEMPTS": "5",
    "ROTATION_RETRY_BACKOFF_SCALE": "0.1",
    "AWS_MAX_ATTEMPTS": "2",
    "AWS_CONNECT_TIMEOUT": "1",
    "AWS_READ_TIMEOUT": "3",
    "LOG_LEVEL": "INFO",
}


@contextlib.contextmanager
def _database_proxy():
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.fail("MULTIHOST=1 needs DATABASE_URL on PostgreSQL and REDIS_URL on Redis")
    s = connection.settings_dict
    with TcpProxy(s.get("HOST") or "127.0.0.1", int(s.get("PORT") or 5432)) as proxy:
        yield proxy


def _through(proxy: TcpProxy) -> str:
    """The test database's URL, through the proxy."""
    direct = cluster.test_database_url()
    port = connection.settings_dict.get("PORT") or "5432"
    return direct.replace(f":{port}/", f":{proxy.port}/", 1)


def _active(ids: list[int]) -> int:
    return Rotation.objects.filter(pk__in=ids, status__in=Rotation.ACTIVE).count()


def _lost(records: list[PamUser], held: dict[str, str | None]) -> list[str]:
    """Records whose password in AWS the vault holds neither as current nor as a kept pending
    password of one of its rotations."""
    lost = []
    for record in PamUser.objects.filter(pk__in=[r.pk for r in records]):
        kept = {
            r.get_secret("pending_password")
            for r in Rotation.objects.filter(pam_user=record).exclude(pending_password_enc="")
        }
        if held.get(record.login) not in {record.get_secret("password"), *kept}:
            lost.append(record.login)
    return lost


def _redis_through(proxy: TcpProxy) -> str:
    parts = urllib.parse.urlsplit(settings.REDIS_URL)
    return urllib.parse.urlunsplit(parts._replace(netloc=f"127.0.0.1:{proxy.port}"))


@pytest.mark.parametrize("service", ["database", "redis"])
def test_a_gateway_outlives_a_blackhole_without_a_restart(personas, emulator, tmp_path, service):
    """The same for the gateway's PostgreSQL and for its Redis (the broker it reads tasks
    from); the test process reaches both directly."""
    if service == "database":
        with _database_proxy() as proxy:
            _outlive(personas, emulator, tmp_path, proxy, {"DATABASE_URL": _through(proxy)})
    else:
        parts = urllib.parse.urlsplit(settings.REDIS_URL)
        with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379) as proxy:
            _outlive(personas, emulator, tmp_path, proxy, {"REDIS_URL": _redis_through(proxy)})


def _outlive(personas, emulator, tmp_path, proxy: TcpProxy, env: dict) -> None:
    aws.clear_caches()
    name = f"blackhole-{uuid.uuid4().hex[:6]}"  # a queue of its own in a Redis others may share
    app = Application.objects.create(name=f"app-{name}")
    ApplicationFolder.objects.create(application=app, folder=personas.folder)
    gateway_row = GatewayRow.objects.create(name=name, application=app)
    with FaultProxy(upstream=emulator.endpoint) as aws_proxy:
        config = make_configuration(personas.folder, gateway_row, endpoint=aws_proxy.endpoint)
        records = []
        for n in range(RECORDS):
            login = f"{name}-user-{n}"
            emulator.create_user(login, password="Initial-Passw0rd!")
            record = make_pam_user(personas.folder, login, password="Initial-Passw0rd!")
            RotationSettings.objects.create(pam_user=record, configuration=config)
            records.append(record)

        log = tmp_path / "gateway.log"
        run = GatewayRun(name, log_path=log, interval=2, **{**GATEWAY_ENV, **env}).start()
        try:
            wait_for(
                lambda: (
                    GatewayRow.objects.filter(
                        pk=gateway_row.pk, last_seen_at__isnull=False
                    ).exists()
                    and "running." in log.read_text(errors="replace")
                ),
                timeout=90,
                interval=0.3,
            )
            cluster_pid = run.cluster_pid()
            # Half a second per password change: 30 rotations on 2 workers take about 8 s.
            aws_proxy.slow(0.5, times=None, match="Action=UpdateLoginProfile")
            active, problems = engine.rotation_request_many(records=records, trigger="cli")
            assert not problems, problems
            ids = [rotation.pk for rotation in active.values()]
            wait_for(
                lambda: Rotation.objects.filter(pk__in=ids, status=Rotation.SUCCEEDED).count() >= 2,
                timeout=30,
                interval=0.1,
            )

            proxy.blackhole()
            at_blackhole = len(ids) - _active(ids)
            time.sleep(BLACKHOLE_SECONDS)
            proxy.restore()
            restored = time.monotonic()
            try:
                wait_for(lambda: _active(ids) == 0, timeout=SETTLE_SECONDS, interval=0.5)
            except TimeoutError:
                pytest.fail(
                    f"{_active(ids)} of {len(ids)} rotations still active {SETTLE_SECONDS} s "
                    f"after the database came back\n" + log.read_text(errors="replace")[-6000:]
                )
            settled = time.monotonic() - restored
            statuses = Counter(Rotation.objects.filter(pk__in=ids).values_list("status", flat=True))
            print(
                f"\n{len(ids)} rotations, {at_blackhole} settled before the {BLACKHOLE_SECONDS} s "
                f"blackhole, all settled {settled:.1f} s after the restore: {dict(statuses)}"
            )

            assert run.proc.poll() is None
            assert run.cluster_pid() == cluster_pid, "the runner restarted its cluster"
            for rotation in Rotation.objects.filter(pk__in=ids):
                if rotation.status == Rotation.FAILED and rotation.pending_may_be_live:
                    assert rotation.has_secret("pending_password"), rotation.uid
            assert _lost(records, emulator.passwords()) == []
        finally:
            run.stop()
