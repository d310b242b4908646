"""What the rotation panel on a PAM User page shows; used by the page and the status poll."""

from __future__ import annotations

from rotation.engine import possibly_live_rotations
from rotation.models import Rotation, RotationSettings
from rotation.schedules import ScheduleError, describe_schedule
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
    try:
        schedule_text = describe_schedule(rs.effective_schedule) if rs else ""
    except ScheduleError:
        schedule_text = "invalid schedule"
    return {
        "record": record,
        "rotation_settings": rs,
        "schedule_text": schedule_text,
        "history": history,
        "latest": latest,
        "gateway": gateway,
        "gateway_online": bool(gateway and gateway.is_online),
        "can_edit": has_permission(member, "can_edit"),
        # Buttons only for what the person's policies allow (VAULT_ENFORCE_POLICIES).
        "can_configure": has_permission(member, "can_edit")
        and member_policy_allows(member, "configure_rotation"),
        "can_rotate": has_permission(member, "can_edit") and member_policy_allows(member, "rotate"),
        "possibly_live": list(possibly_live_rotations(record)),
    }
