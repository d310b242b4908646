"""The scheduler: the due scan that requests a rotation of every record whose next run has come,
and moves each record's next run on.

The schedule is data, not memory: ``RotationSettings.next_run_at`` is computed when settings
are saved and when a rotation ends (rotation/schedules.py), indexed, and this pass claims the
due rows in batches. A restart loses nothing, and a run missed during downtime happens once.
Each gateway runs the pass every minute in its tick (rotation/gateways.py).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Case, DateTimeField, Value, When
from django.utils import timezone

from rotation import dispatch
from rotation.engine import lease_deadline
from rotation.models import Rotation, RotationSettings
from rotation.schedules import next_run_or_none


def _schedule_key(schedule: dict) -> str:
    return repr(sorted(schedule.items()))


def rotation_schedule_due(*, now: datetime | None = None, batch_size: int = 1000) -> int:
    """Request a rotation for every enabled record whose next run is due. Returns how many.

    One pass costs a fixed number of queries per batch (five), whatever the number of
    records, and a few drain tasks per gateway. A record due many times over (the system was
    down) is rotated once, and its next run is computed from now.
    """
    now = now or timezone.now()
    requested = 0
    started: set[str] = set()  # gateways whose drains were started in this pass
    waiting: dict[str, int] = defaultdict(int)  # rotations queued for them since
    while True:
        per_gateway, more = _schedule_batch(now, batch_size)
        for gateway_name, count in per_gateway.items():
            requested += count
            waiting[gateway_name] += count
        # Start each gateway's drains as soon as it has work; the pass may run for a while.
        first = {g: n for g, n in waiting.items() if g not in started}
        if first:
            transaction.on_commit(lambda first=first: dispatch.enqueue_drains(first))
            started.update(first)
            for gateway_name in first:
                waiting[gateway_name] = 0
        if not more:
            break
    # Drains may have emptied the queue and stopped while later batches were queued.
    later = {g: n for g, n in waiting.items() if n}
    if later:
        transaction.on_commit(lambda: dispatch.enqueue_drains(later))
    return requested


def _schedule_batch(now: datetime, batch_size: int) -> tuple[dict[str, int], bool]:
    """One batch of due settings: their rotations queued and next runs moved, in one
    transaction. Returns ({gateway name: rotations queued}, whether more may be due)."""
    with transaction.atomic():
        rows = _due_rows(now, batch_size)
        if not rows:
            return {}, False
        new = _queue_due(rows, now)
        _move_next_runs(rows, now)
        per_gateway: dict[str, int] = defaultdict(int)
        for rotation in new:
            per_gateway[rotation.gateway_name] += 1
    return dict(per_gateway), len(rows) == batch_size


def _due_rows(now: datetime, batch_size: int) -> list[tuple]:
    """(settings pk, record id, configuration id, schedule, use the configuration's schedule,
    the configuration's schedule, gateway name) of up to ``batch_size`` due settings, locked
    where the database can skip rows another pass holds."""
    due = RotationSettings.objects.filter(enabled=True, next_run_at__lte=now).order_by(
        "next_run_at"
    )
    if connection.features.has_select_for_update_skip_locked:
        due = due.select_for_update(skip_locked=True, of=("self",))
    # Plain values, not model instances: a batch is thousands of rows.
    return list(
        due.values_list(
            "pk",
            "pam_user_id",
            "configuration_id",
            "schedule",
            "use_configuration_schedule",
            "configuration__default_rotation_schedule",
            "configuration__gateway__name",
        )[:batch_size]
    )


def _queue_due(rows: list[tuple], now: datetime) -> list[Rotation]:
    """A scheduled rotation for each due record that has none active."""
    busy = set(
        Rotation.objects.filter(
            pam_user_id__in=[row[1] for row in rows], status__in=Rotation.ACTIVE
        ).values_list("pam_user_id", flat=True)
    )
    lease = lease_deadline(now)
    new = [
        Rotation(
            pam_user_id=pam_user_id,
            configuration_id=configuration_id,
            gateway_name=gateway_name,
            trigger="scheduled",
            lease_expires_at=lease,
            created_at=now,
        )
        for _, pam_user_id, configuration_id, *_, gateway_name in rows
        if pam_user_id not in busy
    ]
    # A request racing ours may win a record; the constraint keeps it to one rotation.
    Rotation.objects.bulk_create(new, ignore_conflicts=True)
    return new


def _move_next_runs(rows: list[tuple], now: datetime) -> None:
    """Each due record's next run after now (so a run missed during downtime happens once).

    Records share a handful of schedules: compute each next run once, and write each
    distinct value to all its rows at once (one UPDATE, a CASE over the groups).
    """
    next_by_schedule: dict[str, datetime | None] = {}
    ids_by_next: dict[datetime | None, list[int]] = defaultdict(list)
    for pk, _, _, schedule, use_config, config_schedule, _ in rows:
        effective = (config_schedule if use_config else schedule) or {"type": "ON_DEMAND"}
        key = _schedule_key(effective)
        if key not in next_by_schedule:
            next_by_schedule[key] = next_run_or_none(effective, now, settings_pk=pk)
        ids_by_next[next_by_schedule[key]].append(pk)
    moved = RotationSettings.objects.filter(pk__in=[row[0] for row in rows])
    if len(ids_by_next) == 1:
        moved.update(next_run_at=next(iter(ids_by_next)))
    else:
        moved.update(
            next_run_at=Case(
                *[When(pk__in=ids, then=Value(value)) for value, ids in ids_by_next.items()],
                output_field=DateTimeField(),
            )
        )
