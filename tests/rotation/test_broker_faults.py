"""A committed request is a success (issue 11, finding 4): when the broker refuses the task
message after the rotation committed, the Rotate and Rotate all pages answer "queued" (not a
500), `pam action rotate` exits 0 with one warning line, and the gateway's next tick hands the
rotations a drain, without waiting for their lease.

The broker fails the way it does in production: the ORM broker's enqueue raising (its database
write failed), or django-q2's Redis broker pointed at a closed port or at a listener that
closes every connection (Redis cut). The Redis tests use database 7 of the Redis at REDIS_URL
(default 127.0.0.1:6379) and are skipped when none answers.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.db import OperationalError, transaction
from django_q.brokers import get_broker, orm
from django_q.conf import Conf
from django_q.signing import SignedPackage

from rotation import dispatch, gateways, tasks
from rotation.models import ConnectionTest, Rotation
from tests.conftest import login, make_pam_user, rotate_all_confirmed
from tests.rotation.conftest import make_settings
from vault.cli import call_pam

pytestmark = pytest.mark.django_db(transaction=True)

JSON = {"HTTP_ACCEPT": "application/json"}
TASKS = {
    "rotation.tasks.run_rotation": tasks.run_rotation,
    "rotation.tasks.drain_gateway": tasks.drain_gateway,
}


@pytest.fixture(autouse=True)
def orm_broker():
    """The database is django-q2's broker here, as without REDIS_URL, even when the suite runs
    with one; the Redis tests point it at Redis themselves."""
    with mock.patch.object(Conf, "ORM", "default"):
        yield


# --- ways a broker fails -------------------------------------------------------------------------


@contextmanager
def orm_broker_refusing() -> Iterator[None]:
    """The ORM broker's write fails (its database is locked or gone) after the commit."""

    def refuse(self, task):
        raise OperationalError("database is locked")

    with mock.patch.object(orm.ORM, "enqueue", refuse):
        yield


def _redis_url(db: int = 7, port: int | None = None) -> str:
    base = urllib.parse.urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379")
    netloc = base.netloc if port is None else f"{base.hostname}:{port}"
    return urllib.parse.urlunsplit((base.scheme, netloc, f"/{db}", "", ""))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once it is closed


@contextmanager
def _closing_listener() -> Iterator[int]:
    """A TCP listener that accepts each connection and closes it at once (Redis cut)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stopped = threading.Event()

    def serve() -> None:
        while not stopped.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stopped.set()
        thread.join()
        server.close()


@contextmanager
def redis_broker_at(url: str) -> Iterator[None]:
    """django-q2 enqueues to the Redis at `url` (as with REDIS_URL set)."""
    with mock.patch.object(Conf, "ORM", None), mock.patch.object(Conf, "REDIS", url):
        yield


@pytest.fixture
def redis_db7():
    import redis

    client = redis.Redis.from_url(_redis_url(), socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"no Redis answers at {_redis_url()}")
    client.flushdb()
    yield client
    client.flushdb()


# --- what the tick then does ---------------------------------------------------------------------


def _as_if_a_while_ago(seconds: float = 2 * gateways.LOST_MESSAGE_SECONDS) -> None:
    """Time passes: the rotations were requested `seconds` ago."""
    for rotation in Rotation.objects.filter(status=Rotation.QUEUED):
        Rotation.objects.filter(pk=rotation.pk).update(
            created_at=rotation.created_at - timedelta(seconds=seconds)
        )


def _run_what_the_broker_holds(gateway_name: str = "default") -> list[str]:
    """What the gateway's workers would do with every message in its queue; their names."""
    broker = get_broker(gateway_name)
    ran = []
    while True:
        messages = broker.dequeue()
        if not messages:
            return ran
        for ack_id, payload in messages:
            task = SignedPackage.loads(payload)
            TASKS[task["func"]](*task["args"])
            ran.append(task["func"])
            if ack_id is not None:
                broker.acknowledge(ack_id)


