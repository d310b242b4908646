"""The scheduler: the due scan that requests a rotation of every record whose next run has come,
and moves each record's next run on.

The schedule is data, not memory: ``RotationSettings.next_run_at`` is computed when settings
are saved and when a rotation ends (rotation/schedules.py), indexed, and this pass claims the
due rows in batches. A restart loses nothing, and a run missed during downtime happens once.
Each gateway runs the pass every minute in its tick (rotation/gateways.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from django.db import connection, transaction
from django.db.models import (
    Case,
    DateTimeField,
    F,
    Lookup,
    OuterRef,
    Q,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast
from django.utils import timezone

from rotation import dispatch
from rotation.engine import rotations_insert_queued
from rotation.models import RotationSettings
from rotation.schedules import next_run_or_none, schedule_problem
from vault.models import PamUser, new_uid

ON_DEMAND = {"type": "ON_DEMAND"}

logger = logging.getLogger(__name__)

# Apps above rotation hear of each finished pass (metrics: its duration): name ->
# callable(seconds, requested). Filled in their ready(); rotation never imports them.
PASS_HOOKS: dict[str, Callable[[float, int], None]] = {}


# A pass reads the ids of up to this many batches of due settings at a time, most overdue
# first, and claims them in batches in id order: the rows of records with neighbouring ids
# share pages (of the settings, the records, their counts, and each index), so a batch reads
# far fewer pages than one in next-run order, whose records are scattered over the vault.
DUE_WINDOW_BATCHES = 100


def rotation_schedule_due(*, now: datetime | None = None, batch_size: int = 1000) -> int:
    """Request a rotation for every enabled record whose next run is due. Returns how many.

    A record the vault does not manage (``PamUser.managed`` off) is never rotated: its due
    settings are claimed with the others and only their next run moves on, so the scan keeps
    reading the settings' own index (no join with the records to find what is due), the
    query count stays the same, and such a record is not read again by every pass.

    One pass costs a fixed number of queries per batch (three on PostgreSQL: claim the due
    settings, insert the rotations, move the next runs) and one per window of
    DUE_WINDOW_BATCHES batches, whatever the number of records, and a few drain tasks per
    gateway. A record due many times over (the system was down) is rotated once, and its next
    run is computed from now.
    """
    now = now or timezone.now()
    began = time.monotonic()
    requested = 0
    started: set[str] = set()  # gateways whose drains were started in this pass
    waiting: dict[str, int] = defaultdict(int)  # rotations queued for them since
    window_size = batch_size * DUE_WINDOW_BATCHES
    after = None
    while True:
        window = _due_window(now, window_size, after)
        more = len(window) == window_size
        if more:  # there may be more behind it: where to go on from (gone: the next pass)
            last = RotationSettings.objects.filter(pk=window[-1]).values_list("next_run_at")
            after = (last.first() or (None,))[0], window[-1]
            more = after[0] is not None
        ids = sorted(window)
        for start in range(0, len(ids), batch_size):
            per_gateway = _schedule_batch(now, ids[start : start + batch_size])
            for gateway_name, count in per_gateway.items():
                requested += count
                waiting[gateway_name] += count
            # Start each gateway's drains as soon as it has work; the pass may run a while.
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
    for name, hook in list(PASS_HOOKS.items()):
        try:
            hook(time.monotonic() - began, requested)
        except Exception:  # an observer's failure must not fail the pass
            logger.exception("scheduler pass hook %s failed", name)
    return requested


def _due_window(now: datetime, limit: int, after: tuple | None) -> list[int]:
    """The ids of up to ``limit`` due settings, most overdue first (an index holds them in
    that order), after ``after`` = (next run, id) of the last of the previous window: the index
    is read from there on, not through the entries the previous windows' rows left behind
    when their next runs moved (a row another pass held, and skipped, is left to that pass)."""
    due = RotationSettings.objects.filter(enabled=True, next_run_at__lte=now)
    if after is not None:
        next_run_at, pk = after
        due = due.filter(
            Q(next_run_at__gt=next_run_at) | Q(next_run_at=next_run_at, pk__gt=pk),
            next_run_at__gte=next_run_at,
        )
    return list(due.order_by("next_run_at", "pk").values_list("pk", flat=True)[:limit])


class _AnyOf(Lookup):
    """``lhs = ANY(%s::bigint[])``: one parameter for the whole list."""

    lookup_name = "any_of"  # (not registered: used as an expression)
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, params = compiler.compile(self.lhs)
        return f"{lhs} = ANY(%s::bigint[])", [*params, list(self.rhs)]


def _pk_in(ids: list[int]):
    """pk IN ids; on PostgreSQL ``= ANY(array)``, one parameter instead of one per id (the
    driver parses every placeholder of a statement in Python: 2 ms per thousand)."""
    if connection.vendor == "postgresql":
        return _AnyOf(F("pk"), ids)
    return Q(pk__in=ids)


def _schedule_batch(now: datetime, ids: list[int]) -> dict[str, int]:
    """One batch of due settings: their rotations queued and next runs moved, in one
    transaction. Returns {gateway name: rotations queued}."""
    with transaction.atomic():
        rows = _due_rows(now, ids)
        if not rows:
            return {}
        per_gateway = _queue_due(rows, now)
        _move_next_runs(rows, now)
    return per_gateway


def _due_rows(now: datetime, ids: list[int]) -> list[tuple]:
    """(settings pk, record id, configuration id, schedule, use the configuration's schedule,
    the configuration's schedule, whether the record is managed, gateway name) of the settings
    among ``ids`` that are still due, locked where the database can skip rows another pass holds (and those are left to
    it). The schedules come as JSON text: records share a handful, and each is decoded once."""
    due = RotationSettings.objects.filter(_pk_in(ids), enabled=True, next_run_at__lte=now)
    if connection.features.has_select_for_update_skip_locked:
        due = due.select_for_update(skip_locked=True, of=("self",))
    # The record's flag as a subquery (one primary-key probe per row), not a join: PostgreSQL
    # plans a join with the records as a hash join over all of them, a scan of the whole table
    # per batch (64 ms against 2 ms per 1,000 rows at 100,000 records, and growing with them).
    managed = PamUser.objects.filter(pk=OuterRef("pam_user_id")).order_by().values("managed")
    # Plain values, not model instances: a batch is thousands of rows.
    return list(
        due.annotate(
            schedule_text=Cast("schedule", TextField()),
            configuration_schedule_text=Cast(
                "configuration__default_rotation_schedule", TextField()
            ),
            record_managed=Subquery(managed[:1]),
        ).values_list(
            "pk",
            "pam_user_id",
            "configuration_id",
            "schedule_text",
            "use_configuration_schedule",
            "configuration_schedule_text",
            "record_managed",
            "configuration__gateway__name",
        )
    )


def _queue_due(rows: list[tuple], now: datetime) -> dict[str, int]:
    """A scheduled rotation for each due record that the vault manages and that has none
    active (the one-active-rotation constraint skips the others, and any record a racing
    request won meanwhile). Returns how many were queued per gateway."""
    # In record order: two inserts waiting for each other's rows in that constraint's index
    # in opposite orders would deadlock.
    readable = _readable_schedules(rows)
    new = sorted(
        (
            (new_uid(), pam_user_id, configuration_id, gateway_name)
            for pk, pam_user_id, configuration_id, *_, managed, gateway_name in rows
            if managed and pk in readable
        ),
        key=lambda row: row[1],
    )
    per_gateway: dict[str, int] = defaultdict(int)
    for _pk, gateway_name in rotations_insert_queued(new, now=now, trigger="scheduled"):
        per_gateway[gateway_name] += 1
    return dict(per_gateway)


def _effective_schedule_text(row: tuple) -> str | None:
    """The JSON text of the schedule a due row follows: its own or its configuration's."""
    _, _, _, schedule, use_config, config_schedule, *_ = row
    return config_schedule if use_config else schedule


def _readable_schedules(rows: list[tuple]) -> set[int]:
    """The settings pks among ``rows`` whose schedule still reads. One saved under older rules
    that no longer reads (rotation.W003/W004) queues nothing, not even the run planned when it
    was saved: its meaning is unknown now. Each distinct schedule is read once."""
    problems: dict[str | None, str] = {}
    for row in rows:
        text = _effective_schedule_text(row)
        if text not in problems:
            problems[text] = schedule_problem(json.loads(text) if text else None)
    return {row[0] for row in rows if not problems[_effective_schedule_text(row)]}


def _move_next_runs(rows: list[tuple], now: datetime) -> None:
    """Each due record's next run after now (so a run missed during downtime happens once).

    Records share a handful of schedules: compute each next run once, and write each
    distinct value to all its rows at once (one UPDATE, a CASE over the groups).
    """
    next_by_schedule: dict[str | None, datetime | None] = {}
    ids_by_next: dict[datetime | None, list[int]] = defaultdict(list)
    for row in rows:
        pk, text = row[0], _effective_schedule_text(row)
        if text not in next_by_schedule:
            effective = (json.loads(text) if text else None) or ON_DEMAND
            next_by_schedule[text] = next_run_or_none(effective, now, settings_pk=pk)
        ids_by_next[next_by_schedule[text]].append(pk)
    moved = RotationSettings.objects.filter(_pk_in([row[0] for row in rows]))
    if len(ids_by_next) == 1:
        moved.update(next_run_at=next(iter(ids_by_next)))
    else:
        moved.update(
            next_run_at=Case(
                *[When(_pk_in(ids), then=Value(value)) for value, ids in ids_by_next.items()],
                output_field=DateTimeField(),
            )
        )
