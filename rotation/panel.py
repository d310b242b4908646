"""What the rotation panel on a PAM User page shows; used by the page and the status poll."""

from __future__ import annotations

from rotation.candidates import password_candidates
from rotation.engine import DISABLED, NOT_MANAGED, rotation_wait_until
from rotation.models import KeyRetirement, Rotation, RotationSettings
from rotation.rotation_settings import ACCESS_KEY, grace_text, schedule_text
from rotation.schedules import schedule_problem
from vault.access import has_permission, member_policy_allows
from vault.models import FolderMember, PamUser

HISTORY_LENGTH = 20


def panel_context(record: PamUser, member: FolderMember | None) -> dict:
    rs = (
        RotationSettings.objects.filter(pam_user=record)
        .select_related("configuration__gateway")
        .first()
    )
    history = list(
        Rotation.objects.filter(pam_user=record).select_related("requested_by")[:HISTORY_LENGTH]
    )
    latest = history[0] if history else None
    gateway = rs.configuration.gateway if rs else None
    if latest is not None and latest.is_active:
        gateway = latest.configuration.gateway
    return {
        "record": record,
        "rotation_settings": rs,
        "schedule_text": schedule_text(rs) if rs else "",
        # A stored schedule that no longer reads (older rules): to be chosen again.
        "schedule_problem": schedule_problem(rs.effective_schedule) if rs else "",
        # Why Rotate is shown disabled (the Rotate view refuses it with the same words).
        "rotate_unavailable": NOT_MANAGED
        if not record.managed
        else DISABLED
        if rs and not rs.enabled
        else None,
        "history": history,
        "latest": latest,
        "gateway": gateway,
        "gateway_online": bool(gateway and gateway.is_online),
        "can_edit": has_permission(member, "can_edit"),
        # Buttons only for what the person's policies allow (VAULT_ENFORCE_POLICIES).
        "can_configure": has_permission(member, "can_edit")
        and member_policy_allows(member, "configure_rotation"),
        "can_rotate": has_permission(member, "can_edit") and member_policy_allows(member, "rotate"),
        # A queued rotation that has not started may be cancelled by whoever may rotate
        # (engine.rotation_cancel; a committed pending password is kept as may be live).
        "can_cancel": latest is not None
        and latest.status == Rotation.QUEUED
        and has_permission(member, "can_edit")
        and member_policy_allows(member, "rotate"),
        # Passwords AWS may hold besides the current one (never their secrets: Reveal shows
        # those); the may-be-live ones with the choice of which to keep.
        "candidates": password_candidates(record),
        # The access-key method: the new key a rotation holds before it is the record's, and
        # the replaced keys on their way out of AWS (rotation/retirement.py).
        "pending_access_key_id": pending_access_key_id(history),
        "grace_text": grace_text(rs) if rs and rs.method == ACCESS_KEY else "",
        "key_retirements": key_retirements(record, rs),
        # A queued rotation held back until an earlier unanswered request can no longer land.
        "waits_until": rotation_wait_until(record)
        if latest is not None and latest.status == Rotation.QUEUED
        else None,
    }


RETIREMENTS_SHOWN = 10


def holds_pending_key(rotation: Rotation) -> bool:
    """Whether `rotation` holds a new access key that is not the record's yet: while it runs,
    or after it failed with the key possibly live and nobody resolved it."""
    if not rotation.pending_access_key_id:
        return False
    return rotation.is_active or (rotation.pending_may_be_live and rotation.resolved_at is None)


def pending_access_key_id(rotations) -> str:
    """The key id of the newest pending access key among `rotations` (newest first), or ""."""
    for rotation in rotations:
        if holds_pending_key(rotation):
            return rotation.pending_access_key_id
    return ""


def key_retirements(record: PamUser, rs: RotationSettings | None) -> list[KeyRetirement]:
    """The record's latest key retirements; no query for a record without access keys."""
    if not record.access_key_id and not (rs and rs.method == ACCESS_KEY):
        return []
    return list(KeyRetirement.objects.filter(pam_user=record)[:RETIREMENTS_SHOWN])
