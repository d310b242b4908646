"""Reading the audit trail: who may see which events, the filter form, the events in words,
and the CSV export.

Superusers see every event; members with `manage_users` see the events of their folders only.
Audit details never hold a secret (vault/audit.py), so the page and the export may show them as
they are. The page shows each event as one sentence (`event_sentence`: from its action, actor,
object and main details) with every detail behind a toggle (`event_details`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.utils import timezone

from rotation.schedules import describe_schedule
from vault.access import folders_with_permission
from vault.forms import PERMISSION_LABELS
from vault.models import AuditEvent

EVENTS_PER_PAGE = 50
EARLIEST, LATEST = date(1900, 1, 1), date(9999, 12, 30)
CSV_COLUMNS = [
    "time",
    "actor",
    "actor kind",
    "action",
    "object type",
    "object uid",
    "object",
    "folder",
    "source ip",
    "details",
]
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def audit_events_for_user(user) -> QuerySet[AuditEvent]:
    """The events `user` may read, or PermissionDenied for anyone not allowed the audit log."""
    if user.is_superuser:
        return AuditEvent.objects.all()
    folders = folders_with_permission(user, "manage_users")
    if not folders.exists():
        raise PermissionDenied(
            "The audit log is for superusers and for folder members with the “manage_users” "
            "permission."
        )
    return AuditEvent.objects.filter(folder__in=folders.values("pk"))


def may_read_audit_log(user) -> bool:
    """Whether `user` may open the audit log (audit_events_for_user's rule), in one query."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_superuser or folders_with_permission(user, "manage_users").exists())


def audit_actions(events: QuerySet[AuditEvent]) -> list[str]:
    return list(events.order_by("action").values_list("action", flat=True).distinct())


class DateInput(forms.DateInput):
    input_type = "date"


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(required=False)
    user = forms.CharField(
        required=False, max_length=150, label="User", help_text="Exact username."
    )
    date_from = forms.DateField(required=False, label="From", widget=DateInput)
    date_to = forms.DateField(required=False, label="To", widget=DateInput)

    def __init__(self, *args, actions: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "All actions")] + [(a, a) for a in actions]

    def clean_user(self) -> str:
        username = self.cleaned_data["user"].strip()
        if username and not get_user_model().objects.filter(username=username).exists():
            raise forms.ValidationError(f"No user is named “{username}”.")
        return username

    def _clean_day(self, name: str) -> date | None:
        day = self.cleaned_data[name]
        if day is not None and not EARLIEST <= day <= LATEST:
            raise forms.ValidationError(f"Enter a date between {EARLIEST} and {LATEST}.")
        return day

    def clean_date_from(self) -> date | None:
        return self._clean_day("date_from")

    def clean_date_to(self) -> date | None:
        return self._clean_day("date_to")

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "The end date is before the start date.")
        return data


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def audit_filter(events: QuerySet[AuditEvent], data: dict) -> QuerySet[AuditEvent]:
    """Apply a valid AuditFilterForm's cleaned data. Dates are whole local days, inclusive."""
    if data.get("action"):
        events = events.filter(action=data["action"])
    if data.get("user"):
        events = events.filter(actor__username=data["user"])
    if data.get("date_from"):
        events = events.filter(created_at__gte=_day_start(data["date_from"]))
    if data.get("date_to"):
        events = events.filter(created_at__lt=_day_start(data["date_to"] + timedelta(days=1)))
    return events.select_related("actor", "folder")


def _cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def audit_csv_rows(events: QuerySet[AuditEvent]) -> Iterator[list[str]]:
    """The header, then one row per event, read in chunks so a large export stays small."""
    yield CSV_COLUMNS
    for event in events.iterator(chunk_size=2000):
        yield [
            _cell(value)
            for value in (
                event.created_at.isoformat(),
                event.actor.username if event.actor else "",
                event.actor_kind,
                event.action,
                event.object_type,
                event.object_uid,
                event.object_repr,
                event.folder.name if event.folder else "",
                event.source_ip or "",
                json.dumps(event.details, sort_keys=True, ensure_ascii=False),
            )
        ]


