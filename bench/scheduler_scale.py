#!/usr/bin/env python
"""Benchmark: one scheduler pass over many records, a tenth of them (or `--due`) due.

    .venv/bin/python bench/scheduler_scale.py --records 100000 --due 10000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/vault_bench \\
        .venv/bin/python bench/scheduler_scale.py --records 1000000 --due 100000 --flush
    ... --reuse   (measure again the vault the last run left, without seeding it)

Seeds the PAM Users and their rotation settings (a mix of daily, weekly, monthly and cron
schedules in several time zones; `--due` of them, spread evenly, with a next run in the past)
in batches of 10,000 rows (on PostgreSQL INSERTs of 1,000 rows each, elsewhere executemany),
through the database's triggers like any insert (on PostgreSQL followed by VACUUM ANALYZE, what
autovacuum does after a bulk load; this project's server runs with autovacuum off). Then times
one `rotation_schedule_due()` pass: it claims the due settings in batches, creates a queued
rotation for each, moves each next run forward and enqueues the drain tasks (django-q2's
broker, Redis when REDIS_URL is set). The rotations themselves do not run (no gateway). SQL
statements are counted and timed with connection.execute_wrapper, by statement shape, and
COMMIT apart, so the table says where the pass's time went (SQL, including the triggers each
statement fires; COMMIT; Python); `--profile` runs the pass under cProfile as well and prints the functions that took the most time. A second, smaller pass
(a tenth of the due records) shows that the query count follows the number of batches, not of
records. `--check-counts` compares the home page's counts with the rows after the pass.

`--reuse` deletes the rotations an earlier run queued and makes the same records due again
(exactly `--due` of them), so a vault of 1,000,000 is seeded once.

The last line is `RESULT scheduler_scale seconds=.. queries=.. queries_per_1000_due=.. due=..
records=..`.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import math
import pstats
import re
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
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure again the vault an earlier run with the same --records left in "
        "DATABASE_URL (its rotations are deleted and --due records made due again)",
    )
    parser.add_argument("--profile", action="store_true", help="run the pass under cProfile too")
    parser.add_argument(
        "--check-counts",
        action="store_true",
        help="compare the home page's counts with the rows after the pass (slow at 1,000,000)",
    )
    return parser.parse_args()


SEED_BATCH = 10_000
FOLDER = "Bench"


def _shape(sql: str) -> str:
    """A statement without its values: the key its count and time are kept under."""
    text = re.sub(r"\s+", " ", sql.strip())
    text = re.sub(r"\((?:%s, )*%s\)(?:, \((?:%s, )*%s\))*", "(...)", text)
    text = re.sub(r"IN \(\.\.\.\)", "IN (...)", text)
    return text if len(text) <= 110 else text[:107] + "..."


class QueryCounter:
    """connection.execute_wrapper that counts statements by kind and the time spent in them."""

    def __init__(self) -> None:
        self.kinds: collections.Counter[str] = collections.Counter()
        self.seconds = 0.0
        self.commits = 0.0
        self.by_shape: dict[str, list] = collections.defaultdict(lambda: [0, 0.0])

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent = time.perf_counter() - started
            self.seconds += spent
            self.kinds[sql.lstrip().split(None, 1)[0].upper()] += 1
            entry = self.by_shape[_shape(sql)]
            entry[0] += 1
            entry[1] += spent

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


def one_pass(batch_size: int, profile: bool = False) -> tuple[float, QueryCounter, int]:
    from django.db import connection

    from rotation import scheduler

    counter = QueryCounter()
    profiler = cProfile.Profile() if profile else None
    # COMMIT is not a statement Django executes: time it apart (on PostgreSQL the deferred
    # foreign-key checks and the counts' deferred trigger run there).
    commit = connection.commit

    def timed_commit():
        started = time.perf_counter()
        try:
            return commit()
        finally:
            counter.commits += time.perf_counter() - started

    connection.commit = timed_commit
    try:
        with connection.execute_wrapper(counter):
            started = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            requested = scheduler.rotation_schedule_due(batch_size=batch_size)
            if profiler is not None:
                profiler.disable()
            elapsed = time.perf_counter() - started
    finally:
        del connection.commit
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        print("cProfile of the pass (own time, top 15):")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))
    return elapsed, counter, requested


def schedules():
    from rotation.schedules import normalize_schedule

    return [normalize_schedule(s) for s in SCHEDULES]


def target(n: int, records: int, due: int, now, plan=None):
    """Record n's schedule and next run: `due` records spread evenly are due (a minute to ten
    hours ago), the others in 1 to 30 days."""
    plan = plan or schedules()
    every = records / due
    schedule = plan[n % len(plan)]
    if math.floor(n / every) != math.floor((n + 1) / every):
        return schedule, now - timedelta(minutes=1 + n % 600)
    return schedule, now + timedelta(days=1 + n % 30)


def seed(records: int, due: int, now) -> None:
    """`records` PAM Users with rotation settings, SEED_BATCH rows per executemany."""
    from django.db import connection, transaction

    from rotation.models import RotationSettings
    from vault.models import PamUser

    folder, config = common.make_world(count=0, endpoint="http://127.0.0.1:9", folder_name=FOLDER)
    user_sql, user_row = common.row_inserter(
        PamUser,
        PamUser(folder=folder, title="-", login="-", distinguished_name="-"),
        ["uid", "title", "login", "password_enc", "distinguished_name"],
    )
    settings_sql, settings_row = common.row_inserter(
        RotationSettings,
        RotationSettings(
            configuration=config,
            length=24,
            min_upper=2,
            min_lower=2,
            min_digits=2,
            min_symbols=2,
        ),
        ["pam_user", "schedule", "next_run_at"],
    )
    plan = schedules()
    started = time.perf_counter()
    for start in range(0, records, SEED_BATCH):
        numbers = range(start, min(records, start + SEED_BATCH))
        users = []
        for n in numbers:
            users.append(common.bench_user_row(user_row, n))
        with transaction.atomic(), connection.cursor() as cursor:
            common.insert_rows(cursor, user_sql, users)
            created = (
                PamUser.objects.filter(folder=folder, login__gte=f"bench-user-{start:07d}")
                .order_by("login")
                .values_list("pk", "login")[: len(numbers)]
            )
            rows = []
            for pk, login in created:
                schedule, next_run_at = target(int(login[-7:]), records, due, now, plan)
                rows.append(settings_row(pam_user=pk, schedule=schedule, next_run_at=next_run_at))
            common.insert_rows(cursor, settings_sql, rows)
        done = start + len(numbers)
        if done % 100_000 == 0 or done == records:
            print(f"  ... {done} records ({time.perf_counter() - started:.0f} s)", flush=True)


def make_due(records: int, due: int, now, limit: int | None = None) -> None:
    """Back to the seeded state: no rotations, the same `due` records due (only the first
    `limit` of them when given), every other next run in the future."""
    from django.db import connection

    from rotation.models import RotationSettings

    with connection.cursor() as cursor:
        # Through the count triggers, like any delete (nothing else refers to these rotations).
        cursor.execute("DELETE FROM rotation_rotation")
    plan = schedules()
    updates = []
    made_due = 0
    rows = RotationSettings.objects.values_list("pk", "pam_user__login", "next_run_at")
    for pk, login, next_run_at in rows.iterator(chunk_size=20_000):
        _, wanted = target(int(login[-7:]), records, due, now, plan)
        if wanted <= now and (limit is None or made_due < limit):
            made_due += 1
        elif next_run_at is None or next_run_at <= now + timedelta(hours=1):
            wanted = now + timedelta(days=1 + int(login[-7:]) % 30)
        else:
            continue
        if next_run_at != wanted:
            updates.append((connection.ops.adapt_datetimefield_value(wanted), pk))
    with connection.cursor() as cursor:
        for start in range(0, len(updates), SEED_BATCH):
            cursor.executemany(
                "UPDATE rotation_rotationsettings SET next_run_at = %s WHERE id = %s",
                updates[start : start + SEED_BATCH],
            )


def vacuum(*tables: str) -> None:
    """On PostgreSQL, what autovacuum does after a bulk change (statistics, visibility map)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE " + ", ".join(tables))


