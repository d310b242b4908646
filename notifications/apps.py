"""Failure notifications by email: an outbox consumer that mails the people who asked for an event (issue 16)."""

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications by email"
