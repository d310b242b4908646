"""Signed webhooks (Standard Webhooks) after rotations and gateway changes: an outbox consumer
that turns audit events into deliveries, and a tick hook that sends them (issue 16)."""

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from events.consumers import Consumer, consumer_register
        from rotation.gateways import TICK_HOOKS
        from webhooks import payloads, services

        # The consumer only writes delivery rows (no network), so its outbox row rarely
        # retries; each webhook's own retries are its deliveries' (services.py).
        consumer_register(
            Consumer(name="webhooks", wants=payloads.wanted, deliver=services.webhooks_fan_out)
        )
        TICK_HOOKS["webhooks"] = services.webhook_deliveries_send_due
