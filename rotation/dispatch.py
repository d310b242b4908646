"""Handing work to gateways: the only module that enqueues django-q2 tasks, and how much work
one drain task takes at a turn (DRAIN_BATCH), from which the number of drains started follows.

Task arguments are ids and names only; a secret never enters django-q2's tables.
"""

from __future__ import annotations

import math

from django.conf import settings
from django_q.models import Schedule
from django_q.tasks import async_task

from rotation.models import ConnectionTest, Rotation

TICK_PREFIX = "gateway-tick:"
# Rotations a drain claims at once: one read and one write transaction for all of them.
DRAIN_BATCH = 20


def drain_task_count(queued: int, workers: int) -> int:
    """Drain tasks to start for ``queued`` rotations: one per batch a drain claims at once, but
    never more than the gateway has workers (a drain goes on until the queue is empty)."""
    return max(1, min(workers, math.ceil(queued / DRAIN_BATCH)))


def enqueue_rotation(rotation: Rotation) -> None:
    async_task(
        "rotation.tasks.run_rotation",
        rotation.pk,
        cluster=rotation.gateway_name,
        task_name=f"rotate {rotation.uid}",
        group="rotation",
    )


def enqueue_connection_test(test: ConnectionTest) -> None:
    """Test connection runs on the configuration's gateway, never in the web process."""
    async_task(
        "rotation.tasks.test_configuration",
        test.pk,
        cluster=test.gateway_name,
        task_name=f"test connection {test.uid}",
        group="connection-test",
    )


def enqueue_requested(per_gateway: dict[str, list[int]]) -> None:
    """Hand newly queued rotations to their gateways: a task each while there are no more
    than the gateway has workers, drain tasks beyond that."""
    workers = settings.Q_CLUSTER.get("workers", 2)
    for gateway_name, ids in per_gateway.items():
        if len(ids) > workers:
            enqueue_drains({gateway_name: len(ids)})
            continue
        for rotation_id in ids:
            async_task(
                "rotation.tasks.run_rotation",
                rotation_id,
                cluster=gateway_name,
                task_name=f"rotate {rotation_id}",
                group="rotation",
            )


def enqueue_drains(per_gateway: dict[str, int]) -> None:
    """Start enough drain tasks on each gateway to keep its workers busy."""
    workers = settings.Q_CLUSTER.get("workers", 2)
    for gateway_name, queued in per_gateway.items():
        for _ in range(drain_task_count(queued, workers)):
            async_task(
                "rotation.tasks.drain_gateway",
                gateway_name,
                cluster=gateway_name,
                task_name=f"drain {gateway_name}",
                group="rotation",
            )


def ensure_gateway_schedule(gateway_name: str) -> None:
    """Each gateway's cluster runs its own tick every minute (heartbeat, recovery, scheduler).

    Schedule names are not unique in django-q2, and a gateway's workers start together, so two
    may both create it: keep the oldest and remove the others rather than fail.
    """
    name = f"{TICK_PREFIX}{gateway_name}"
    existing = list(Schedule.objects.filter(name=name).order_by("id").values_list("id", flat=True))
    if len(existing) > 1:
        Schedule.objects.filter(pk__in=existing[1:]).delete()
    if existing:
        return
    Schedule.objects.create(
        name=name,
        func="rotation.tasks.gateway_tick",
        args=repr(gateway_name),
        schedule_type=Schedule.MINUTES,
        minutes=1,
        repeats=-1,
        cluster=gateway_name,
    )
