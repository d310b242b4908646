"""Prometheus metrics at /metrics, read from the database so that every process reports the same numbers (issue 16)."""

from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Metrics"
