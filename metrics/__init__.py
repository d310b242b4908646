"""Prometheus metrics at /metrics, read from the database so that every process reports the same numbers (issue 16)."""
