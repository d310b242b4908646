"""One row per (audit event, consumer) that must be delivered, with its delivery state."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from vault.models import AuditEvent


class OutboxMessage(models.Model):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    STATUSES = [(PENDING, "Pending"), (DELIVERED, "Delivered"), (DEAD, "Gave up")]

    event = models.ForeignKey(AuditEvent, on_delete=models.CASCADE, related_name="outbox")
    consumer = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Due time of the next attempt; a claimed row is pushed past its delivery lease, so a
    # worker that dies mid-delivery leaves it to be retried, not lost.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "consumer"], name="one_message_per_consumer")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbox_due")]
        ordering = ["next_attempt_at", "id"]

    def __str__(self) -> str:
        return f"{self.consumer}: event {self.event_id} ({self.status})"