# --- events in words ------------------------------------------------------------------------------

# AuditEvent.object_type holds the model's name; people know these objects by other names.
OBJECT_TYPES = {
    "pamuser": "PAM User",
    "pamconfiguration": "PAM Configuration",
    "sharedfolder": "Shared folder",
    "gateway": "Gateway",
    "application": "Application",
    "schedule": "Task schedule",
    "rotation": "Rotation",
    "user": "User",
}
# Detail keys whose label is not simply the key in words.
DETAIL_LABELS = {
    "ip_address": "IP address",
    "account_id": "AWS account",
    "in_progress": "Already in progress",
    "other_sessions_ended": "Other sessions ended",
    "configuration_default": "Configuration's default now",
}
REVEALED = {
    "password": "the password",
    "history": "an earlier password",
    "access_secret_key": "the access secret key",
    "candidate password": "a password that may be live in AWS",
}


def object_type_label(model_name: str) -> str:
    return OBJECT_TYPES.get(model_name, model_name.capitalize())


def _actor(event: AuditEvent) -> str:
    if event.actor is not None:
        return event.actor.username
    if event.actor_kind == "cli":
        return "The CLI"
    if event.actor_kind == "user":
        return "A deleted user"  # the account was deleted since (actor set to NULL)
    return "The vault"


def _object(event: AuditEvent) -> str:
    if not event.object_repr:
        return object_type_label(event.object_type) or "(no object)"
    label = object_type_label(event.object_type)
    return f"{label} “{event.object_repr}”" if label else f"“{event.object_repr}”"


def _schedule_words(details: dict) -> str:
    schedule = details.get("schedule")
    if isinstance(schedule, dict):
        return describe_schedule(schedule)
    default = details.get("configuration_default")
    now = f" (now {describe_schedule(default)})" if isinstance(default, dict) else ""
    return f"the configuration’s default schedule{now}"


def _settings(verb: str) -> Callable[[str, str, dict], str]:
    def sentence(actor: str, obj: str, d: dict) -> str:
        state = "" if "enabled" not in d else (", enabled" if d["enabled"] else ", disabled")
        what = f": {_schedule_words(d)}{state}" if "schedule" in d else ""
        return f"{actor} {verb} password rotation of {obj}{what}."

    return sentence


def _rotation(trigger: str, ok: bool) -> Callable[[str, str, dict], str]:
    def sentence(actor: str, obj: str, d: dict, *, by: str = "") -> str:
        by = f" by {by}" if by else ""
        if d.get("login"):  # the copy audited on the configuration of another folder
            obj = f"IAM user “{d['login']}” using {obj}"
        if ok:
            return f"{trigger} rotation of {obj}{by} succeeded."
        live = " (the new password may be live in AWS)" if d.get("may_be_live") else ""
        error = f": {d['error']}" if d.get("error") else ""
        return f"{trigger} rotation of {obj}{by} failed{error}{live}."

    sentence.names_requester = True
    return sentence


def _permissions(d: dict) -> str:
    names = d.get("permissions") or []
    return ", ".join(PERMISSION_LABELS.get(n, n).lower() for n in names) or "view only"


def _tested(actor: str, obj: str, d: dict) -> str:
    if d.get("outcome") == "succeeded":
        account = f" (AWS account {d['account_id']})" if d.get("account_id") else ""
        return f"{actor} tested the connection of {obj}: it works{account}."
    return f"{actor} tested the connection of {obj}: it failed: {d.get('error', 'no reason')}."


