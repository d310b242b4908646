"""The registry of outbox consumers: what wants which audit events, and how to deliver one.

A consumer is registered once, at start (an app's ready()), under a stable name: outbox rows
name it, so renaming a consumer orphans its undelivered rows (they are reported as dead).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vault.models import AuditEvent


class DeliveryError(Exception):
    """Raised by a consumer's deliver() with a message fit to store and show: it must hold no
    secret (no token, no password, no URL with credentials). Other exceptions are recorded by
    their type only."""


@dataclass(frozen=True)
class Consumer:
    name: str
    # Decides from the event alone (no query): called inside the transaction that wrote it.
    wants: Callable[[AuditEvent], bool]
    # Delivers one event; any exception means "not delivered, try again later".
    deliver: Callable[[AuditEvent], None]
    max_attempts: int = 12


_consumers: dict[str, Consumer] = {}


def consumer_register(consumer: Consumer) -> None:
    if consumer.name in _consumers and _consumers[consumer.name] != consumer:
        raise ValueError(f"an outbox consumer named {consumer.name!r} is already registered")
    _consumers[consumer.name] = consumer


def consumer_unregister(name: str) -> None:
    _consumers.pop(name, None)


def consumer_get(name: str) -> Consumer | None:
    return _consumers.get(name)


def consumers_all() -> list[Consumer]:
    return list(_consumers.values())
