"""Client credentials of applications for the Secrets Manager-compatible API.

An application's administrators create them; the secret is shown once and kept encrypted
(SigV4 needs it on the server to recompute signatures), like every other secret.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from vault.models import Application, SecretsMixin, UidModel


class ClientCredential(SecretsMixin, UidModel):
    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="client_credentials"
    )
    name = models.CharField(max_length=200, blank=True)
    # What clients send in the SigV4 Credential scope: a recognisable prefix, then random.
    access_key_id = models.CharField(max_length=40, unique=True)
    secret_access_key_enc = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    # CIDR strings; empty means any address.
    allowed_networks = models.JSONField(default=list, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.access_key_id} ({self.application})"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