# action -> sentence(actor, object, details). Rotation sentences name the requester after the
# object ("On-demand rotation of ... by editor succeeded"): the rotation is the subject.
SENTENCES: dict[str, Callable[..., str]] = {
    "record.created": lambda a, o, d: f"{a} created {o}.",
    "record.updated": lambda a, o, d: (
        f"{a} edited {o}" + (f" ({', '.join(d['fields'])})." if d.get("fields") else ".")
    ),
    "record.deleted": lambda a, o, d: f"{a} deleted {o}.",
    "record.history_imported": lambda a, o, d: (
        f"{a} imported {d.get('entries', '?')} password history entries of {o}."
    ),
    "vault.exported": lambda a, o, d: (
        f"{a} exported "
        + (
            "the whole vault"
            if d.get("folders") == "all"
            else f"the folders {', '.join(d.get('folders') or [])}"
        )
        + f" with every secret ({d.get('records', '?')} records, "
        f"{d.get('configurations', '?')} configurations) to {d.get('file', '?')}"
        + (f" as {d['os_user']}" if d.get("os_user") else "")
        + "."
    ),
    "password.revealed": lambda a, o, d: (
        f"{a} revealed {REVEALED.get(d.get('what', 'password'), 'a secret')} of {o}."
    ),
    "password.reveal_failed": lambda a, o, d: (
        f"{a} could not reveal {REVEALED.get(d.get('what', 'password'), 'a secret')} of {o}: "
        f"{d.get('error', 'it did not decrypt')}."
    ),
    "password.reveal_rate_limited": lambda a, o, d: (
        f"{a} was refused a reveal: more than the limit of {d.get('limit', '?')}."
    ),
    "rotation_settings.created": _settings("set up"),
    "rotation_settings.updated": _settings("changed"),
    "rotation_settings.disabled": _settings("turned off"),
    "rotation.on_demand.ok": _rotation("On-demand", True),
    "rotation.on_demand.fail": _rotation("On-demand", False),
    "rotation.scheduled.ok": _rotation("Scheduled", True),
    "rotation.scheduled.fail": _rotation("Scheduled", False),
    "rotation.resolved": lambda a, o, d: (
        f"{a} settled a {'key' if d.get('access_key_id') else 'password'} that may be live in "
        f"AWS for {o}: kept the {'pending' if d.get('kept') == 'pending' else 'current'} one."
    ),
    "rotation.key.orphan_deleted": lambda a, o, d: (
        f"The gateway deleted the access key {d.get('access_key_id', '?')} of {o}: AWS made it "
        "for a rotation whose answer was lost, so its secret was never known."
    ),
    "rotation.key.deactivated": lambda a, o, d: (
        f"The gateway deactivated the access key {d.get('access_key_id', '?')} of {o}, "
        "replaced by a rotation: its grace period ended."
    ),
    "rotation.key.deleted": lambda a, o, d: (
        f"The gateway deleted the access key {d.get('access_key_id', '?')} of {o} "
        f"({d.get('why', 'replaced by a rotation')})."
    ),
    "rotation.cancelled": lambda a, o, d: (
        f"{a} cancelled the queued rotation of {o}"
        + (f" on the gateway “{d['gateway']}”" if d.get("gateway") else "")
        + (f": {d['reason']}" if d.get("reason") else "")
        + (" (a password it had saved is kept as may be live)." if d.get("may_be_live") else ".")
    ),
    "rotation.rerouted": lambda a, o, d: (
        f"{a} moved the queued rotation of {o} from the gateway “{d.get('from_gateway', '?')}” "
        f"to “{d.get('gateway', '?')}” by saving its rotation settings."
    ),
    "rotation.rotate_all": lambda a, o, d: (
        f"{a} asked to rotate every record of {o}: {d.get('requested', 0)} requested, "
        f"{d.get('in_progress', 0)} already in progress, {d.get('skipped', 0)} skipped."
    ),
    "configuration.created": lambda a, o, d: f"{a} created {o}.",
    "configuration.updated": lambda a, o, d: f"{a} edited {o}.",
    "configuration.deleted": lambda a, o, d: f"{a} deleted {o}.",
    "configuration.tested": _tested,
    "discovery.started": lambda a, o, d: (
        f"{a} started a discovery of the IAM users of {o} on the gateway “{d.get('gateway', '?')}”."
    ),
    "discovery.finished": lambda a, o, d: (
        f"The discovery of the IAM users of {o} found {d.get('users_found', 0)} users "
        f"({d.get('aws_calls', 0)} AWS calls)."
        if d.get("outcome") == "succeeded"
        else f"The discovery of the IAM users of {o} failed: {d.get('error', 'no reason')}"
    ),
    "discovery.imported": lambda a, o, d: (
        f"{a} imported {d.get('created', 0)} discovered IAM users as PAM Users (into {o})."
    ),
    "folder.created": lambda a, o, d: f"{a} created {o}.",
    "folder.renamed": lambda a, o, d: (
        f"{a} renamed the folder “{d.get('old_name', '?')}” to “{d.get('new_name', '?')}”."
    ),
    "folder.deleted": lambda a, o, d: (
        f"{a} deleted the folder “{d.get('name', '?')}” with its {d.get('records', 0)} records "
        f"and {d.get('configurations', 0)} configurations."
    ),
    "folder.shared": lambda a, o, d: (
        f"{a} shared {o} to application “{d.get('application', '?')}” "
        f"({'editable' if d.get('editable') else 'read-only'})."
    ),
    "folder.unshared": lambda a, o, d: (
        f"{a} stopped sharing {o} to application “{d.get('application', '?')}”."
    ),
    "member.added": lambda a, o, d: f"{a} added {d.get('user', '?')} to {o} ({_permissions(d)}).",
    "member.updated": lambda a, o, d: (
        f"{a} changed the permissions of {d.get('user', '?')} in {o} to: {_permissions(d)}."
    ),
    "member.removed": lambda a, o, d: f"{a} removed {d.get('user', '?')} from {o}.",
    "gateway.created": lambda a, o, d: (
        f"{a} created {o}"
        + (f" for application “{d['application']}”." if d.get("application") else ".")
    ),
    "gateway.online": lambda a, o, d: f"{o} came online.",
    "gateway.offline": lambda a, o, d: f"{o} went offline (no heartbeat).",
    "gateway.schedule_deleted": lambda a, o, d: f"{a} deleted {o}.",
    "login.locked_out": lambda a, o, d: (
        f"Sign-in as “{d.get('username', '?')}” was locked out after repeated failures"
        + (f" from {d['ip_address']}." if d.get("ip_address") else ".")
    ),
    "login.second_factor": lambda a, o, d: (
        f"{a} signed in with a second factor" + (f" ({d['method']})." if d.get("method") else ".")
    ),
    "login.second_factor_failed": lambda a, o, d: f"{a} gave a wrong two-factor code.",
    "2fa.enabled": lambda a, o, d: f"{a} turned two-factor sign-in on.",
    "2fa.disabled": lambda a, o, d: f"{a} turned two-factor sign-in off.",
    "2fa.recovery_codes_replaced": lambda a, o, d: f"{a} made new recovery codes.",
    "account.password_changed": lambda a, o, d: f"{a} changed their own password.",
    "webhook.created": lambda a, o, d: (
        f"{a} added a webhook to {d.get('url', '?')} ({', '.join(d.get('events') or []) or '?'})."
    ),
    "webhook.enabled": lambda a, o, d: f"{a} switched on the webhook to {d.get('url', '?')}.",
    "webhook.disabled": lambda a, o, d: (
        f"{a} switched off the webhook to {d.get('url', '?')}"
        + (f": {d['reason']}" if d.get("reason") else ".")
    ),
    "webhook.deleted": lambda a, o, d: f"{a} deleted the webhook to {d.get('url', '?')}.",
    "webhook.redelivered": lambda a, o, d: (
        f"{a} sent a delivery again to the webhook at {d.get('url', '?')}."
    ),
    # Client credentials of the secrets API (secretsapi/credentials.py).
    "credential.created": lambda a, o, d: (
        f"{a} created the client credential {d.get('access_key_id', '?')}"
        + (f" ({d['name']})" if d.get("name") else "")
        + f" of application “{d.get('application', '?')}”"
        + (f", expiring {str(d['expires_at'])[:10]}" if d.get("expires_at") else "")
        + (
            f", for {', '.join(map(str, d['allowed_networks']))} only"
            if d.get("allowed_networks")
            else ""
        )
        + "."
    ),
    "credential.revoked": lambda a, o, d: (
        f"{a} revoked the client credential {d.get('access_key_id', '?')}"
        + (f" ({d['name']})" if d.get("name") else "")
        + f" of application “{d.get('application', '?')}”."
    ),
    # Reads through the secrets API (secretsapi/views.py): the application, its credential.
    "secretsapi.read": lambda a, o, d: (
        f"Application “{d.get('application', '?')}” read "
        + (f"{o}" if o else "secrets")
        + f" through the secrets API ({d.get('operation', 'GetSecretValue')}"
        + (f", {', '.join(map(str, d['stages']))}" if d.get("stages") else "")
        + f", credential {d.get('access_key_id', '?')})."
    ),
    "secretsapi.described": lambda a, o, d: (
        f"Application “{d.get('application', '?')}” described "
        + (f"{o}" if o else "a secret")
        + f" through the secrets API (credential {d.get('access_key_id', '?')})."
    ),
    "secretsapi.listed": lambda a, o, d: (
        f"Application “{d.get('application', '?')}” listed its secrets through the secrets API "
        f"(credential {d.get('access_key_id', '?')})."
    ),
    "secretsapi.refused": lambda a, o, d: (
        "The secrets API refused a request"
        + (f" of application “{d['application']}”" if d.get("application") else "")
        + (f" with credential {d['access_key_id']}" if d.get("access_key_id") else "")
        + f": {d.get('reason', 'refused')}"
        + (f" ({d['error']})." if d.get("error") else ".")
    ),
    "login.sso": lambda a, o, d: (
        f"{a} signed in with {d.get('provider') or 'single sign-on'}"
        + (" (second factor at the provider)." if d.get("second_factor") else ".")
    ),
    "login.sso_confirmed": lambda a, o, d: (
        f"{a} confirmed who they are at {d.get('provider') or 'the identity provider'}."
    ),
    "login.sso_refused": lambda a, o, d: (
        f"A sign-in with {d.get('provider') or 'single sign-on'} was refused"
        + (f": {d['reason'].rstrip('.')}." if d.get("reason") else ".")
    ),
    "person.created": lambda a, o, d: (
        f"{a} created the account {d.get('username', '?')}"
        + (" with a temporary password." if d.get("temporary_password") else ".")
    ),
    "person.deactivated": lambda a, o, d: f"{a} deactivated {d.get('username', '?')}.",
    "person.reactivated": lambda a, o, d: f"{a} reactivated {d.get('username', '?')}.",
    "person.password_reset": lambda a, o, d: (
        f"{a} reset the password of {d.get('username', '?')}"
        + (" to a temporary one." if d.get("temporary_password") else ".")
    ),
    "person.unlocked": lambda a, o, d: (
        f"{a} lifted the sign-in lockout of {d.get('username', '?')}."
    ),
}


def event_sentence(event: AuditEvent) -> str:
    """The event as one sentence, e.g. "editor revealed the password of PAM User “bob”."."""
    actor, obj, details = _actor(event), _object(event), event.details or {}
    sentence = SENTENCES.get(event.action)
    if sentence is None:
        named = event.object_repr or event.object_type
        return f"{actor}: {event.action}" + (f", {obj}." if named else ".")
    if getattr(sentence, "names_requester", False):
        return sentence(actor, obj, details, by=event.actor.username if event.actor else "")
    return sentence(actor, obj, details)


def _detail_value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(_detail_value(v) for v in value)
    if isinstance(value, dict):
        if "type" in value:
            return describe_schedule(value)
        return ", ".join(f"{k}: {_detail_value(v)}" for k, v in sorted(value.items()))
    return str(value)


def event_details(event: AuditEvent) -> list[tuple[str, str]]:
    """The event's details as (label, value) pairs in key order, for the details toggle."""
    return [
        (DETAIL_LABELS.get(key, key.replace("_", " ").capitalize()), _detail_value(value))
        for key, value in sorted((event.details or {}).items())
    ]
