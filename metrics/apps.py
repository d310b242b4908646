"""Prometheus metrics at /metrics, read from the database so that every process reports the
same numbers (issue 16).

The gateways feed it through hooks that rotation offers and never imports this app for: AWS
call latencies and errors (rotation.aws.CALL_HOOKS), the due scan's duration
(rotation.scheduler.PASS_HOOKS), both written at each tick (rotation.gateways.TICK_HOOKS) and
the AWS calls also after each batch a drain records (rotation.gateways.DRAIN_HOOKS).
"""

from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Metrics"

    def ready(self) -> None:
        from metrics import store
        from rotation import aws, scheduler
        from rotation.gateways import DRAIN_HOOKS, TICK_HOOKS

        aws.CALL_HOOKS["metrics"] = store.aws_call_observe
        scheduler.PASS_HOOKS["metrics"] = store.scheduler_pass_observe
        TICK_HOOKS["metrics"] = store.metrics_tick
        DRAIN_HOOKS["metrics"] = store.aws_calls_flush_due
