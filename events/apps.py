"""Events out of the audit trail: the app above `rotation` that owns the outbox.

Whatever leaves the vault because something happened (a mail, a webhook delivery, a counter)
is derived from audit events: each new event is fanned out, in the transaction that wrote it,
to one outbox row per consumer that wants it, and the gateways' workers deliver those rows
with retries. Rotation code never sends anything itself, and a slow receiver never slows a
rotation.
"""

from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events out of the audit trail"

    def ready(self) -> None:
        from events import outbox
        from rotation.gateways import TICK_HOOKS

        outbox.outbox_install()
        # Delivery runs on the workers, never in the request or rotation that wrote the event;
        # any gateway may deliver any row (claims keep it to one worker per row).
        TICK_HOOKS["outbox"] = outbox.outbox_deliver_due
