"""Only the vault's own task functions run on a gateway (issue 9, finding 3): a Schedule naming
anything else cannot be saved, and a worker does not run a foreign task however it reached the
broker; it logs and records the refusal, without the task's arguments."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path
from unittest import mock

import django_q.cluster
import django_q.worker
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.humanhash import uuid
from django_q.models import Failure, OrmQ, Schedule, Success
from django_q.scheduler import scheduler
from django_q.signing import SignedPackage
from django_q.tasks import _sync as django_q_sync

from rotation import taskguard
from tests.cluster import Gateway, wait_for

FOREIGN = "subprocess.getoutput"
ROOT = Path(__file__).resolve().parent.parent.parent


def package(func, *args, **options) -> str:
    """A signed task package as django-q2 keeps it in the broker."""
    task_id, name = uuid()[1], uuid()[0]
    task = {
        "id": task_id,
        "name": name,
        "func": func,
        "args": args,
        "kwargs": {},
        "started": timezone.now(),
        **options,
    }
    return SignedPackage.dumps(task)


def enqueue_directly(pack: str) -> str:
    """Put a package in the gateway's broker the way async_task does, without async_task."""
    get_broker("default").enqueue(pack)
    return OrmQ.objects.get().payload


def run_queued(payload: str) -> None:
    """Run a queued django-q2 task as a worker would, in this test's transaction."""
    with mock.patch("django_q.conf.Conf.SYNC", True):  # keeps the test's DB connection open
        django_q_sync(payload)


def foreign_queued() -> list:
    """The foreign task's messages still in the broker."""
    return [q for q in OrmQ.objects.all() if q.func() == FOREIGN]


# --- Schedules -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_schedule_with_a_foreign_func_is_refused():
    with pytest.raises(ValidationError, match="not one of the vault's task functions"):
        Schedule.objects.create(name="env", func=FOREIGN, args="'env'", cluster="default")
    assert not Schedule.objects.exists()


@pytest.mark.django_db
def test_schedule_changed_to_a_foreign_func_is_refused():
    schedule = Schedule.objects.create(
        name="gateway-tick:default", func="rotation.tasks.gateway_tick", args="'default'"
    )
    schedule.func = FOREIGN
    with pytest.raises(ValidationError):
        schedule.save()
    assert Schedule.objects.get().func == "rotation.tasks.gateway_tick"


@pytest.mark.django_db
def test_schedule_with_a_result_hook_is_refused():
    with pytest.raises(ValidationError, match="hook"):
        Schedule.objects.create(
            name="tick", func="rotation.tasks.gateway_tick", args="'default'", hook=FOREIGN
        )


@pytest.mark.django_db
def test_schedule_with_queue_options_is_refused():
    with pytest.raises(ValidationError, match="q_options"):
        Schedule.objects.create(
            name="tick",
            func="rotation.tasks.gateway_tick",
            args="'default'",
            kwargs="q_options={'hook': 'subprocess.getoutput'}",
        )


