"""Many people (and the scheduler) asking for the same record at once get one rotation."""

from __future__ import annotations

import threading
from unittest import mock

import pytest
from django.db import connection

from rotation import engine
from rotation.models import Rotation

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = 50


def test_fifty_concurrent_rotate_requests_make_exactly_one_rotation(world):
    record = world.user()
    start = threading.Barrier(REQUESTS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def click() -> None:
        try:
            start.wait()
            try:
                engine.rotation_request(record=record, trigger="on_demand")
                outcome = "queued"
            except engine.RotationInProgress:
                outcome = "in progress"
            except engine.RotationRequestError as exc:  # "a rotation just finished"
                outcome = str(exc)
            with lock:
                outcomes.append(outcome)
        finally:
            connection.close()  # each thread has its own database connection

    with mock.patch("rotation.dispatch.async_task"):
        threads = [threading.Thread(target=click) for _ in range(REQUESTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    assert len(outcomes) == REQUESTS
    assert outcomes.count("queued") == 1
    assert outcomes.count("in progress") == REQUESTS - 1
    assert Rotation.objects.filter(pam_user=record).count() == 1
