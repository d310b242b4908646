"""The home page's rotation overview, for the folders a person is a member of.

Seven queries whatever the number of folders, records or rotations: one per figure (the two
lists of rotations that need attention share one), each scoped by a subquery on the person's
memberships. None reads every record: the counts by
status and the chart read counts that database triggers keep as rotations change
(rotation/counts.py), the lists read indexes in the order they show, and stop after what they
show. Nothing here reads a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from rotation.chart import CHART_DAYS, Chart, build_chart
from rotation.counts import SLOT_SECONDS, slot_of, slot_start, with_pending
from rotation.models import (
    RecordRotationStatus,
    Rotation,
    RotationSettings,
    RotationSlotCount,
    RotationStatusCount,
)
from vault.models import FolderMember, Gateway, PamUser

DUE_DAYS = 7
DUE_SHOWN = 20
ATTENTION_SHOWN = 20


@dataclass
class Dashboard:
    has_folders: bool
    can_audit: bool
    counts: dict = field(default_factory=dict)
    due: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    may_be_live: list = field(default_factory=list)
    more_may_be_live: bool = False
    # Queued rotations whose gateway is offline, by gateway and newest first, and the same
    # grouped by gateway for the page.
    waiting: list = field(default_factory=list)
    more_waiting: bool = False
    waiting_gateways: list = field(default_factory=list)
    gateways: list = field(default_factory=list)
    gateways_online: int = 0
    gateways_offline: int = 0
    chart: Chart | None = None
    now: datetime | None = None


def _in_folders(folder_ids) -> Exists:
    """The row's record is in one of these folders (for models with a pam_user)."""
    return Exists(PamUser.objects.filter(pk=OuterRef("pam_user_id"), folder_id__in=folder_ids))


def status_counts(folder_ids) -> dict[str, int]:
    """Records by the status of their latest rotation: rotating, succeeded, failed, never.

    From the counts per folder and status (with, on PostgreSQL, the changes this transaction
    has made and not yet committed: see rotation/counts.py)."""
    rows = with_pending(
        RotationStatusCount.objects.filter(folder_id__in=folder_ids).values_list("status", "n"),
        lambda pending: pending.filter(folder_id__in=folder_ids, slot__isnull=True).values_list(
            "status", "n"
        ),
    )
    counts = {"succeeded": 0, "failed": 0, "rotating": 0, "never": 0}
    for status, n in rows:
        if status in Rotation.ACTIVE:
            counts["rotating"] += n
        elif status in (Rotation.SUCCEEDED, Rotation.FAILED):
            counts[status] += n
        else:
            counts["never"] += n
    counts["total"] = sum(counts.values())
    return counts


def due_rotations(folder_ids, now: datetime) -> list[RotationSettings]:
    """Scheduled rotations due within DUE_DAYS, soonest first (overdue ones run within a minute
    of a gateway's next tick, so they are listed too). Records the vault does not manage are
    never rotated, so never listed (a test on the row already joined for the title).

    Read in the order shown through rotation_due_order_idx, stopping after DUE_SHOWN; the
    folder test is an EXISTS per row, so that the database cannot start from every record of
    the folders instead."""
    return list(
        RotationSettings.objects.filter(
            _in_folders(folder_ids),
            enabled=True,
            next_run_at__isnull=False,
            next_run_at__lte=now + timedelta(days=DUE_DAYS),
            pam_user__managed=True,
        )
        .select_related("pam_user__folder")
        .defer("pam_user__password_enc")
        .order_by("next_run_at", "pk")[:DUE_SHOWN]
    )


def failed_records(folder_ids) -> list[PamUser]:
    """Records whose latest rotation failed, newest failure first, with its error.

    Read through the index on each record's latest status (status, finished_at desc, record),
    which gives them in the order shown."""
    rows = (
        RecordRotationStatus.objects.filter(status=Rotation.FAILED, folder_id__in=folder_ids)
        .select_related("pam_user__folder", "rotation")
        .defer("pam_user__password_enc", "rotation__pending_password_enc")
        .order_by("-finished_at", "pam_user_id")[:ATTENTION_SHOWN]
    )
    records = []
    for row in rows:
        record = row.pam_user
        record.last_error = row.rotation.error if row.rotation else ""
        record.last_finished_at = row.finished_at
        records.append(record)
    return records


