"""The outbox: audit events fan out to the consumers that want them in the same transaction,
and workers deliver them at least once, with backoff, until a consumer's attempts run out."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from events.consumers import Consumer, DeliveryError, consumer_register, consumer_unregister
from events.models import OutboxMessage
from events.outbox import _deliver_one, outbox_backoff, outbox_deliver_due
from vault.audit import audit_events_bulk, audit_record
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db


class Receiver:
    """A consumer's far end: records what arrived, fails while told to."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.failures_left = 0

    def deliver(self, event: AuditEvent) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise DeliveryError("receiver down (HTTP 503)")
        self.received.append(event.pk)


@pytest.fixture(autouse=True)
def only_this_modules_consumers():
    """The outbox's mechanics, with no consumer but the ones these tests register (the apps'
    own, mail and webhooks, have tests of their own)."""
    with mock.patch.dict("events.consumers._consumers", clear=True):
        yield


@pytest.fixture
def receiver():
    found = Receiver()
    consumer = Consumer(
        name="test-failures",
        wants=lambda event: event.action.endswith(".fail"),
        deliver=found.deliver,
        max_attempts=3,
    )
    consumer_register(consumer)
    yield found
    consumer_unregister("test-failures")


def _later(minutes: float = 0, **kw):
    return timezone.now() + timedelta(minutes=minutes, **kw)


def test_an_event_a_consumer_wants_gets_one_outbox_row(receiver):
    event = audit_record("rotation.on_demand.fail", details={"error": "x"})
    message = OutboxMessage.objects.get()
    assert (message.event_id, message.consumer, message.status) == (
        event.pk,
        "test-failures",
        OutboxMessage.PENDING,
    )


def test_an_event_no_consumer_wants_gets_no_row(receiver):
    audit_record("rotation.on_demand.ok")
    assert not OutboxMessage.objects.exists()


def test_events_written_in_bulk_get_their_rows_as_one_by_one_would(receiver):
    events = audit_events_bulk(
        [AuditEvent(action=action) for action in ("a.fail", "b.ok", "c.fail", "d.ok")]
    )
    wanted = {e.pk for e in events if e.action.endswith(".fail")}
    rows = OutboxMessage.objects.all()
    assert {m.event_id for m in rows} == wanted
    assert {m.consumer for m in rows} == {"test-failures"}


def test_an_event_rolled_back_leaves_no_row(receiver):
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record("rotation.on_demand.fail")
        raise RuntimeError
    assert not OutboxMessage.objects.exists()


def test_due_messages_are_delivered_once(receiver):
    event = audit_record("rotation.scheduled.fail")
    assert outbox_deliver_due(now=_later(seconds=1))["delivered"] == 1
    assert outbox_deliver_due(now=_later(minutes=10))["delivered"] == 0
    assert receiver.received == [event.pk]
    message = OutboxMessage.objects.get()
    assert message.status == OutboxMessage.DELIVERED
    assert message.delivered_at is not None


def test_a_failed_delivery_backs_off_and_is_retried(receiver):
    receiver.failures_left = 1
    event = audit_record("rotation.scheduled.fail")
    assert outbox_deliver_due(now=_later(seconds=1))["retry"] == 1
    message = OutboxMessage.objects.get()
    assert message.last_error == "receiver down (HTTP 503)"
    assert message.next_attempt_at > timezone.now() + outbox_backoff(1) - timedelta(seconds=5)
    assert outbox_deliver_due(now=_later(seconds=10))["delivered"] == 0  # not due yet
    assert outbox_deliver_due(now=_later(minutes=1))["delivered"] == 1
    assert receiver.received == [event.pk]


def test_a_consumer_that_keeps_failing_is_given_up_after_its_attempts(receiver):
    receiver.failures_left = 99
    audit_record("rotation.scheduled.fail")
    outcomes = [outbox_deliver_due(now=_later(hours=24 * day)) for day in range(1, 5)]
    assert [o["retry"] for o in outcomes[:2]] == [1, 1]
    assert outcomes[2]["dead"] == 1
    assert OutboxMessage.objects.get().status == OutboxMessage.DEAD
    assert outcomes[3] == {"delivered": 0, "retry": 0, "dead": 0, "skipped": 0}
    assert OutboxMessage.objects.get().attempts == 3


def test_a_worker_that_died_mid_delivery_leaves_the_message_to_be_retried(receiver):
    """A claim hides the row for the delivery lease only; then another worker delivers it."""

    class Killed(BaseException):
        pass

    def killed(event):
        raise Killed

    consumer_unregister("test-failures")
    consumer_register(Consumer(name="test-failures", wants=lambda e: True, deliver=killed))
    audit_record("rotation.scheduled.fail")
    with pytest.raises(Killed):
        outbox_deliver_due(now=_later(seconds=1))
    consumer_unregister("test-failures")
    consumer_register(
        Consumer(name="test-failures", wants=lambda e: True, deliver=receiver.deliver)
    )
    assert outbox_deliver_due(now=_later(minutes=1))["delivered"] == 0
    assert outbox_deliver_due(now=_later(minutes=6))["delivered"] == 1


