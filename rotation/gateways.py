"""Gateways: what each gateway's workers do besides single rotations. The tick (every minute
and at start: heartbeat, recovery of expired leases, drains for queued rotations whose task
message was lost, the scheduler pass), the heartbeat and the online/offline audit events, and
the drain that works through a gateway's queue in batches.

A gateway is a django-q2 cluster named after it; rotation/dispatch.py hands it its tasks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

import vault
from rotation import dispatch, engine, retirement, scheduler
from rotation.lane import AwsLane
from rotation.models import Rotation
from vault.audit import audit_record
from vault.models import Gateway

logger = logging.getLogger(__name__)


def gateway_heartbeat(*, gateway_name: str, now: datetime | None = None) -> Gateway | None:
    """The gateway is alive now, running this code's version (vault.__version__: the heartbeat
    runs in the gateway's process); its coming back online is audited once. None if unknown."""
    now = now or timezone.now()
    gateway = Gateway.objects.filter(name=gateway_name).first()
    if gateway is None:
        return None
    Gateway.objects.filter(pk=gateway.pk).update(
        last_seen_at=now, reported_online=True, version=vault.__version__
    )
    if not gateway.reported_online:
        audit_record("gateway.online", actor_kind="system", obj=gateway)
    return gateway


def gateways_report_offline(*, now: datetime | None = None) -> int:
    """Write one audit event for each gateway that stopped sending heartbeats."""
    now = now or timezone.now()
    limit = now - timedelta(seconds=settings.GATEWAY_OFFLINE_SECONDS)
    stale = list(Gateway.objects.filter(reported_online=True, last_seen_at__lt=limit))
    for gateway in stale:
        if Gateway.objects.filter(pk=gateway.pk, reported_online=True).update(
            reported_online=False
        ):
            audit_record(
                "gateway.offline",
                actor_kind="system",
                obj=gateway,
                details={"last_seen_at": gateway.last_seen_at.isoformat()},
            )
    return len(stale)


# A queued rotation still waiting this long after it was requested may have lost its task
# message: the broker refused it after the request committed (rotation/dispatch.py logs that
# and leaves the rotation queued) or lost it in an outage. The tick then hands the gateway a
# drain, so such a rotation runs at the next tick instead of after its lease (5 minutes). A
# healthy broker hands a message to an idle worker in well under a second, so a few seconds
# tell a lost message from one on its way; a rotation that merely waits behind a busy gateway
# gets a drain it did not need, which finds the queue taken and ends at once (claims are
# conditional, so nothing runs twice). Short against the one-minute tick: a lost message
# waits at most a minute and this long.
LOST_MESSAGE_SECONDS = 5


def gateway_hand_over_waiting(*, gateway_name: str, now: datetime | None = None) -> int:
    """Start drains for the gateway's queued rotations requested more than
    LOST_MESSAGE_SECONDS ago. Returns how many such rotations were seen (capped at what the
    drains started can take at once)."""
    now = now or timezone.now()
    workers = settings.Q_CLUSTER.get("workers", 2)
    waiting = Rotation.objects.filter(
        gateway_name=gateway_name,
        status=Rotation.QUEUED,
        created_at__lt=now - timedelta(seconds=LOST_MESSAGE_SECONDS),
    )
    # Beyond this many, drain_task_count starts no more drains.
    seen = len(waiting.values_list("pk", flat=True)[: workers * dispatch.DRAIN_BATCH])
    if seen:
        dispatch.enqueue_drains({gateway_name: seen})
    return seen


# Work that apps above rotation hand to every gateway's tick (the events outbox delivers
# here): name -> callable returning a JSON-able summary. Filled in their ready(); rotation
# never imports them.
TICK_HOOKS: dict[str, Callable[[], object]] = {}


