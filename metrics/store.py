"""What the gateways and the scrape write for /metrics: AWS call latencies and errors (buffered
per process, written in a few statements), the last due-scan pass, and rotation totals folded
from the Rotation table so that a scrape never counts millions of rows.

Rotation totals: a rotation is counted once it has finished (succeeded or failed). Rotations
whose finished_at is older than the mark "rotations" are summed in RotationTotal; a scrape adds
those finished after the mark with one grouped query that reads only them (the finished_at
index), and at most once a minute moves the mark up to SETTLE before now, folding the rotations
in between into RotationTotal, under the mark row's lock (so two scrapes never fold the same
rotations). SETTLE leaves time for a finishing transaction to commit (its finished_at is taken
before it commits) and for gateways' clocks to differ a little. A rotation committed with a
finished_at already behind the mark (a host clock more than SETTLE behind, or rows written
with an old finished_at by hand) is not counted; a record deleted after its rotations were
folded leaves them counted: totals never go down, as a Prometheus counter must not.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from metrics.models import AwsCallBucket, AwsCallError, MetricsMark, RotationTotal, SchedulerPass
from rotation.models import Rotation

logger = logging.getLogger(__name__)

# Upper bounds (seconds) of the AWS call latency histogram's buckets; +Inf is implied.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SETTLE = timedelta(minutes=5)
FOLD_EVERY = timedelta(minutes=1)
ROTATIONS_MARK = "rotations"
FINISHED = (Rotation.SUCCEEDED, Rotation.FAILED)

# --- AWS calls (gateway processes) -------------------------------------------------------------

_lock = threading.Lock()
_buckets: dict[tuple[str, int], list] = defaultdict(lambda: [0, 0.0])
_errors: dict[tuple[str, str], int] = defaultdict(int)
_last_flush = time.monotonic()
_last_pass: tuple[datetime, float, int] | None = None


def aws_call_observe(action: str, seconds: float, code: str) -> None:
    """rotation.aws.CALL_HOOKS: one AWS call, kept in memory until the next flush."""
    with _lock:
        entry = _buckets[(action, bisect_left(LATENCY_BUCKETS, seconds))]
        entry[0] += 1
        entry[1] += seconds
        if code:
            _errors[(action, code)] += 1
    # A drain's AWS lane has no database: its calls are written by the drain's own thread
    # (aws_calls_flush_due, after each batch it records) or by the tick.
    if threading.current_thread() is threading.main_thread():
        aws_calls_flush_due()


def aws_calls_flush_due() -> int:
    """rotation.gateways.DRAIN_HOOKS: aws_calls_flush, when the last one is old enough."""
    with _lock:
        due = time.monotonic() - _last_flush >= settings.METRICS_AWS_FLUSH_SECONDS
    return aws_calls_flush() if due else 0


def aws_calls_flush() -> int:
    """Add the calls observed in this process since the last flush to the tables. Returns how
    many rows it changed. On a database error they are kept for the next flush."""
    global _last_flush
    with _lock:
        buckets, errors = dict(_buckets), dict(_errors)
        _buckets.clear()
        _errors.clear()
        _last_flush = time.monotonic()
    if not buckets and not errors:
        return 0
    try:
        with transaction.atomic():
            for (action, bucket), (n, seconds) in buckets.items():
                _add(AwsCallBucket, {"action": action, "bucket": bucket}, n=n, seconds=seconds)
            for (action, code), n in errors.items():
                _add(AwsCallError, {"action": action, "code": code}, n=n)
    except Exception:  # noqa: BLE001 - a database error or none reachable: never the AWS call's
        logger.warning("metrics: AWS call counts not written; kept for the next flush")
        with _lock:
            for key, (n, seconds) in buckets.items():
                _buckets[key][0] += n
                _buckets[key][1] += seconds
            for key, n in errors.items():
                _errors[key] += n
        return 0
    return len(buckets) + len(errors)


def _add(model, key: dict, **amounts) -> None:
    """Add `amounts` to the row `key`, made on first use (one UPDATE once it exists)."""
    increments = {field: F(field) + value for field, value in amounts.items()}
    if model.objects.filter(**key).update(**increments):
        return
    try:
        with transaction.atomic():
            model.objects.create(**key, **amounts)
    except IntegrityError:  # another gateway made it meanwhile
        model.objects.filter(**key).update(**increments)


# --- the due scan (gateway processes) ----------------------------------------------------------


def scheduler_pass_observe(seconds: float, requested: int) -> None:
    """rotation.scheduler.PASS_HOOKS: remember the pass; the tick that ran it writes it."""
    global _last_pass
    _last_pass = (timezone.now(), seconds, requested)


def metrics_tick() -> dict:
    """rotation.gateways.TICK_HOOKS: write the last pass and the calls not flushed yet."""
    global _last_pass
    written = _last_pass
    if written is not None:
        finished_at, seconds, requested = written
        SchedulerPass.objects.update_or_create(
            pk=1,
            defaults={"finished_at": finished_at, "seconds": seconds, "requested": requested},
        )
        _last_pass = None
    return {"aws_rows": aws_calls_flush(), "due_scan": written is not None}


# --- rotation totals (the scrape) --------------------------------------------------------------


def _by_key(rotations) -> dict[tuple[str, str, str], int]:
    rows = rotations.values_list("pam_user__rotation_settings__method", "trigger", "status")
    return {
        (method or "none", trigger, outcome): n
        for method, trigger, outcome, n in rows.annotate(n=Count("id")).order_by()
        # The status is tested here, not in the query: the query then reads the finished_at
        # index alone (SQLite would otherwise walk the status index over every rotation).
        if outcome in FINISHED
    }


def _finished(after: datetime | None, until: datetime | None = None):
    q = Q(finished_at__isnull=False)
    if after is not None:
        q &= Q(finished_at__gt=after)
    if until is not None:
        q &= Q(finished_at__lte=until)
    return Rotation.objects.filter(q)


def _mark() -> datetime | None:
    return MetricsMark.objects.filter(name=ROTATIONS_MARK).values_list("at", flat=True).first()


def _fold_due(mark: datetime | None, horizon: datetime) -> bool:
    return mark is None or horizon - mark >= FOLD_EVERY


def rotation_totals_fold(*, now: datetime | None = None) -> int:
    """Move the mark up to SETTLE before now, adding the rotations it passes to RotationTotal,
    if it is at least FOLD_EVERY behind that. Returns how many rotations it added."""
    horizon = (now or timezone.now()) - SETTLE
    if not _fold_due(_mark(), horizon):
        return 0  # read without a lock: most scrapes write nothing
    with transaction.atomic():
        mark = MetricsMark.objects.select_for_update().filter(name=ROTATIONS_MARK).first()
        if mark is None:
            mark, _ = MetricsMark.objects.get_or_create(name=ROTATIONS_MARK)
        if not _fold_due(mark.at, horizon):
            return 0  # another scrape folded meanwhile
        added = _by_key(_finished(mark.at, horizon))
        if added:
            existing = {
                (t.method, t.trigger, t.outcome): t
                for t in RotationTotal.objects.select_for_update()
            }
            for key, n in added.items():
                if key in existing:
                    RotationTotal.objects.filter(pk=existing[key].pk).update(n=F("n") + n)
            RotationTotal.objects.bulk_create(
                RotationTotal(method=method, trigger=trigger, outcome=outcome, n=n)
                for (method, trigger, outcome), n in added.items()
                if (method, trigger, outcome) not in existing
            )
        MetricsMark.objects.filter(pk=mark.pk).update(at=horizon)
    return sum(added.values())


def rotation_totals(*, now: datetime | None = None) -> dict[tuple[str, str, str], int]:
    """Finished rotations per (method, trigger, outcome): the folded totals and, added to
    them, the rotations finished after the mark."""
    rotation_totals_fold(now=now)
    mark = _mark()
    totals = {(t.method, t.trigger, t.outcome): t.n for t in RotationTotal.objects.all()}
    for key, n in _by_key(_finished(mark)).items():
        totals[key] = totals.get(key, 0) + n
    return totals
