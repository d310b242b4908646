#!/usr/bin/env python
"""Benchmark: GET /metrics with 100,000 rotations in the vault.

Run from the checkout:  .venv/bin/python bench/metrics_scrape.py [--rotations 100000]
    [--records 2000] [--live 2000] [--scrapes 50] [--flush]

Seeds PAM Users and finished rotations spread over 30 days (of which ``--live`` finished in
the last minutes, the part every scrape counts itself), some queued rotations, then times:
the first scrape (it folds every older rotation into the totals, once), `--scrapes` further
scrapes through the test client with the bearer token, and, for comparison, the one grouped
COUNT over every rotation that the folded totals avoid. Prints a table and, last, one line:
RESULT metrics_scrape rotations=.. first_ms=.. p50_ms=.. p95_ms=.. queries=.. count_all_ms=..
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

TOKEN = "bench-metrics-token"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rotations", type=int, default=100_000)
    parser.add_argument("--records", type=int, default=2_000)
    parser.add_argument("--live", type=int, default=2_000)
    parser.add_argument("--queued", type=int, default=100)
    parser.add_argument("--scrapes", type=int, default=50)
    parser.add_argument("--flush", action="store_true")
    args = parser.parse_args()
    env = common.bootstrap(METRICS_TOKEN=TOKEN, ALLOWED_HOSTS="testserver")
    try:
        run(env, args)
    finally:
        env.cleanup()


def seed(args, config) -> None:
    from django.db import connection, transaction
    from django.db.models import Count
    from django.utils import timezone

    from rotation.models import Rotation
    from vault.models import PamUser, new_uid

    ids = list(PamUser.objects.order_by("pk").values_list("pk", flat=True))
    template = Rotation(configuration=config, gateway_name="default", trigger="cli")
    varying = ["uid", "pam_user", "trigger", "status", "created_at", "started_at", "finished_at"]
    sql, row = common.row_inserter(Rotation, template, varying)
    rng = random.Random(16)
    now = timezone.now()
    rows = []
    for n in range(args.rotations):
        live = n >= args.rotations - args.live
        ago = timedelta(seconds=rng.uniform(5, 240) if live else rng.uniform(600, 30 * 86400))
        finished = now - ago
        rows.append(
            row(
                uid=new_uid(),
                pam_user=ids[n % len(ids)],
                trigger=rng.choice(("cli", "scheduled", "on_demand")),
                status=Rotation.SUCCEEDED if rng.random() < 0.95 else Rotation.FAILED,
                created_at=finished - timedelta(seconds=2),
                started_at=finished - timedelta(seconds=1),
                finished_at=finished,
            )
        )
    for pk in ids[: args.queued]:
        rows.append(
            row(
                uid=new_uid(),
                pam_user=pk,
                trigger="scheduled",
                status=Rotation.QUEUED,
                created_at=now - timedelta(seconds=rng.uniform(1, 600)),
                started_at=None,
                finished_at=None,
            )
        )
    for start in range(0, len(rows), 10_000):
        with transaction.atomic(), connection.cursor() as cursor:
            common.insert_rows(cursor, sql, rows[start : start + 10_000])
    found = Rotation.objects.values("status").annotate(n=Count("id")).order_by("status")
    print("seeded:", {r["status"]: r["n"] for r in found}, flush=True)


def run(env: common.Env, args) -> None:
    common.setup_django(env, flush=args.flush)
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from rotation.models import Rotation

    started = time.perf_counter()
    _, config = common.make_world(count=args.records)
    seed(args, config)
    print(f"seeding took {time.perf_counter() - started:.1f} s", flush=True)

    client = Client()

    def scrape() -> float:
        began = time.perf_counter()
        answer = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        elapsed = (time.perf_counter() - began) * 1000
        assert answer.status_code == 200, answer.status_code
        return elapsed

    first = scrape()
    scrape()  # warm
    times = [scrape() for _ in range(args.scrapes)]
    with CaptureQueriesContext(connection) as queries:
        text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("vault_rotations_total{")
    )
    assert counted == args.rotations, (counted, args.rotations)
    began = time.perf_counter()
    list(
        Rotation.objects.filter(status__in=("succeeded", "failed"))
        .values("pam_user__rotation_settings__method", "trigger", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    count_all = (time.perf_counter() - began) * 1000
    stats = common.summary(times)
    common.table(
        [
            ("first scrape (folds the totals)", f"{first:.1f}"),
            ("scrape p50", f"{stats['p50']:.1f}"),
            ("scrape p95", f"{stats['p95']:.1f}"),
            ("queries per scrape", len(queries)),
            ("COUNT over every rotation", f"{count_all:.1f}"),
        ],
        ["what", "ms"],
    )
    print("slowest queries of the last scrape:")
    for query in sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:3]:
        print(f"  {float(query['time']) * 1000:7.1f} ms  {query['sql'][:150]}")
    print(f"machine: {common.machine()}; database: {env.label}")
    print(
        f"RESULT metrics_scrape rotations={args.rotations} live={args.live} "
        f"first_ms={first:.1f} p50_ms={stats['p50']:.1f} p95_ms={stats['p95']:.1f} "
        f"queries={len(queries)} count_all_ms={count_all:.1f} db={env.label}"
    )


if __name__ == "__main__":
    main()