def gateway_tick(*, gateway_name: str) -> dict:
    """What a gateway does every minute and at start: heartbeat, recovery, drains for
    rotations whose task message was lost, retiring the passwords kept for requests that can
    no longer arrive, retiring replaced access keys that are due, scheduling, and the tick hooks of the apps above."""
    gateway_heartbeat(gateway_name=gateway_name)  # first: whatever fails below, it is alive
    dispatch.ensure_gateway_schedule(gateway_name)
    gateways_report_offline()
    recovered = engine.rotation_recover(gateway_name=gateway_name)
    waiting = gateway_hand_over_waiting(gateway_name=gateway_name)
    retired = engine.rotations_retire_unanswered()
    keys = retirement.keys_retire_due(gateway_name=gateway_name)
    requested = scheduler.rotation_schedule_due()
    summary: dict = {
        "recovered": recovered,
        "waiting": waiting,
        "retired": retired,
        "keys": keys,
        "requested": requested,
    }
    # One app's failure must not stop the heartbeat's next tick.
    summary.update(_run_hooks(TICK_HOOKS))
    return summary


# Work that apps above rotation do in a drain's own thread after each batch it records
# (metrics writes the AWS calls counted on the AWS lane, whose thread has no database):
# name -> callable. Filled in their ready(); rotation never imports them.
DRAIN_HOOKS: dict[str, Callable[[], object]] = {}


def gateway_drain(*, gateway_name: str, budget_seconds: float = 60.0) -> int:
    """Run queued rotations of one gateway until none are left or the time budget is spent.

    Batch by batch: while the AWS lane (rotation/lane.py) makes a batch's AWS calls, this
    thread records the previous batch's successes and claims the next batch; then it takes the
    batch's outcomes in order, as if it had made the calls itself. A batch with a rotation the
    lane cannot run is attempted here, rotation by rotation."""
    # Successes are recorded together, one write transaction for several rotations: while the
    # lane works on the next batch, or before a failure is handled.
    done: list[tuple[Rotation, str]] = []

    def defer(rotation: Rotation, password: str) -> str:
        done.append((rotation, password))
        return Rotation.SUCCEEDED

    def flush() -> None:
        if done:
            engine.rotations_finish(done=done)
            done.clear()
            _run_hooks(DRAIN_HOOKS)

    workers = settings.Q_CLUSTER.get("workers", 2)
    limit = dispatch.DRAIN_BATCH

    def claim() -> list[Rotation] | None:
        nonlocal limit
        claimed = engine.rotations_claim_batch(gateway_name=gateway_name, limit=limit)
        # A full batch: the queue may be deep, and the next batch larger (counted only then:
        # a short batch means the queue is nearly empty).
        if claimed is not None and len(claimed) == limit:
            cap = dispatch.drain_batch_count_cap(workers)
            queued = engine.rotations_queued_count(gateway_name=gateway_name, cap=cap)
            limit = dispatch.drain_batch_size(queued, workers)
        else:
            limit = dispatch.DRAIN_BATCH
        return claimed

    started, ran, spent = time.monotonic(), 0, False
    # Claimed and not yet recorded: a failing database hands them back at once (their leases
    # would hold them for minutes); one already ended is no longer ours and stays as it is.
    held: list[Rotation] = []
    with engine.released_on_database_error(held):
        try:
            with AwsLane() as lane:
                batch = claim()
                while batch is not None:
                    held[:] = [rotation for rotation, _ in done] + batch
                    secrets = engine.rotations_lane_secrets(batch) or {}
                    outcomes = {
                        rotation.pk: lane.submit(
                            engine.rotation_apply, rotation, secrets[rotation.pk]
                        )
                        for rotation in batch
                        if rotation.pk in secrets
                    }
                    flush()
                    spent = time.monotonic() - started >= budget_seconds
                    following = None if spent else claim()
                    held += following or []
                    for rotation in batch:
                        engine.rotation_run_claimed(
                            rotation=rotation,
                            finish=defer,
                            before_failure=flush,
                            applied=outcomes.get(rotation.pk),
                        )
                        ran += 1
                    batch = following
        finally:
            flush()  # after the lane stopped: every outcome it gave has been taken
    if spent:
        dispatch.enqueue_drains({gateway_name: 1})  # more work left: hand it to the next task
    return ran


def _run_hooks(hooks: dict[str, Callable[[], object]]) -> dict:
    summary: dict = {}
    for name, hook in hooks.items():
        try:
            summary[name] = hook()
        except Exception:  # one app's failure must not stop the gateway's work
            logger.exception("hook %s failed", name)
            summary[name] = "failed"
    return summary