def _possibly_live(folder_ids):
    """Failed rotations whose pending password may be what AWS holds: a person must resolve
    them on the record's page."""
    return Rotation.objects.filter(
        pam_user__folder_id__in=folder_ids,
        status=Rotation.FAILED,
        pending_may_be_live=True,
        resolved_at__isnull=True,
    ).exclude(pending_password_enc="")


def _waiting(folder_ids, now: datetime):
    """Queued rotations whose gateway has sent no heartbeat for GATEWAY_OFFLINE_SECONDS (as
    Gateway.is_online) or was never seen: they wait until it runs, or a person cancels them.

    Read per offline gateway (a few) through rotation_waiting_idx, by gateway and newest
    first, so that neither a queue being worked through by an online gateway nor a long one
    on an offline gateway is read beyond what is shown."""
    cutoff = now - timedelta(seconds=settings.GATEWAY_OFFLINE_SECONDS)
    offline = Gateway.objects.filter(Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=cutoff))
    return Rotation.objects.filter(
        _in_folders(folder_ids),
        status=Rotation.QUEUED,
        gateway_name__in=offline.values("name"),
    )


WAITING_ORDER = ("gateway_name", "-created_at", "-id")


def attention_rotations(folder_ids, now: datetime) -> tuple[list[Rotation], list[Rotation]]:
    """(possibly-live rotations newest first, rotations waiting on an offline gateway by
    gateway and newest first), each one more than shown (to tell whether there are more). Two
    queries, each read through its own index and stopping after what it shows: one query with
    `pk IN (first) OR pk IN (second)` made PostgreSQL scan every rotation (and JIT-compile the
    plan), 190 ms at 100,000 rotations. The waiting ones carry their gateway's last heartbeat
    (`gateway_last_seen`)."""
    last_seen = Gateway.objects.filter(name=OuterRef("gateway_name")).values("last_seen_at")

    def shown(rotations: QuerySet[Rotation]) -> list[Rotation]:
        rows = rotations.select_related("pam_user__folder").defer(
            "pending_password_enc", "pam_user__password_enc"
        )
        return list(rows[: ATTENTION_SHOWN + 1])

    live = shown(_possibly_live(folder_ids).order_by("-created_at", "-id"))
    waiting = shown(
        _waiting(folder_ids, now)
        .annotate(gateway_last_seen=Subquery(last_seen[:1]))
        .order_by(*WAITING_ORDER)
    )
    return live, waiting


@dataclass
class WaitingGateway:
    """An offline gateway and the rotations shown that wait for it."""

    name: str
    last_seen_at: datetime | None
    rotations: list = field(default_factory=list)


def by_gateway(waiting: list[Rotation]) -> list[WaitingGateway]:
    groups: dict[str, WaitingGateway] = {}
    for rotation in waiting:
        group = groups.setdefault(
            rotation.gateway_name,
            WaitingGateway(name=rotation.gateway_name, last_seen_at=rotation.gateway_last_seen),
        )
        group.rotations.append(rotation)
    return list(groups.values())


def serving_gateways(folder_ids) -> list[Gateway]:
    """Gateways that run rotations for configurations kept in these folders."""
    return list(
        Gateway.objects.filter(configurations__folder_id__in=folder_ids).distinct().order_by("name")
    )


