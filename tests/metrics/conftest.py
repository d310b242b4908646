from __future__ import annotations

import pytest

from metrics import store
from rotation import aws

TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture(autouse=True)
def _metrics_fresh(settings):
    """Configured by token; AWS calls written at once; nothing left from other tests' calls."""
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    settings.METRICS_AWS_FLUSH_SECONDS = 0
    aws.clear_caches()
    with store._lock:
        store._buckets.clear()
        store._errors.clear()
    store._last_pass = None
    yield
    aws.clear_caches()