def test_a_message_claimed_by_another_worker_is_skipped(receiver):
    audit_record("rotation.scheduled.fail")
    stale = OutboxMessage.objects.select_related("event").get()
    OutboxMessage.objects.filter(pk=stale.pk).update(next_attempt_at=_later(minutes=5))
    assert _deliver_one(stale) == "skipped"
    assert receiver.received == []


def test_a_worker_whose_lease_ran_out_does_not_overwrite_the_next_workers_outcome(receiver):
    audit_record("rotation.scheduled.fail")
    first = OutboxMessage.objects.select_related("event").get()

    def slow_then_overtaken(event):
        # Meanwhile the lease ran out and another worker claimed and delivered the row.
        OutboxMessage.objects.filter(pk=first.pk).update(
            attempts=F("attempts") + 1, status=OutboxMessage.DELIVERED
        )
        raise DeliveryError("timed out")

    consumer_unregister("test-failures")
    consumer_register(Consumer(name="test-failures", wants=bool, deliver=slow_then_overtaken))
    assert _deliver_one(first) == "retry"
    assert OutboxMessage.objects.get().status == OutboxMessage.DELIVERED


def test_rows_of_a_consumer_this_process_does_not_know_are_left_pending(receiver):
    audit_record("rotation.scheduled.fail")
    consumer_unregister("test-failures")
    assert outbox_deliver_due(now=_later(seconds=1)) == {
        "delivered": 0,
        "retry": 0,
        "dead": 0,
        "skipped": 0,
    }
    assert OutboxMessage.objects.get().status == OutboxMessage.PENDING


def test_an_error_that_is_not_a_delivery_error_is_stored_by_its_type_only(receiver):
    def leaky(event):
        raise ValueError("https://hooks.example/?token=SECRET123")

    consumer_unregister("test-failures")
    consumer_register(Consumer(name="test-failures", wants=bool, deliver=leaky))
    audit_record("rotation.scheduled.fail")
    outbox_deliver_due(now=_later(seconds=1))
    assert OutboxMessage.objects.get().last_error == "ValueError (details in the gateway's log)"


def test_a_consumer_that_cannot_decide_does_not_undo_the_callers_transaction(receiver):
    def broken(event):
        raise KeyError("bug")

    consumer_register(Consumer(name="test-broken", wants=broken, deliver=receiver.deliver))
    try:
        with transaction.atomic():
            event = audit_record("rotation.scheduled.ok")
    finally:
        consumer_unregister("test-broken")
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert OutboxMessage.objects.filter(event=event, consumer="test-broken").exists()


def test_delivery_stops_at_its_time_budget(receiver):
    for _ in range(3):
        audit_record("rotation.scheduled.fail")
    counts = outbox_deliver_due(now=_later(seconds=1), budget_seconds=-1)
    assert sum(counts.values()) == 0
    assert OutboxMessage.objects.filter(status=OutboxMessage.PENDING).count() == 3


@pytest.mark.parametrize(
    "attempts,wait",
    [
        (1, timedelta(seconds=30)),
        (2, timedelta(minutes=1)),
        (5, timedelta(minutes=8)),
        (20, timedelta(hours=6)),
        (10_000, timedelta(hours=6)),
    ],
)
def test_backoff_doubles_up_to_six_hours(attempts, wait):
    assert outbox_backoff(attempts) == wait


def test_registering_two_consumers_under_one_name_is_refused(receiver):
    with pytest.raises(ValueError):
        consumer_register(Consumer(name="test-failures", wants=bool, deliver=print))


def test_every_gateway_tick_delivers_what_is_due(receiver, personas):
    from rotation.gateways import gateway_tick

    event = audit_record("rotation.scheduled.fail")
    OutboxMessage.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    with mock.patch("rotation.dispatch.async_task"):
        summary = gateway_tick(gateway_name=personas.gateway.name)
    assert summary["outbox"]["delivered"] == 1
    assert receiver.received == [event.pk]


def test_a_failing_tick_hook_does_not_stop_the_tick(personas):
    from rotation.gateways import TICK_HOOKS, gateway_tick

    def broken():
        raise RuntimeError("hook down")

    TICK_HOOKS["broken"] = broken
    try:
        with mock.patch("rotation.dispatch.async_task"):
            summary = gateway_tick(gateway_name=personas.gateway.name)
    finally:
        del TICK_HOOKS["broken"]
    assert summary["broken"] == "failed"
    assert "recovered" in summary
