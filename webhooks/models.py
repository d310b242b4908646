"""Webhooks and their delivery log.

A webhook is a folder's (created by its managers) or global (superusers'; folder is empty).
Its signing secret is kept encrypted through vault/crypto.py (SecretsMixin) and shown once,
when it is made. Each delivery is one audit event sent to one webhook: its own retry schedule,
its own row in the log the folder's managers read.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from vault.models import AuditEvent, SecretsMixin, SharedFolder, UidModel

# The event names scripts subscribe to (issue 16; docs/webhooks.md), with their labels.
EVENT_TYPES = {
    "rotation.succeeded": "Rotation succeeded",
    "rotation.failed": "Rotation failed",
    "rotation.may_be_live": "Rotation failed; a password may be live in AWS",
    "rotation.resolved": "Possibly-live password resolved",
    "gateway.online": "Gateway came online",
    "gateway.offline": "Gateway went offline",
    "configuration.tested": "Configuration tested",
}


class Webhook(UidModel, SecretsMixin):
    folder = models.ForeignKey(
        SharedFolder, null=True, blank=True, on_delete=models.CASCADE, related_name="webhooks"
    )
    url = models.CharField(max_length=500)
    # A list of EVENT_TYPES keys.
    events = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    # Why the vault turned it off (a 410 Gone), shown beside the switch.
    disabled_reason = models.CharField(max_length=300, blank=True)
    secret_enc = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"webhook {self.uid} ({self.folder.name if self.folder else 'global'})"


class WebhookDelivery(UidModel):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up: attempts ran out, or the receiver said 410 Gone
    STATUSES = [(PENDING, "Pending"), (DELIVERED, "Delivered"), (FAILED, "Failed")]

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(
        AuditEvent, null=True, on_delete=models.SET_NULL, related_name="webhook_deliveries"
    )
    # The Standard Webhooks event name (EVENT_TYPES) and the body as first built: a
    # redelivery sends the same body and webhook-id, so receivers can deduplicate.
    event_type = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Due time of the next attempt; a claimed row is pushed past its lease (as the outbox).
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["webhook", "event"], name="one_delivery_per_event")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due")]

    @property
    def message_id(self) -> str:
        """The `webhook-id` header: the same on every attempt of this delivery."""
        return f"msg_{self.uid}"

    def __str__(self) -> str:
        return f"{self.event_type} to {self.webhook.uid} ({self.status})"
