"""Failure notifications by email: an outbox consumer that mails the people who asked for an
event (issue 16), and a tick hook for the mails left for later and the daily digests."""

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications by email"

    def ready(self) -> None:
        from events.consumers import consumer_register
        from notifications import mail
        from rotation.gateways import TICK_HOOKS

        consumer_register(mail.CONSUMER)
        TICK_HOOKS["notifications"] = mail.notifications_tick
