"""The Prometheus collector: every number /metrics shows, read from the database at each
scrape, so any web process answers the same (names and meanings: docs/operations.md).

A scrape costs a fixed number of queries whatever the number of rotations, records or calls;
none of them reads every rotation (metrics/store.py, rotation totals).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from metrics.models import AwsCallBucket, AwsCallError, SchedulerPass
from metrics.store import LATENCY_BUCKETS, rotation_totals
from rotation.candidates import KINDS
from rotation.models import Rotation
from vault.models import Gateway


def _rotations(now: datetime) -> Iterator[Metric]:
    family = CounterMetricFamily(
        "vault_rotations",
        "Finished rotations, by method, trigger (on_demand, scheduled, cli) and outcome.",
        labels=["method", "trigger", "outcome"],
    )
    for (method, trigger, outcome), n in sorted(rotation_totals(now=now).items()):
        family.add_metric([method, trigger, outcome], n)
    yield family


def _gateways(now: datetime) -> Iterator[Metric]:
    seen = dict(Gateway.objects.values_list("name", "last_seen_at"))
    active = Rotation.objects.filter(status__in=Rotation.ACTIVE).values("gateway_name", "status")
    counts = {
        (row["gateway_name"], row["status"]): row
        for row in active.annotate(n=Count("id"), oldest=Min("created_at")).order_by()
    }
    names = sorted(set(seen) | {name for name, _ in counts})
    queued = GaugeMetricFamily(
        "vault_rotations_queued", "Rotations queued (not started), per gateway.", labels=["gateway"]
    )
    running = GaugeMetricFamily(
        "vault_rotations_running", "Rotations running now, per gateway.", labels=["gateway"]
    )
    oldest = GaugeMetricFamily(
        "vault_rotations_oldest_queued_age_seconds",
        "Seconds since the oldest queued rotation of each gateway was requested (0: none).",
        labels=["gateway"],
    )
    age = GaugeMetricFamily(
        "vault_gateway_heartbeat_age_seconds",
        "Seconds since each gateway's last heartbeat (gateways never seen are not listed).",
        labels=["gateway"],
    )
    up = GaugeMetricFamily(
        "vault_gateway_up",
        "1 when the gateway's last heartbeat is within GATEWAY_OFFLINE_SECONDS, else 0.",
        labels=["gateway"],
    )
    for name in names:
        waiting = counts.get((name, Rotation.QUEUED))
        queued.add_metric([name], waiting["n"] if waiting else 0)
        busy = counts.get((name, Rotation.RUNNING))
        running.add_metric([name], busy["n"] if busy else 0)
        since = (now - waiting["oldest"]).total_seconds() if waiting else 0.0
        oldest.add_metric([name], max(since, 0.0))
        last = seen.get(name)
        if last is not None:
            age.add_metric([name], max((now - last).total_seconds(), 0.0))
        alive = (
            last is not None and (now - last).total_seconds() <= settings.GATEWAY_OFFLINE_SECONDS
        )
        if name in seen:
            up.add_metric([name], 1 if alive else 0)
    yield from (queued, running, oldest, age, up)


def _candidates(now: datetime) -> Iterator[Metric]:
    # One query of one count per kind, each a subquery planned on its own, so each reads its
    # own index (one count over an OR of the kinds reads every rotation). The kinds' statuses
    # differ, so no rotation is counted twice.
    parts, params = [], []
    for kind in KINDS:
        sql, kind_params = (
            Rotation.objects.filter(kind.rotations(now)).order_by().values("id").query
        ).sql_with_params()
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS {kind.name})")
        params.extend(kind_params)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(parts)}", params)
        found = cursor.fetchone()
    family = GaugeMetricFamily(
        "vault_passwords_possibly_live",
        "Passwords AWS may hold besides records' current ones, by kind: may_be_live (a failed "
        "rotation's, until a person resolves it), being_set (a rotation running now), "
        "unanswered (kept after a request went unanswered).",
        labels=["kind"],
    )
    for kind, n in zip(KINDS, found, strict=True):
        family.add_metric([kind.name], n or 0)
    yield family


def _due_scan() -> Iterator[Metric]:
    last = SchedulerPass.objects.filter(pk=1).first()
    if last is None:
        return
    yield GaugeMetricFamily(
        "vault_due_scan_duration_seconds",
        "How long the last due-scan pass (the scheduler) took.",
        value=last.seconds,
    )
    yield GaugeMetricFamily(
        "vault_due_scan_requested",
        "Rotations the last due-scan pass requested.",
        value=last.requested,
    )
    yield GaugeMetricFamily(
        "vault_due_scan_last_run_timestamp_seconds",
        "When the last due-scan pass ended (Unix time).",
        value=last.finished_at.timestamp(),
    )


def _aws_calls() -> Iterator[Metric]:
    per_action: dict[str, dict[int, tuple[int, float]]] = {}
    for row in AwsCallBucket.objects.values("action", "bucket", "n", "seconds"):
        per_action.setdefault(row["action"], {})[row["bucket"]] = (row["n"], row["seconds"])
    latency = HistogramMetricFamily(
        "vault_aws_call_duration_seconds",
        "AWS API calls made by the gateways, by action, with botocore's retries inside one call.",
        labels=["action"],
    )
    bounds = [*map(floatToGoString, LATENCY_BUCKETS), "+Inf"]
    for action in sorted(per_action):
        cumulative, buckets, total = 0, [], 0.0
        for index, bound in enumerate(bounds):
            n, seconds = per_action[action].get(index, (0, 0.0))
            cumulative += n
            total += seconds
            buckets.append((bound, cumulative))
        latency.add_metric([action], buckets, sum_value=total)
    yield latency
    errors = CounterMetricFamily(
        "vault_aws_call_errors",
        "AWS API calls that ended in an error, by action and AWS error code (or the client "
        "exception, e.g. ReadTimeoutError; codes outside the known list are Other).",
        labels=["action", "code"],
    )
    for action, code, n in AwsCallError.objects.order_by("action", "code").values_list(
        "action", "code", "n"
    ):
        errors.add_metric([action, code], n)
    yield errors


class VaultCollector:
    """prometheus-client's custom collector protocol: collect() yields metric families."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        yield from _rotations(now)
        yield from _gateways(now)
        yield from _candidates(now)
        yield from _due_scan()
        yield from _aws_calls()


# Its own registry: not the default one, whose process and platform collectors would report
# this web process only.
REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(VaultCollector())


def metrics_text() -> bytes:
    """The exposition text of every metric, read now."""
    return generate_latest(REGISTRY)
