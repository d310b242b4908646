"""Handing work to gateways: the only module that enqueues django-q2 tasks, and how much work
one drain task takes at a turn (DRAIN_BATCH), from which the number of drains started follows.

Task arguments are ids and names only; a secret never enters django-q2's tables.

The broker may refuse a message (Redis down, the database of the ORM broker failing) after the
rotation it announces has committed. That rotation is requested all the same: the enqueue
functions log the refusal and return, the rotation stays queued, and its gateway's tick hands
it a drain within about a minute (rotation/gateways.py, LOST_MESSAGE_SECONDS). A caller that
wants to tell a person (the Rotate pages, `pam action rotate`) wraps the request in
``handoff_watch()`` and reads how many rotations the broker did not take.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django_q.models import Schedule
from django_q.tasks import async_task

from rotation.models import ConnectionTest, DiscoveryJob, Rotation

logger = logging.getLogger(__name__)

TICK_PREFIX = "gateway-tick:"
# Rotations a drain claims at once: one read and one write transaction for all of them.
DRAIN_BATCH = 20
# A deep queue is claimed in larger batches (drain_batch_size): each batch costs the gateway
# and the database a fixed amount whatever its size (its reads, statements and commit).
# Measured for issue 10 (PostgreSQL + Redis, 500 users, alternating runs): with batches of up
# to 100 the gateway's CPU per rotation was 6 % lower, and the server's 17 % lower, than with
# batches of 20 alone.
DRAIN_BATCH_SIZES = (DRAIN_BATCH, 50, 100)
# A larger batch only while every worker would still have this many batches after it, so that
# when the queue runs out the workers finish close together, none idle behind a large batch.
DRAIN_TURNS_AHEAD = 2


@dataclass
class Handoff:
    """What the broker did not take during a ``handoff_watch()`` block: how many rotations
    (they stay queued for their gateway's tick) and its first error, in words."""

    refused: int = 0
    error: str = ""


_WATCH: ContextVar[Handoff | None] = ContextVar("rotation_dispatch_handoff", default=None)


@contextmanager
def handoff_watch() -> Iterator[Handoff]:
    """Collect the broker's refusals of the enqueues made inside the block, those run by
    ``transaction.on_commit`` when a transaction commits inside it included. After the first
    refusal the block's later rotations are not offered to the broker at all: they would fail
    the same way, each perhaps only after a connection timeout."""
    handoff = Handoff()
    token = _WATCH.set(handoff)
    try:
        yield handoff
    finally:
        _WATCH.reset(token)


def _send(handoff: Handoff, func: str, *args, rotations: int, **options) -> bool:
    """async_task; False, logged and counted in ``handoff``, when the broker refuses it."""
    if handoff.error:  # the broker refused an earlier message of this hand-off
        handoff.refused += rotations
        return False
    try:
        # Inside a transaction (the ORM broker writes a row), a savepoint keeps a failed
        # insert from breaking the caller's transaction.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            async_task(func, *args, **options)
    except Exception as exc:  # whatever the broker raises, the request itself has committed
        handoff.refused += rotations
        handoff.error = " ".join(f"{type(exc).__name__}: {exc}".split())
        logger.warning(
            "The broker did not take the task %r (%s); what it announces stays queued and "
            "its gateway's next tick hands it over",
            options.get("task_name", func),
            handoff.error,
        )
        return False
    return True


def _handoff() -> Handoff:
    """The watching block's record, or a fresh one for this call alone."""
    return _WATCH.get() or Handoff()


def drain_batch_size(queued: int, workers: int) -> int:
    """How many rotations a drain claims at its next turn, with ``queued`` rotations waiting
    (counted up to drain_batch_count_cap): the largest of DRAIN_BATCH_SIZES that leaves each
    worker DRAIN_TURNS_AHEAD such batches, and never less than DRAIN_BATCH."""
    share = queued // (max(1, workers) * DRAIN_TURNS_AHEAD)
    return max([size for size in DRAIN_BATCH_SIZES if size <= share] or [DRAIN_BATCH])


def drain_batch_count_cap(workers: int) -> int:
    """Beyond this many queued rotations drain_batch_size gives the largest batch: a count
    can stop there."""
    return max(DRAIN_BATCH_SIZES) * max(1, workers) * DRAIN_TURNS_AHEAD


def drain_task_count(queued: int, workers: int) -> int:
    """Drain tasks to start for ``queued`` rotations: one per batch a drain claims at once, but
    never more than the gateway has workers (a drain goes on until the queue is empty)."""
    return max(1, min(workers, math.ceil(queued / DRAIN_BATCH)))


def enqueue_rotation(rotation: Rotation) -> bool:
    """Hand one queued rotation to its gateway. False when the broker refused it (logged):
    the rotation stays queued for the gateway's tick."""
    return _send(
        _handoff(),
        "rotation.tasks.run_rotation",
        rotation.pk,
        rotations=1,
        cluster=rotation.gateway_name,
        task_name=f"rotate {rotation.uid}",
        group="rotation",
    )


def enqueue_connection_test(test: ConnectionTest) -> bool:
    """Test connection runs on the configuration's gateway, never in the web process. False
    when the broker refused it (logged); the caller ends the test saying so."""
    return _send(
        Handoff(),  # not a rotation: a watch's refusals neither count nor skip it
        "rotation.tasks.test_configuration",
        test.pk,
        rotations=0,
        cluster=test.gateway_name,
        task_name=f"test connection {test.uid}",
        group="connection-test",
    )


def enqueue_discovery(job: DiscoveryJob) -> bool:
    """Discover IAM users runs on the configuration's gateway (rotation/discovery.py). False
    when the broker refused it (logged); the job stays queued and the gateway's tick hands it
    over again once its lease runs out (discovery_recover)."""
    return _send(
        Handoff(),  # not a rotation: a watch's refusals neither count nor skip it
        "rotation.tasks.run_discovery",
        job.pk,
        rotations=0,
        cluster=job.gateway_name,
        task_name=f"discover {job.uid}",
        group="discovery",
    )


def enqueue_requested(per_gateway: dict[str, list[int]]) -> int:
    """Hand newly queued rotations to their gateways: a task each while there are no more
    than the gateway has workers, drain tasks beyond that. Returns how many rotations the
    broker did not take (logged; they stay queued for their gateway's tick)."""
    handoff = _handoff()
    before = handoff.refused
    workers = settings.Q_CLUSTER.get("workers", 2)
    for gateway_name, ids in per_gateway.items():
        if len(ids) > workers:
            _drains(handoff, gateway_name, len(ids), workers)
            continue
        for rotation_id in ids:
            _send(
                handoff,
                "rotation.tasks.run_rotation",
                rotation_id,
                rotations=1,
                cluster=gateway_name,
                task_name=f"rotate {rotation_id}",
                group="rotation",
            )
    return handoff.refused - before


def enqueue_drains(per_gateway: dict[str, int]) -> int:
    """Start enough drain tasks on each gateway to keep its workers busy. Returns how many
    queued rotations were left without a drain because the broker refused (logged)."""
    handoff = _handoff()
    before = handoff.refused
    workers = settings.Q_CLUSTER.get("workers", 2)
    for gateway_name, queued in per_gateway.items():
        _drains(handoff, gateway_name, queued, workers)
    return handoff.refused - before


def _drains(handoff: Handoff, gateway_name: str, queued: int, workers: int) -> None:
    """The drains for ``queued`` rotations of one gateway. One drain that got through runs
    them all (a drain goes on until the queue is empty), so they count as refused only when
    none did."""
    sent = 0
    for _ in range(drain_task_count(queued, workers)):
        if not _send(
            handoff,
            "rotation.tasks.drain_gateway",
            gateway_name,
            rotations=0,
            cluster=gateway_name,
            task_name=f"drain {gateway_name}",
            group="rotation",
        ):
            break
        sent += 1
    if not sent:
        handoff.refused += queued


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