def print_statements(counter: QueryCounter, elapsed: float) -> None:
    python = elapsed - counter.seconds - counter.commits
    print(
        f"where the pass's {elapsed:.2f} s went: {counter.seconds:.2f} s in SQL statements (the "
        f"triggers they fire included), {counter.commits:.2f} s in COMMIT (deferred checks and "
        f"triggers), {python:.2f} s in Python"
    )
    rows = sorted(counter.by_shape.items(), key=lambda item: -item[1][1])
    common.table(
        [(shape, n, secs) for shape, (n, secs) in rows[:12]],
        ["statement", "times", "seconds"],
    )


def main() -> int:
    args = parse_args()
    if not 0 < args.due <= args.records:
        raise SystemExit("bench: --due must be between 1 and --records")
    env = common.bootstrap()
    try:
        if args.reuse:
            import django
            from django.core.management import call_command

            django.setup()
            call_command("migrate", verbosity=0)  # the triggers of this tree (counts.ensure)
        else:
            common.setup_django(env, flush=args.flush)
        from django.utils import timezone
        from django_q.models import OrmQ

        from rotation import counts
        from rotation.models import Rotation, RotationSettings
        from vault.models import PamUser

        print(f"machine: {common.machine()}; database+broker: {env.label}")
        tables = ("vault_pamuser", "rotation_rotationsettings", "rotation_rotation")
        tables += ("rotation_record_status", "rotation_status_count", "rotation_count_delta")
        started = time.perf_counter()
        if args.reuse:
            if PamUser.objects.filter(folder__name=FOLDER).count() != args.records:
                raise SystemExit(f"bench: the vault in DATABASE_URL does not hold {args.records}")
            common.purge_broker()
            make_due(args.records, args.due, timezone.now())
            what = "reset"
        else:
            seed(args.records, args.due, timezone.now())
            what = "seeded"
        vacuum(*tables)
        due = RotationSettings.objects.filter(next_run_at__lte=timezone.now()).count()
        print(
            f"setup: {args.records} records {what} ({due} due) in "
            f"{time.perf_counter() - started:.1f} s"
        )

        load_before = " ".join(load_average())
        seconds, counter, requested = one_pass(args.batch_size, args.profile)
        load_after = " ".join(load_average())
        print_statements(counter, seconds)
        queued = Rotation.objects.filter(status=Rotation.QUEUED, trigger="scheduled").count()
        still_due = RotationSettings.objects.filter(next_run_at__lte=timezone.now()).count()
        tasks = OrmQ.objects.count() if not env.redis_url else "(redis)"
        drift = None
        if args.check_counts:
            checked = time.perf_counter()
            drift, _ = counts.check()
            print(f"counts.check(): {drift} keys differ ({time.perf_counter() - checked:.1f} s)")

        # The same pass over a tenth as many due records.
        small = max(1, args.due // 10)
        make_due(args.records, args.due, timezone.now(), limit=small)
        vacuum(*tables)
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
                    round(qc.total * 1000 / n, 1) if n else 0,
                    ", ".join(f"{k} {v}" for k, v in sorted(qc.kinds.items())),
                    qc.seconds,
                )
            )
        common.table(
            rows,
            ["pass", "seconds", "batches", "queries", "per 1,000", "by kind", "seconds in SQL"],
        )
        print(
            f"queued rotations after the first pass: {queued}; still due: {still_due}; "
            f"broker tasks: {tasks}; load average before the pass {load_before}, after it "
            f"{load_after}"
        )
        ok = requested == due == queued and still_due == 0 and small_requested == small
        if not ok or drift:
            print("bench: the pass did not request exactly the due records, or the counts drift")
            return 1
        print(
            f"RESULT scheduler_scale seconds={seconds:.2f} queries={counter.total} "
            f"queries_per_1000_due={counter.total * 1000 / requested:.1f} "
            f"sql_seconds={counter.seconds:.2f} due={requested} records={args.records} "
            f"small_pass_queries={small_counter.total} db={env.label}"
        )
        return 0
    finally:
        common.purge_broker()
        env.cleanup()


def load_average() -> list[str]:
    try:
        return open("/proc/loadavg").read().split()[:3]
    except OSError:
        return ["?"]


if __name__ == "__main__":
    sys.exit(main())
