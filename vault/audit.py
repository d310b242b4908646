"""Writing audit events. Details never hold a secret: callers pass names, uids and outcomes."""

from __future__ import annotations

from django.dispatch import Signal
from django.http import HttpRequest

from vault.models import AuditEvent, SharedFolder

# Sent with `events=` after audit_events_bulk wrote them (bulk_create sends no post_save):
# whatever derives from audit events (the events outbox) hears of these too.
audit_events_bulk_created = Signal()

# The "what" of a `password.revealed` event for a password revealed alongside a record's
# current one (a rotation's pending password AWS may hold: vault.services'
# RECORD_CANDIDATE_REVEALERS). Each password shown has its own event, but a Reveal counts once
# against REVEAL_RATE_LIMIT (vault/security.py), as the README's "reveals per user" says.
REVEALED_ALONGSIDE = "candidate password"


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_event(
    action: str,
    *,
    actor=None,
    actor_kind: str = "user",
    obj=None,
    folder: SharedFolder | None = None,
    request: HttpRequest | None = None,
    details: dict | None = None,
) -> AuditEvent:
    """The event audit_record writes, not saved yet: for audit_events_bulk."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    if actor is None and actor_kind == "user":
        actor_kind = "system"
    if folder is None and obj is not None:
        folder = obj if isinstance(obj, SharedFolder) else None
    # The object's folder is not read just for its id.
    folder_id = folder.pk if folder is not None else getattr(obj, "folder_id", None)
    return AuditEvent(
        actor=actor,
        actor_kind=actor_kind,
        action=action,
        object_type=obj._meta.model_name if obj is not None else "",
        object_uid=getattr(obj, "uid", "") or "",
        object_repr=str(obj)[:300] if obj is not None else "",
        folder_id=folder_id,
        source_ip=client_ip(request),
        details=details or {},
    )


def audit_record(action: str, **what) -> AuditEvent:
    """Write one audit event (see audit_event for what it holds)."""
    event = audit_event(action, **what)
    event.save(force_insert=True)
    return event


def audit_events_bulk(events: list[AuditEvent]) -> list[AuditEvent]:
    """Write many audit events at once (an import of a thousand records), and tell what
    derives from audit events, in the same transaction, as post_save does for one."""
    created = AuditEvent.objects.bulk_create(events, batch_size=500)
    audit_events_bulk_created.send(sender=AuditEvent, events=created)
    return created
