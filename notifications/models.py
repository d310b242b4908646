"""Who wants which mail (NotificationPreference), each mail owed to a person for an event
(Notice: the dedupe ledger and the digest queue), and the daily digests already sent
(DigestRun)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from vault.models import AuditEvent, SharedFolder

IMMEDIATE, DIGEST = "immediate", "digest"
DELIVERIES = [(IMMEDIATE, "At once, one mail per event"), (DIGEST, "In a daily digest")]


class NotificationPreference(models.Model):
    """One person's choice for one folder. Without a row the defaults apply
    (notifications.preferences.preference_default): folder managers get failures and
    may-be-live at once, others nothing."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_prefs"
    )
    folder = models.ForeignKey(
        SharedFolder, on_delete=models.CASCADE, related_name="notification_prefs"
    )
    rotation_failed = models.BooleanField(default=False)
    may_be_live = models.BooleanField(default=False)
    gateway_offline = models.BooleanField(default=False)
    gateway_offline_minutes = models.PositiveIntegerField(default=10)
    credentials_refused = models.BooleanField(default=False)
    delivery = models.CharField(max_length=10, choices=DELIVERIES, default=IMMEDIATE)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "folder"], name="one_preference_per_folder")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.folder}"


class Notice(models.Model):
    """A mail owed to one person about one thing. Unique per (person, key), the key naming
    the rotation or the event, so a redelivered outbox row (at least once) or the second audit
    copy of a rotation (written in the configuration's folder too) mails nobody twice."""

    PENDING, SENT, DROPPED = "pending", "sent", "dropped"
    STATUSES = [(PENDING, "Pending"), (SENT, "Sent"), (DROPPED, "Dropped")]

    event = models.ForeignKey(AuditEvent, on_delete=models.CASCADE, related_name="notices")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=80)
    kind = models.CharField(max_length=30)
    digest = models.BooleanField(default=False)
    # When it may be sent: later than the event for "a gateway offline for longer than N
    # minutes", so that a gateway back within N minutes mails nobody.
    due_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    # A sender's claim: hidden from other senders until then; a sender that died mid-send
    # leaves it to be sent again after (at least once).
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="one_notice_per_person")
        ]
        indexes = [models.Index(fields=["status", "due_at"], name="notice_due")]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user} ({self.status})"


class DigestRun(models.Model):
    """The digest of one person for one day: its row is taken before the mail is sent, so
    two gateways ticking at once send one digest."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    day = models.DateField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="one_digest_a_day")]

    def __str__(self) -> str:
        return f"digest of {self.user} for {self.day}"
