"""The rotation columns, sorts and filters of the folder page's record list (registered into
vault/folder_listing.py by rotation/apps.py): each record's rotation status, when it was last
rotated and when it runs next; sorts on each; filters "failed", "may be live", "never
rotated" and "due this week".

The status comes from the table the database triggers keep with each record's latest
rotation (rotation/counts.py), so no filter or column reads a record's rotation history.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import (
    Case,
    CharField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from rotation.dashboard import DUE_DAYS
from rotation.models import RecordRotationStatus, Rotation, RotationSettings
from vault.folder_listing import Column, Extension, Filter, Sort

MAY_BE_LIVE = "may_be_live"

STATUS_LABELS = {
    Rotation.SUCCEEDED: "Succeeded",
    Rotation.FAILED: "Failed",
    Rotation.QUEUED: "Queued",
    Rotation.RUNNING: "Running",
    MAY_BE_LIVE: "Failed, password may be live",
    "": "Never rotated",
}


def _latest_status() -> Subquery:
    return Subquery(
        RecordRotationStatus.objects.filter(pam_user_id=OuterRef("pk")).values("status")[:1],
        output_field=CharField(),
    )


def _possibly_live() -> Exists:
    """A failed rotation holds a password that may be what AWS has: a person must choose."""
    return Exists(
        Rotation.objects.filter(
            pam_user_id=OuterRef("pk"),
            status=Rotation.FAILED,
            pending_may_be_live=True,
            resolved_at__isnull=True,
        ).exclude(pending_password_enc="")
    )


def _next_run():
    # Only a managed record with rotation enabled runs (as the scheduler and the dashboard).
    return Case(
        When(
            Q(rotation_settings__enabled=True, managed=True),
            then=F("rotation_settings__next_run_at"),
        ),
        default=Value(None),
    )


def _status():
    return Case(
        When(_possibly_live(), then=Value(MAY_BE_LIVE)),
        default=_latest_status(),
        output_field=CharField(),
    )


def _last_rotated():
    return F("rotation_settings__last_rotated_at")


def annotate(records: QuerySet) -> QuerySet:
    return records.annotate(
        rotation_status=_status(), last_rotated=_last_rotated(), next_run=_next_run()
    )


# Filters as `pk IN (...)` over the few rows that match, read through the rotation app's
# indexes (record_status_idx, the possibly-live partial index, rotation_due_order_idx), not as
# a test on each of the folder's records: failures and due rotations are few.


def _failed() -> Q:
    return Q(
        pk__in=RecordRotationStatus.objects.filter(status=Rotation.FAILED).values("pam_user_id")
    )


def _never_rotated() -> Q:
    rotated = RecordRotationStatus.objects.filter(pam_user_id=OuterRef("pk")).exclude(status="")
    return ~Q(Exists(rotated))


def _may_be_live() -> Q:
    live = Rotation.objects.filter(
        status=Rotation.FAILED, pending_may_be_live=True, resolved_at__isnull=True
    ).exclude(pending_password_enc="")
    return Q(pk__in=live.values("pam_user_id"))


def _due_this_week() -> Q:
    # As the home page's "Due in the next 7 days": overdue ones run at the next tick, so count.
    due = RotationSettings.objects.filter(
        enabled=True,
        next_run_at__isnull=False,
        next_run_at__lte=timezone.now() + timedelta(days=DUE_DAYS),
    )
    return Q(managed=True, pk__in=due.values("pam_user_id"))


def _by(attr: str) -> tuple[tuple, tuple]:
    # The column's attribute (annotate above): the list annotates its rows for these sorts.
    return (
        (F(attr).asc(nulls_last=True), "title", "pk"),
        (F(attr).desc(nulls_last=True), "-title", "-pk"),
    )


EXTENSION = Extension(
    columns=(
        Column("status", "Rotation status", "rotation_status", labels=STATUS_LABELS),
        Column("last_rotated", "Last rotated", "last_rotated", kind="datetime", empty="Never"),
        Column("next_run", "Next run", "next_run", kind="datetime"),
    ),
    sorts=(
        Sort("status", "Rotation status", *_by("rotation_status")),
        Sort("last_rotated", "Last rotated", *_by("last_rotated")),
        Sort("next_run", "Next run", *_by("next_run")),
    ),
    filters=(
        Filter("failed", "Failed", _failed),
        Filter("may_be_live", "May be live", _may_be_live),
        Filter("never", "Never rotated", _never_rotated),
        Filter("due_week", "Due this week", _due_this_week),
    ),
    annotate=annotate,
)


def install() -> None:
    from vault import folder_listing

    folder_listing.EXTENSIONS["rotation"] = EXTENSION
