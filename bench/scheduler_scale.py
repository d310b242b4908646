#!/usr/bin/env python
"""Benchmark: one scheduler pass over 100,000 records, 10,000 of them due.

    .venv/bin/python bench/scheduler_scale.py --records 100000 --due 10000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python bench/scheduler_scale.py --records 100000 --due 10000 --flush

Bulk-creates the PAM Users and their rotation settings (a mix of daily, weekly, monthly and
cron schedules in several time zones; `--due` of them with a next run in the past), then times
one `rotation_schedule_due()` pass: it claims the due settings in batches, creates a queued
rotation for each, moves each next run forward and enqueues the drain tasks (django-q2's broker,
Redis when REDIS_URL is set). The rotations themselves do not run (no gateway is started). SQL
queries are counted with connection.execute_wrapper. A second, smaller pass (a tenth of the due
records) shows that the query count follows the number of batches, not of records.
The last line is `RESULT scheduler_scale seconds=.. queries=.. due=.. records=..`.
"""

from __future__ import annotations

import argparse
import collections
import math
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as common  # noqa: E402

# What people pick; several records share each, as they do in a real vault.
SCHEDULES = [
    {"type": "DAILY", "time": "02:00", "tz": "UTC", "intervalCount": 1},
    {"type": "DAILY", "time": "03:30", "tz": "Europe/Berlin", "intervalCount": 1},
    {"type": "WEEKLY", "utcTime": "15:44", "weekday": "SUNDAY", "intervalCount": 1},
    {"type": "WEEKLY", "time": "09:00", "weekday": "MONDAY", "tz": "America/New_York"},
    {"type": "MONTHLY_BY_DAY", "time": "01:00", "monthDay": 31, "tz": "UTC"},
    {"type": "MONTHLY_BY_WEEKDAY", "time": "22:15", "weekday": "FRIDAY", "occurrence": "LAST"},
    {"type": "CRON", "cron": "0 */6 * * *", "tz": "UTC"},
    {"type": "CRON", "cron": "30 4 1,15 * *", "tz": "Asia/Tokyo"},
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--flush", action="store_true", help="empty DATABASE_URL's data first")
    return parser.parse_args()


class QueryCounter:
    """connection.execute_wrapper that counts statements by kind and the time spent in them."""

    def __init__(self) -> None:
        self.kinds: collections.Counter[str] = collections.Counter()
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.kinds[sql.lstrip().split(None, 1)[0].upper()] += 1

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


def one_pass(batch_size: int) -> tuple[float, QueryCounter, int]:
    from django.db import connection

    from rotation import scheduler

    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        requested = scheduler.rotation_schedule_due(batch_size=batch_size)
        elapsed = time.perf_counter() - started
    return elapsed, counter, requested


def main() -> int:
    args = parse_args()
    if not 0 < args.due <= args.records:
        raise SystemExit("bench: --due must be between 1 and --records")
    env = common.bootstrap()
    try:
        common.setup_django(env, flush=args.flush)
        from django.utils import timezone
        from django_q.models import OrmQ

        from rotation.models import Rotation, RotationSettings
        from rotation.schedules import normalize_schedule

        print(f"machine: {common.machine()}; database+broker: {env.label}")
        schedules = [normalize_schedule(s) for s in SCHEDULES]
        now = timezone.now()
        # Spread the due records evenly through the population.
        every = args.records / args.due

        def settings_for(n: int):
            schedule = schedules[n % len(schedules)]
            due = math.floor(n / every) != math.floor((n + 1) / every)
            if due:
                return schedule, now - timedelta(minutes=1 + n % 600)
            return schedule, now + timedelta(days=1 + n % 30)

        started = time.perf_counter()
        common.make_world(count=args.records, settings_for=settings_for, progress=True)
        due = RotationSettings.objects.filter(next_run_at__lte=timezone.now()).count()
        print(f"setup: {args.records} records ({due} due) in {time.perf_counter() - started:.1f} s")

        seconds, counter, requested = one_pass(args.batch_size)
        queued = Rotation.objects.filter(status=Rotation.QUEUED, trigger="scheduled").count()
        still_due = RotationSettings.objects.filter(next_run_at__lte=timezone.now()).count()
        tasks = OrmQ.objects.count() if not env.redis_url else "(redis)"

        # The same pass over a tenth as many due records.
        small = max(1, args.due // 10)
        Rotation.objects.all().delete()
        ids = list(RotationSettings.objects.values_list("pk", flat=True)[:small])
        RotationSettings.objects.filter(pk__in=ids).update(next_run_at=now - timedelta(minutes=5))
        small_seconds, small_counter, small_requested = one_pass(args.batch_size)

        rows = []
        for label, secs, qc, n in (
            (f"{requested} due", seconds, counter, requested),
            (f"{small_requested} due", small_seconds, small_counter, small_requested),
        ):
            batches = math.ceil(n / args.batch_size) if n else 0
            rows.append(
                (
                    label,
                    secs,
                    batches,
                    qc.total,
                    ", ".join(f"{k} {v}" for k, v in sorted(qc.kinds.items())),
                    qc.seconds,
                )
            )
        common.table(rows, ["pass", "seconds", "batches", "queries", "by kind", "seconds in SQL"])
        print(
            f"queued rotations after the first pass: {queued}; still due: {still_due}; "
            f"broker tasks: {tasks}"
        )
        ok = requested == due == queued and still_due == 0
        if not ok:
            print("bench: the pass did not request exactly the due records")
            return 1
        print(
            f"RESULT scheduler_scale seconds={seconds:.2f} queries={counter.total} "
            f"due={requested} records={args.records} small_pass_queries={small_counter.total} "
            f"db={env.label}"
        )
        return 0
    finally:
        common.purge_broker()
        env.cleanup()


if __name__ == "__main__":
    sys.exit(main())