def _tick_then_drain(world) -> list[str]:
    _as_if_a_while_ago()
    summary = gateways.gateway_tick(gateway_name="default")
    assert summary["waiting"] == Rotation.objects.filter(status=Rotation.QUEUED).count()
    ran = _run_what_the_broker_holds()
    assert "rotation.tasks.drain_gateway" in ran
    return ran


def _assert_all_rotated(world, records) -> None:
    for record in records:
        rotation = Rotation.objects.get(pam_user=record)
        assert rotation.status == Rotation.SUCCEEDED, rotation.error
        record.refresh_from_db()
        assert record.get_secret("password") == world.aws_password(record.login)


# --- the web and the CLI say "queued", then the tick drains --------------------------------------


def _web_and_cli_while_the_broker_refuses(world, personas, caplog) -> list:
    """Rotate (HTML and JSON), Rotate all and `pam action rotate` during the fault."""
    page_user, json_user = world.user("PageUser"), world.user("JsonUser")
    client = login(personas.editor)

    response = client.post(f"/records/{page_user.uid}/rotate/")
    assert response.status_code == 302
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith("Rotation requested.") and "within a minute" in message

    response = client.post(f"/records/{json_user.uid}/rotate/", **JSON)
    assert response.status_code == 200
    answer = response.json()
    assert (answer["ok"], answer["status"]) == (True, "queued")
    assert "within a minute" in answer["message"]

    cli_user = world.user("CliUser")
    code, out, err = call_pam("action", "rotate", "--record", cli_user.uid)
    assert code == 0, err
    assert '"status": "queued"' in out
    [warning] = err.splitlines()
    assert warning.startswith("pam: warning: ") and "within a minute" in warning

    # Rotate all: the three records already queued join the batch; the fourth is requested,
    # and the broker refuses its message too.
    all_user = world.user("AllUser")
    response = rotate_all_confirmed(client, personas.folder)
    assert response.status_code == 302
    [message] = [str(m) for m in get_messages(response.wsgi_request) if "requested for" in str(m)]
    assert message.startswith("Rotation requested for 4 PAM Users")
    assert "The gateways will pick them up within a minute" in message

    records = [page_user, json_user, cli_user, all_user]
    assert set(Rotation.objects.values_list("status", flat=True)) == {Rotation.QUEUED}
    assert Rotation.objects.count() == len(records)
    assert "did not take" in caplog.text
    return records


def test_orm_broker_refusing_after_commit(world, personas, caplog):
    caplog.set_level(logging.WARNING, logger="rotation.dispatch")
    with orm_broker_refusing():
        records = _web_and_cli_while_the_broker_refuses(world, personas, caplog)
    _tick_then_drain(world)
    _assert_all_rotated(world, records)


@pytest.mark.parametrize("fault", ["closed port", "closing listener"])
def test_redis_broker_cut_after_commit(world, personas, caplog, redis_db7, fault):
    caplog.set_level(logging.WARNING, logger="rotation.dispatch")
    if fault == "closed port":
        with redis_broker_at(_redis_url(port=_closed_port())):
            records = _web_and_cli_while_the_broker_refuses(world, personas, caplog)
    else:
        with _closing_listener() as port, redis_broker_at(_redis_url(port=port)):
            records = _web_and_cli_while_the_broker_refuses(world, personas, caplog)
    assert "ConnectionError" in caplog.text
    with redis_broker_at(_redis_url()):  # Redis is back
        assert redis_db7.llen("django_q:default:q") == 0  # nothing reached it during the cut
        _tick_then_drain(world)
    _assert_all_rotated(world, records)


# --- the tick ------------------------------------------------------------------------------------


def _queued(world, login_name: str, gateway_name: str = "default", ago: float = 60) -> Rotation:
    record = world.user(login_name)
    rotation = Rotation.objects.create(
        pam_user=record,
        configuration=world.config,
        gateway_name=gateway_name,
        trigger="on_demand",
    )
    Rotation.objects.filter(pk=rotation.pk).update(
        created_at=rotation.created_at - timedelta(seconds=ago)
    )
    return rotation


