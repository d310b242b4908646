"""The outbox: fan audit events out to consumers, and deliver what is due.

Fan-out happens in the transaction that writes the audit event (a post_save receiver), so an
event and its outbox rows commit or roll back together; nothing a consumer does there may undo
the caller's work. Delivery runs on the workers, within a time budget per tick so that slow
receivers never keep a gateway's workers from rotations: `outbox_deliver_due` claims due rows
of the consumers registered in this process with a conditional UPDATE (one worker per row),
calls each consumer outside any transaction, and records the outcome only while its claim
still stands. Failures back off exponentially up to the consumer's `max_attempts`; then the row
is dead (kept, for an operator). Delivery is at least once: a worker killed after a consumer
acted but before the row was marked delivered leads to a second delivery, so consumers
deduplicate on the event id.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.db.models import F
from django.db.models.signals import post_save
from django.utils import timezone

from events.consumers import Consumer, DeliveryError, consumer_get, consumers_all
from events.models import OutboxMessage
from vault.audit import audit_events_bulk_created
from vault.models import AuditEvent

logger = logging.getLogger(__name__)

# How long a claimed row is hidden from other workers while one delivers it; a delivery that
# runs longer than this may be repeated by another worker (at least once).
DELIVERY_LEASE = timedelta(minutes=5)
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
DELIVER_BATCH = 100
# Per tick: the rest waits for the next tick, so a gateway's workers stay free for rotations.
DELIVER_BUDGET_SECONDS = 20.0


def outbox_install() -> None:
    post_save.connect(_fan_out_on_save, sender=AuditEvent, dispatch_uid="events.outbox")
    audit_events_bulk_created.connect(
        _fan_out_bulk, sender=AuditEvent, dispatch_uid="events.outbox.bulk"
    )


def _fan_out_bulk(sender: type, events: list[AuditEvent], **kwargs) -> None:
    rows = [
        OutboxMessage(event=event, consumer=c.name, next_attempt_at=event.created_at)
        for event in events
        for c in consumers_all()
        if _wanted_by(c, event)
    ]
    OutboxMessage.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)


def _fan_out_on_save(sender: type, instance: AuditEvent, created: bool, **kwargs) -> None:
    if created and not kwargs.get("raw"):
        outbox_fan_out(event=instance)


def _wanted_by(consumer: Consumer, event: AuditEvent) -> bool:
    try:
        return bool(consumer.wants(event))
    except Exception:
        # Inside the caller's transaction (a rotation's finish, say): a consumer's bug must
        # not roll that back. Keep the row; delivery will fail visibly instead.
        logger.exception("outbox consumer %s could not decide on event %s", consumer.name, event.pk)
        return True


def outbox_fan_out(*, event: AuditEvent) -> int:
    """One outbox row for each consumer that wants `event`. Returns how many were wanted."""
    rows = [
        OutboxMessage(event=event, consumer=c.name, next_attempt_at=event.created_at)
        for c in consumers_all()
        if _wanted_by(c, event)
    ]
    if rows:
        OutboxMessage.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def outbox_backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: 30 s, 1 min, 2 min ... at most 6 h."""
    exponent = min(max(attempts - 1, 0), 20)  # 2**20 * 30 s is far past the cap already
    return min(BACKOFF_BASE * (2**exponent), BACKOFF_CAP)


def outbox_deliver_due(
    *,
    now: datetime | None = None,
    limit: int = DELIVER_BATCH,
    budget_seconds: float = DELIVER_BUDGET_SECONDS,
) -> dict[str, int]:
    """Deliver due messages of the consumers registered here, up to `limit` or the time
    budget. Returns counts by outcome."""
    now = now or timezone.now()
    started = time.monotonic()
    counts = {"delivered": 0, "retry": 0, "dead": 0, "skipped": 0}
    # Rows of consumers this process does not know (a newer release's, during a rolling
    # deploy) are left for the processes that do.
    names = [c.name for c in consumers_all()]
    due = OutboxMessage.objects.filter(
        status=OutboxMessage.PENDING, next_attempt_at__lte=now, consumer__in=names
    )
    for message in due.select_related("event").order_by("next_attempt_at", "id")[:limit]:
        if time.monotonic() - started > budget_seconds:
            break
        counts[_deliver_one(message)] += 1
    return counts


def _claimed(message: OutboxMessage):
    """The row, as long as this worker's claim on it is the current one."""
    return OutboxMessage.objects.filter(
        pk=message.pk, status=OutboxMessage.PENDING, attempts=message.attempts
    )


def _claim(message: OutboxMessage) -> bool:
    claimed = OutboxMessage.objects.filter(
        pk=message.pk,
        status=OutboxMessage.PENDING,
        attempts=message.attempts,
        next_attempt_at=message.next_attempt_at,
    ).update(attempts=F("attempts") + 1, next_attempt_at=timezone.now() + DELIVERY_LEASE)
    if claimed:
        message.attempts += 1
    return bool(claimed)


def _deliver_one(message: OutboxMessage) -> str:
    if not _claim(message):
        return "skipped"  # another worker has it
    consumer = consumer_get(message.consumer)
    try:
        consumer.deliver(message.event)
    except Exception as exc:  # a consumer's failure is data here, never a crashed worker
        error = _error_text(exc)
        logger.warning(
            "outbox %s: event %s not delivered: %s", consumer.name, message.event_id, error
        )
        if message.attempts >= consumer.max_attempts:
            return _finish(message, OutboxMessage.DEAD, error=error)
        _claimed(message).update(
            next_attempt_at=timezone.now() + outbox_backoff(message.attempts), last_error=error
        )
        return "retry"
    return _finish(message, OutboxMessage.DELIVERED)


def _error_text(exc: Exception) -> str:
    # Only a consumer's own DeliveryError is trusted to carry a message without secrets (no
    # URL with a token, no address); anything else is named by its type.
    if isinstance(exc, DeliveryError):
        return str(exc)[:500]
    return f"{type(exc).__name__} (details in the gateway's log)"


def _finish(message: OutboxMessage, status: str, *, error: str = "") -> str:
    changes = {"status": status, "last_error": error}
    if status == OutboxMessage.DELIVERED:
        changes["delivered_at"] = timezone.now()
    # Conditional: a worker whose lease ran out must not overwrite a later worker's outcome.
    if not _claimed(message).update(**changes):
        return "skipped"
    return "delivered" if status == OutboxMessage.DELIVERED else "dead"