@pytest.mark.django_db
def test_a_foreign_schedule_already_stored_does_not_stop_the_clusters_other_schedules():
    due = timezone.now() - timedelta(minutes=1)
    common = {"schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1, "next_run": due}
    # bulk_create sends no signal: a row stored before the allowlist existed.
    Schedule.objects.bulk_create(
        [
            Schedule(name="env", func=FOREIGN, args="'env'", cluster="default", **common),
            Schedule(
                name="gateway-tick:default",
                func="rotation.tasks.gateway_tick",
                args="'default'",
                cluster="default",
                **common,
            ),
        ]
    )
    with mock.patch("django_q.scheduler.close_old_django_connections"):  # the test's connection
        scheduler(get_broker("default"))
    tick = Schedule.objects.get(name="gateway-tick:default")
    assert tick.next_run > timezone.now()
    assert OrmQ.objects.count() == 2  # both enqueued; the workers refuse the foreign one


def test_every_function_dispatch_enqueues_is_allowed():
    source = (ROOT / "rotation" / "dispatch.py").read_text()
    enqueued = set(re.findall(r"\"(rotation\.tasks\.\w+)\"", source))
    assert enqueued
    assert enqueued <= taskguard.ALLOWED_TASKS


def test_only_functions_of_rotation_tasks_are_allowed():
    assert all(name.startswith("rotation.tasks.") for name in taskguard.ALLOWED_TASKS)


# --- workers ---------------------------------------------------------------------------------


def test_gateway_processes_and_sync_mode_use_the_filtered_worker():
    assert django_q.cluster.worker is taskguard.guarded_worker
    assert django_q.worker.worker is taskguard.guarded_worker


@pytest.mark.django_db
def test_foreign_task_from_the_broker_is_not_executed(tmp_path):
    marker = tmp_path / "ran"
    run_queued(enqueue_directly(package(FOREIGN, f"touch {marker}")))
    assert not marker.exists()


@pytest.mark.django_db
def test_refused_task_is_recorded_as_a_failure_without_its_arguments(tmp_path):
    run_queued(enqueue_directly(package(FOREIGN, f"touch {tmp_path / 'secret-arg'}")))
    failure = Failure.objects.get()
    assert failure.func == FOREIGN
    assert failure.args == ()
    assert failure.kwargs == {}
    assert "not one of the vault's task functions" in failure.result
    assert "secret-arg" not in repr(failure.result)


@pytest.mark.django_db
def test_refused_task_is_acknowledged_so_the_broker_does_not_deliver_it_again(tmp_path):
    broker = get_broker("default")
    broker.enqueue(package(FOREIGN, f"touch {tmp_path / 'ran'}"))
    (ack_id, payload), *_ = broker.dequeue()
    task = SignedPackage.loads(payload)
    results = mock.Mock()
    queue = mock.Mock()
    queue.get.side_effect = [{**task, "ack_id": ack_id}, "STOP"]
    assert taskguard.AllowedTasks(queue, results).get() == "STOP"
    (refused,), _ = results.put.call_args
    assert refused["ack_id"] == ack_id and refused["ack_failure"] is True
    assert refused["success"] is False


@pytest.mark.django_db
def test_refused_task_leaves_a_log_line_naming_its_function(tmp_path, caplog):
    with caplog.at_level(logging.ERROR, logger="rotation.taskguard"):
        run_queued(enqueue_directly(package(FOREIGN, f"touch {tmp_path / 'ran'}")))
    lines = [r.getMessage() for r in caplog.records if r.name == "rotation.taskguard"]
    assert any("Refused django-q2 task" in line and FOREIGN in line for line in lines), lines


@pytest.mark.django_db
def test_allowed_function_with_a_result_hook_is_not_executed():
    # (A worker's start-up calls gateway_tick on its own: run_rotation is the task watched here.)
    with mock.patch("rotation.engine.rotation_run") as rotation_run:
        run_queued(enqueue_directly(package("rotation.tasks.run_rotation", 1, hook=FOREIGN)))
    rotation_run.assert_not_called()
    assert Failure.objects.get().hook is None


@pytest.mark.django_db
def test_the_vaults_own_task_still_runs():
    with mock.patch("rotation.engine.rotation_run", return_value="succeeded") as rotation_run:
        run_queued(enqueue_directly(package("rotation.tasks.run_rotation", 1)))
    rotation_run.assert_called_once_with(rotation_id=1)
    assert Success.objects.get().func == "rotation.tasks.run_rotation"


@pytest.mark.django_db
def test_a_worker_without_the_filter_stops_a_foreign_task_before_it_runs(tmp_path):
    marker = tmp_path / "ran"
    payload = enqueue_directly(package(FOREIGN, f"touch {marker}"))
    with (
        mock.patch.object(django_q.worker, "worker", taskguard._original_worker),
        pytest.raises(taskguard.TaskNotAllowed),
    ):
        run_queued(payload)
    assert not marker.exists()


@pytest.mark.django_db(transaction=True)
def test_a_real_gateway_does_not_run_a_foreign_task(tmp_path):
    marker = tmp_path / "ran"
    get_broker("default").enqueue(package(FOREIGN, f"touch {marker}"))
    log = tmp_path / "gateway.log"
    gateway = Gateway("default", log_path=log).start()
    try:
        wait_for(lambda: Failure.objects.filter(func=FOREIGN).exists(), timeout=60)
        # django-q2's monitor saves the result and then acknowledges; wait for the second step
        # too, or a slow database shows the message between the two.
        wait_for(lambda: not foreign_queued(), timeout=30)
    finally:
        gateway.stop()
    assert not marker.exists()
    # Acknowledged: not waiting to be delivered again.
    assert not foreign_queued()
    assert "not one of the vault's task functions" in log.read_text()
