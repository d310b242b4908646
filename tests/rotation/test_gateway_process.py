"""`pam gateway run NAME` (rotation/gateway_process.py), as real processes: it refuses an unknown
gateway and starts nothing, SIGTERM stops it and every process of its cluster within seconds,
SIGKILL of the runner leaves no worker behind, a cluster that dies is replaced, and the
heartbeat and lease recovery go on while every worker of the cluster is frozen."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from rotation import engine
from rotation.models import Rotation
from tests.cluster import GatewayRun, living, living_descendants, parent_of, wait_for
from vault.cli import call_pam
from vault.models import Gateway

pytestmark = pytest.mark.django_db(transaction=True)

# The cluster child, its sentinel, 2 workers (Q_WORKERS), the monitor and the pusher.
CLUSTER_PROCESSES = 6


def _ready(run: GatewayRun) -> list[int]:
    """Wait until the cluster is complete and the keeper has written a heartbeat."""
    wait_for(
        lambda: (
            len(run.processes()) >= CLUSTER_PROCESSES
            and Gateway.objects.filter(name=run.name, last_seen_at__isnull=False).exists()
        ),
        timeout=90,
        interval=0.3,
    )
    return run.processes()


@pytest.fixture
def runner(personas, tmp_path):
    run = GatewayRun("default", log_path=tmp_path / "gateway.log").start()
    yield run
    run.stop()


def test_an_unknown_gateway_is_refused_in_one_line_and_nothing_starts(personas):
    code, out, err = call_pam("gateway", "run", "no-such-gateway")
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        'pam: error: no gateway named "no-such-gateway" (see `pam gateway list`; a gateway is '
        "created in the admin console or with a PAM Configuration)"
    ]
    clusters = [p for p in living_descendants(os.getpid()) if b"--cluster-of" in _cmdline(p)]
    assert clusters == []


def _cmdline(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


def test_sigterm_stops_the_runner_and_every_process_of_its_cluster_within_seconds(runner):
    processes = _ready(runner)
    started = time.monotonic()
    runner.proc.send_signal(signal.SIGTERM)
    assert runner.proc.wait(10) == 0
    took = time.monotonic() - started
    wait_for(lambda: not living(processes), timeout=2)
    assert took < 10, took


def test_sigkill_of_the_runner_leaves_no_worker_behind(runner):
    processes = _ready(runner)
    runner.proc.kill()
    runner.proc.wait(5)
    # The kernel kills each process of the cluster when its parent dies (PR_SET_PDEATHSIG).
    wait_for(lambda: not living(processes), timeout=5)


def test_a_cluster_whose_sentinel_is_killed_takes_its_workers_along_and_is_replaced(runner):
    processes = _ready(runner)
    cluster = runner.cluster_pid()
    sentinel = next(p for p in processes if p != cluster and parent_of(p) == cluster)
    os.kill(sentinel, signal.SIGKILL)
    # django-q2 alone leaves the workers running without their sentinel (issue 11, finding 6).
    wait_for(lambda: not living(processes), timeout=10)
    replaced = _ready(runner)
    assert runner.cluster_pid() not in (None, cluster)
    assert not set(replaced) & set(processes)


def test_heartbeat_and_lease_recovery_go_on_while_every_worker_is_frozen(runner, world):
    record = world.user("frozen-gateway-user")
    processes = _ready(runner)
    cluster_group = runner.cluster_pid()
    os.killpg(cluster_group, signal.SIGSTOP)  # every worker, the sentinel and the scheduler
    try:
        rotation = engine.rotation_request(record=record, trigger="on_demand")
        # A worker took the rotation and vanished: running, its lease run out.
        Rotation.objects.filter(pk=rotation.pk).update(
            status=Rotation.RUNNING,
            attempts=1,
            lease_expires_at=timezone.now() - timedelta(seconds=1),
        )
        seen = Gateway.objects.get(name="default").last_seen_at
        wait_for(
            lambda: Rotation.objects.get(pk=rotation.pk).status == Rotation.QUEUED,
            timeout=15,
            interval=0.3,
        )
        wait_for(
            lambda: Gateway.objects.get(name="default").last_seen_at > seen,
            timeout=15,
            interval=0.3,
        )
    finally:
        os.killpg(cluster_group, signal.SIGCONT)
    assert set(processes) <= set(runner.processes())  # frozen, not replaced
