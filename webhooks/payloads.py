"""Which audit events are which webhook events, and the body each delivery carries.

Decided from the audit event alone (no query), as the outbox asks of a consumer's `wants`.
The body is built from the event's own columns and details, which never hold a secret
(vault/audit.py): names, uids, outcomes and error messages.
"""

from __future__ import annotations

from vault.models import AuditEvent

ROTATION_OK = ("rotation.on_demand.ok", "rotation.scheduled.ok")
ROTATION_FAIL = ("rotation.on_demand.fail", "rotation.scheduled.fail")
SAME_NAME = ("rotation.resolved", "gateway.online", "gateway.offline", "configuration.tested")


def event_types(event: AuditEvent) -> list[str]:
    """The webhook event names `event` is, most specific first; [] when none.

    A failure that leaves a password which may be live in AWS is `rotation.may_be_live` and
    also a `rotation.failed` (a webhook subscribed to either receives it, once)."""
    action, details = event.action, event.details or {}
    if action in ROTATION_OK:
        return ["rotation.succeeded"]
    if action in ROTATION_FAIL or action == "rotation.cancelled":
        if details.get("may_be_live"):
            return ["rotation.may_be_live", "rotation.failed"]
        return ["rotation.failed"]
    if action in SAME_NAME:
        return [action]
    return []


def wanted(event: AuditEvent) -> bool:
    return bool(event_types(event))


def _status(event: AuditEvent) -> str:
    action, details = event.action, event.details or {}
    if action.endswith(".ok"):
        return "succeeded"
    if action == "rotation.cancelled":
        return "cancelled"
    if action.endswith(".fail"):
        return "failed"
    if action == "rotation.resolved":
        return f"resolved: kept the {details.get('kept', 'current')} password"
    if action == "configuration.tested":
        return details.get("outcome", "")
    return action.split(".", 1)[1]  # gateway.online -> online


def build_payload(event: AuditEvent, event_type: str) -> dict:
    """The Standard Webhooks body: {"type", "timestamp", "data"}."""
    details = event.details or {}
    named = {"uid": event.object_uid, "name": event.object_repr}
    data: dict = {
        "event_id": event.pk,
        "action": event.action,
        "record": None,
        "configuration": None,
        "gateway": None,
        "folder": {"uid": event.folder.uid, "name": event.folder.name} if event.folder else None,
        "rotation": details.get("rotation") or None,
        "status": _status(event),
        "error": details.get("error") or None,
        "may_be_live": bool(details.get("may_be_live")),
        "actor": event.actor.get_username() if event.actor else None,
        "actor_kind": event.actor_kind,
    }
    if event.object_type == "pamuser":
        data["record"] = named
    elif event.object_type == "pamconfiguration":
        data["configuration"] = named
        if details.get("record"):  # a rotation audited in its configuration's folder
            data["record"] = {"uid": details["record"], "login": details.get("login", "")}
    elif event.object_type == "gateway":
        data["gateway"] = {"uid": event.object_uid, "name": event.object_repr}
    if event.action == "configuration.tested":
        data["account_id"] = details.get("account_id") or None
    return {"type": event_type, "timestamp": event.created_at.isoformat(), "data": data}
