"""The reveal limit holds under concurrency: many requests of one person at the same moment
(real threads, each with its own database connection, against the test database file) reveal
at most REVEAL_RATE_LIMIT passwords; the others are refused with 429."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from vault.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 20
REVEALS_PER_THREAD = 2
LIMIT = 20


def test_concurrent_reveals_of_one_person_never_exceed_the_limit(vault_world, settings):
    settings.REVEAL_RATE_LIMIT = f"{LIMIT}/10m"
    url = f"/records/{vault_world.record.uid}/reveal/"
    clients = [vault_world.client("viewer") for _ in range(THREADS)]
    start = threading.Barrier(THREADS)
    statuses: list[int] = []
    lock = threading.Lock()

    def reveal(client) -> None:
        try:
            start.wait()
            for _ in range(REVEALS_PER_THREAD):
                status = client.post(url, HTTP_ACCEPT="application/json").status_code
                with lock:
                    statuses.append(status)
        finally:
            connection.close()  # each thread has its own database connection

    threads = [threading.Thread(target=reveal, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    total = THREADS * REVEALS_PER_THREAD
    assert Counter(statuses) == {200: LIMIT, 429: total - LIMIT}
    assert AuditEvent.objects.filter(action="password.revealed").count() == LIMIT
    refused = AuditEvent.objects.filter(action="password.reveal_rate_limited").count()
    assert refused == total - LIMIT
