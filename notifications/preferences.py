"""What people may be mailed about, which audit events each kind comes from, the defaults, and
the per-folder form of /account/notifications/.

Kinds and the audit events they come from (vault/audit.py writes them, rotation code never
sends anything):
- rotation_failed: `rotation.on_demand.fail`, `rotation.scheduled.fail` without `may_be_live`;
- may_be_live: those with `may_be_live` true, and `rotation.cancelled` with `may_be_live`;
- gateway_offline: `gateway.offline`, mailed once the gateway has been silent for the
  person's N minutes (and not if it came back online before);
- credentials_refused: `configuration.tested` whose outcome is `failed` (AWS refused the
  configuration's credentials, or could not be reached: the event does not say which).
A missed scheduled rotation has no audit event yet, so it cannot be chosen (docs/operations.md).
"""

from __future__ import annotations

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from notifications.models import IMMEDIATE, NotificationPreference
from vault.models import AuditEvent, FolderMember, SharedFolder

ROTATION_FAILED = "rotation_failed"
MAY_BE_LIVE = "may_be_live"
GATEWAY_OFFLINE = "gateway_offline"
CREDENTIALS_REFUSED = "credentials_refused"
KINDS = {
    ROTATION_FAILED: "A rotation failed",
    MAY_BE_LIVE: "A password may be live in AWS (a person must choose which to keep)",
    GATEWAY_OFFLINE: "A gateway serving this folder is offline",
    CREDENTIALS_REFUSED: "A configuration's Test connection failed (credentials refused by AWS)",
}
ROTATION_FAILURES = ("rotation.on_demand.fail", "rotation.scheduled.fail")
ACTIONS = (*ROTATION_FAILURES, "rotation.cancelled", "gateway.offline", "configuration.tested")
# Who may choose (and gets the defaults): those who can act on a failure in the folder.
ELIGIBLE = Q(can_edit=True) | Q(manage_records=True) | Q(manage_users=True)
MINUTES_MAX = 7 * 24 * 60


def event_kind(event: AuditEvent) -> str | None:
    """The kind of mail an audit event is, from the event alone (no query), or None."""
    details = event.details or {}
    if event.action in ROTATION_FAILURES:
        return MAY_BE_LIVE if details.get("may_be_live") else ROTATION_FAILED
    if event.action == "rotation.cancelled" and details.get("may_be_live"):
        return MAY_BE_LIVE
    if event.action == "gateway.offline":
        return GATEWAY_OFFLINE
    if event.action == "configuration.tested" and details.get("outcome") == "failed":
        return CREDENTIALS_REFUSED
    return None


def is_manager(member: FolderMember) -> bool:
    return bool(member.manage_users or member.manage_records)


def preference_default(member: FolderMember) -> NotificationPreference:
    """What a member gets without having chosen (an unsaved row)."""
    manager = is_manager(member)
    return NotificationPreference(
        user_id=member.user_id,
        folder_id=member.folder_id,
        rotation_failed=manager,
        may_be_live=manager,
        delivery=IMMEDIATE,
    )


def preference_for(member: FolderMember) -> NotificationPreference:
    found = NotificationPreference.objects.filter(
        user_id=member.user_id, folder_id=member.folder_id
    ).first()
    return found or preference_default(member)


def may_choose(member: FolderMember | None) -> bool:
    return member is not None and bool(
        member.can_edit or member.manage_records or member.manage_users
    )


def memberships_to_choose(user) -> QuerySet[FolderMember]:
    """The memberships for which `user` chooses (folders they edit or manage)."""
    return (
        FolderMember.objects.filter(ELIGIBLE, user=user)
        .select_related("folder")
        .order_by("folder__name", "folder__pk")
    )


class PreferenceForm(forms.ModelForm):
    class Meta:
        model = NotificationPreference
        fields = [
            "rotation_failed",
            "may_be_live",
            "credentials_refused",
            "gateway_offline",
            "gateway_offline_minutes",
            "delivery",
        ]
        labels = {
            **KINDS,
            "gateway_offline_minutes": "Offline for longer than (minutes)",
            "delivery": "Send",
        }
        widgets = {"delivery": forms.RadioSelect}

    def clean_gateway_offline_minutes(self) -> int:
        minutes = self.cleaned_data["gateway_offline_minutes"]
        if not 1 <= minutes <= MINUTES_MAX:
            raise forms.ValidationError(f"Enter a number of minutes from 1 to {MINUTES_MAX}.")
        return minutes


def preference_form(member: FolderMember, data=None) -> PreferenceForm:
    return PreferenceForm(data, instance=preference_for(member), prefix=member.folder.uid)


def preference_save(*, form: PreferenceForm, member: FolderMember) -> NotificationPreference:
    """Save a valid form as `member`'s choice for their folder."""
    # update_or_create, not the form's own save: two submissions that both found no choice
    # yet (a double click) must not both insert (one_preference_per_folder).
    fields = {name: form.cleaned_data[name] for name in form._meta.fields}
    preference, _ = NotificationPreference.objects.update_or_create(
        user_id=member.user_id,
        folder_id=member.folder_id,
        defaults={**fields, "updated_at": timezone.now()},
    )
    return preference


def folders_of_gateway(gateway_uid: str) -> QuerySet[SharedFolder]:
    """The folders shared to the application of the gateway named by an audit event."""
    return SharedFolder.objects.filter(applications__gateways__uid=gateway_uid).distinct()
