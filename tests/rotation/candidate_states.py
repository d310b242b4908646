"""Rotations in the states that make a candidate (a password AWS may hold besides the record's
current one), written straight to the database so each test says exactly which state it means.
Used by the candidate tests of the CLI, the record page and rotation/candidates.py."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from rotation.models import Rotation
from vault.models import PamUser

_counter = iter(range(1, 1_000_000))


def _rotation(record: PamUser, *, status: str, pending: str, ago: float, **fields) -> Rotation:
    now = timezone.now()
    rs = record.rotation_settings
    rotation = Rotation(
        pam_user=record,
        configuration=rs.configuration,
        gateway_name=rs.configuration.gateway.name,
        trigger="on_demand",
        status=status,
        created_at=now - timedelta(seconds=ago),
        lease_expires_at=now + timedelta(seconds=300),
        **fields,
    )
    rotation.save()  # the uid exists before a secret is bound to it
    if pending:
        rotation.set_secret("pending_password", pending)
        rotation.save(update_fields=["pending_password_enc"])
    return rotation


def pending_password() -> str:
    return f"Pending-Passw0rd!{next(_counter):06d}"


def may_be_live(record: PamUser, *, ago: float = 60, pending: str | None = None) -> Rotation:
    """A failed rotation whose pending password may be live, not resolved."""
    return _rotation(
        record,
        status=Rotation.FAILED,
        pending=pending or pending_password(),
        ago=ago,
        pending_may_be_live=True,
        started_at=timezone.now() - timedelta(seconds=ago),
        finished_at=timezone.now() - timedelta(seconds=ago / 2),
        error="AWS did not answer",
    )


def being_set(
    record: PamUser, *, status: str = Rotation.RUNNING, ago: float = 5, pending: str | None = None
) -> Rotation:
    """A running rotation (or one queued again after a recovered lease) whose pending
    password is committed: AWS may already hold it."""
    return _rotation(
        record,
        status=status,
        pending=pending or pending_password(),
        ago=ago,
        attempts=1,
        started_at=timezone.now() - timedelta(seconds=ago),
        pending_may_be_live=status == Rotation.QUEUED,
    )


def plain(record: PamUser, *, status: str, ago: float = 120, **fields) -> Rotation:
    """A rotation holding no candidate (succeeded, failed for sure, or running before its
    write-ahead)."""
    return _rotation(record, status=status, pending="", ago=ago, **fields)