def test_tick_hands_a_drain_only_for_rotations_waiting_longer_than_a_message_takes(world):
    _queued(world, "Fresh", ago=gateways.LOST_MESSAGE_SECONDS / 5)
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        assert gateways.gateway_hand_over_waiting(gateway_name="default") == 0
    enqueued.assert_not_called()
    _queued(world, "Stale", ago=gateways.LOST_MESSAGE_SECONDS * 2)
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        assert gateways.gateway_hand_over_waiting(gateway_name="default") == 1
    assert [c.args for c in enqueued.call_args_list] == [
        ("rotation.tasks.drain_gateway", "default")
    ]
    assert enqueued.call_args.kwargs["cluster"] == "default"


def test_tick_hands_drains_to_its_own_gateway_only(world):
    _queued(world, "Elsewhere", gateway_name="other")
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        assert gateways.gateway_hand_over_waiting(gateway_name="default") == 0
    enqueued.assert_not_called()


def test_tick_starts_as_many_drains_as_the_queue_needs_up_to_the_workers(world, settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 2}
    for n in range(dispatch.DRAIN_BATCH + 1):
        record = make_pam_user(world.personas.folder, f"Many{n}")
        make_settings(record, world.config)
        Rotation.objects.create(
            pam_user=record,
            configuration=world.config,
            gateway_name="default",
            trigger="scheduled",
        )
    _as_if_a_while_ago()
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        seen = gateways.gateway_hand_over_waiting(gateway_name="default")
    assert seen == dispatch.DRAIN_BATCH + 1
    assert enqueued.call_count == 2  # one drain per DRAIN_BATCH, at most one per worker


def test_tick_survives_the_broker_still_refusing(world, caplog):
    _queued(world, "StillDown")
    with orm_broker_refusing():
        summary = gateways.gateway_tick(gateway_name="default")
    assert summary["waiting"] == 1
    assert Rotation.objects.get().status == Rotation.QUEUED
    assert "did not take" in caplog.text


# --- dispatch ------------------------------------------------------------------------------------


def test_a_refused_enqueue_inside_a_transaction_leaves_it_usable(world):
    rotation = _queued(world, "InTransaction")
    with orm_broker_refusing(), transaction.atomic():
        assert dispatch.enqueue_rotation(rotation) is False
        assert Rotation.objects.filter(pk=rotation.pk).exists()  # no broken transaction


def test_handoff_watch_counts_refusals_and_offers_the_rest_nothing(world):
    rotations = [_queued(world, f"Watched{n}") for n in range(3)]
    with (
        mock.patch("rotation.dispatch.async_task", side_effect=OSError("down")) as enqueued,
        dispatch.handoff_watch() as handoff,
    ):
        for rotation in rotations:
            assert dispatch.enqueue_rotation(rotation) is False
    assert enqueued.call_count == 1
    assert (handoff.refused, handoff.error) == (3, "OSError: down")
    # Outside the block, each call tries again.
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        assert dispatch.enqueue_rotation(rotations[0]) is True
    enqueued.assert_called_once()


def test_a_drain_that_got_through_covers_the_gateways_rotations(world, settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 2}
    answers = [None, OSError("down")]  # the first drain is sent, the second refused
    with mock.patch("rotation.dispatch.async_task", side_effect=answers):
        assert dispatch.enqueue_drains({"default": 2 * dispatch.DRAIN_BATCH}) == 0
    with mock.patch("rotation.dispatch.async_task", side_effect=OSError("down")):
        assert dispatch.enqueue_drains({"default": 7}) == 7


# --- Test connection ----------------------------------------------------------------------------


def test_test_connection_refused_by_the_broker_ends_saying_so(world, personas):
    with orm_broker_refusing():
        response = login(personas.editor).post(f"/configurations/{world.config.uid}/test/", **JSON)
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    test = ConnectionTest.objects.get()
    assert test.status == ConnectionTest.FAILED
    assert "could not be handed to the gateway" in test.message
