"""Reading the audit trail: who may see which events, the filter form, and the CSV export.

Superusers see every event; members with `manage_users` see the events of their folders only.
Audit details never hold a secret (vault/audit.py), so the export may carry them as they are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.utils import timezone

from vault.access import folders_with_permission
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