def daily_rotations(folder_ids, now: datetime) -> dict[tuple[date, str], int]:
    """Finished rotations per local day and outcome over the last CHART_DAYS days.

    Sums the 15-minute slot counts from the first day's midnight to the slot holding `now`,
    grouped into days by the database (at most CHART_DAYS x 2 rows come back), less the
    rotations of that last slot finished after `now` (a gateway's clock ahead of the web's):
    the same rotations as finished_at between midnight and now, in one query. Local midnights
    fall on slot boundaries in every time zone whose offset is a multiple of 15 minutes (all in
    use today); otherwise the rotations themselves are read (_scan_days)."""
    today = timezone.localdate(now)
    first_day = today - timedelta(days=CHART_DAYS - 1)
    days = [first_day + timedelta(days=n) for n in range(CHART_DAYS)]
    midnights = [_midnight(day) for day in [*days, today + timedelta(days=1)]]
    if not all(_on_the_grid(m) for m in midnights):
        return _scan_days(folder_ids, midnights[0], now)
    first, last = slot_of(midnights[0]), slot_of(now)
    # Day n holds the slots from midnight n up to midnight n+1: a division when every day has
    # 24 hours, else (a change to or from summer time in the window) one comparison per day.
    bounds = [slot_of(midnight) for midnight in midnights]
    day_slots = 86400 // SLOT_SECONDS
    if all(b - a == day_slots for a, b in zip(bounds, bounds[1:], strict=False)):
        day_of_slot = ExpressionWrapper(
            (F("slot") - Value(first)) / Value(day_slots), output_field=IntegerField()
        )
    else:
        day_of_slot = Case(
            *[When(slot__lt=bound, then=Value(n)) for n, bound in enumerate(bounds[1:-1])],
            default=Value(CHART_DAYS - 1),
            output_field=IntegerField(),
        )

    def per_day(counts):
        return (
            counts.filter(folder_id__in=folder_ids, slot__gte=first, slot__lte=last)
            .annotate(day=day_of_slot, outcome=F("status"))
            .values("day", "outcome")
            .annotate(total=Sum("n"))
            .values_list("day", "outcome", "total")
        )

    # (Filtered by status below, not here: on finished_at alone the index is the only way.)
    ahead = (
        Rotation.objects.filter(
            _in_folders(folder_ids),
            finished_at__gt=now,
            finished_at__lt=slot_start(last + 1),
        )
        .order_by()
        .annotate(day=Value(CHART_DAYS - 1), outcome=F("status"))
        .values("day", "outcome")
        .annotate(total=-Count("pk"))
        .values_list("day", "outcome", "total")
    )
    totals: dict[tuple[date, str], int] = {}
    rows = with_pending(per_day(RotationSlotCount.objects), per_day, ahead)
    for n, status, total in rows:
        if status not in (Rotation.SUCCEEDED, Rotation.FAILED):
            continue
        key = (days[n], status)
        totals[key] = totals.get(key, 0) + int(total)
    return totals


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _on_the_grid(moment: datetime) -> bool:
    offset = moment.utcoffset()
    return not moment.timestamp() % SLOT_SECONDS and not (offset and offset.total_seconds() % 900)


def _scan_days(folder_ids, start: datetime, now: datetime) -> dict[tuple[date, str], int]:
    rows = (
        Rotation.objects.filter(
            pam_user__folder_id__in=folder_ids,
            status__in=(Rotation.SUCCEEDED, Rotation.FAILED),
            finished_at__gte=start,
            finished_at__lte=now,
        )
        .annotate(day=TruncDate("finished_at"))
        .order_by()
        .values("day", "status")
        .annotate(n=Count("pk"))
        .values_list("day", "status", "n")
    )
    return {(day, status): n for day, status, n in rows}


def rotation_dashboard(*, user, now: datetime | None = None) -> Dashboard:
    """Everything the home page shows about rotations in `user`'s folders."""
    now = now or timezone.now()
    managed = list(FolderMember.objects.filter(user=user).values_list("manage_users", flat=True))
    can_audit = bool(user.is_superuser or any(managed))
    if not managed:
        return Dashboard(has_folders=False, can_audit=can_audit, now=now)
    folder_ids = FolderMember.objects.filter(user=user).values("folder_id")
    gateways = serving_gateways(folder_ids)
    online = sum(1 for g in gateways if g.is_online)
    live, waiting = attention_rotations(folder_ids, now)
    return Dashboard(
        has_folders=True,
        can_audit=can_audit,
        counts=status_counts(folder_ids),
        due=due_rotations(folder_ids, now),
        failures=failed_records(folder_ids),
        may_be_live=live[:ATTENTION_SHOWN],
        more_may_be_live=len(live) > ATTENTION_SHOWN,
        waiting=waiting[:ATTENTION_SHOWN],
        more_waiting=len(waiting) > ATTENTION_SHOWN,
        waiting_gateways=by_gateway(waiting[:ATTENTION_SHOWN]),
        gateways=gateways,
        gateways_online=online,
        gateways_offline=len(gateways) - online,
        chart=build_chart(daily_rotations(folder_ids, now), timezone.localdate(now)),
        now=now,
    )
