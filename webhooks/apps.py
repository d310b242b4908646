"""Signed webhooks (Standard Webhooks) after rotations and gateway changes: an outbox consumer with a delivery log (issue 16)."""

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"
