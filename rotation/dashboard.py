"""The home page's rotation overview, for the folders a person is a member of.

Seven queries whatever the number of folders, records or rotations: one per figure, each
scoped by a subquery on the person's memberships. None reads every record: the counts by
status and the chart read counts that database triggers keep as rotations change
(rotation/counts.py), the lists read indexes in the order they show, and stop after what they
show. Nothing here reads a secret.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import (
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Sum,
    Value,
    When,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

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
CHART_DAYS = 30

# Chart geometry, in SVG user units; the SVG scales to its container's width.
CHART_WIDTH, CHART_HEIGHT = 720, 240
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 40, 10, 12, 40
LABEL_EVERY = 5  # days between date labels under the bars


@dataclass
class ChartBar:
    day: date
    succeeded: int
    failed: int
    x: float
    width: float
    ok_y: float
    ok_height: float
    fail_y: float
    fail_height: float
    label: str = ""
    label_x: float = 0.0

    @property
    def total(self) -> int:
        return self.succeeded + self.failed


@dataclass
class Chart:
    bars: list[ChartBar]
    ticks: list[dict]
    first_day: date
    last_day: date
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    plot_left: int = PLOT_LEFT
    plot_right: int = CHART_WIDTH - PLOT_RIGHT
    baseline: float = CHART_HEIGHT - PLOT_BOTTOM
    label_y: float = CHART_HEIGHT - PLOT_BOTTOM + 18
    summary: str = ""
    succeeded: int = 0
    failed: int = 0


@dataclass
class Dashboard:
    has_folders: bool
    can_audit: bool
    counts: dict = field(default_factory=dict)
    due: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    may_be_live: list = field(default_factory=list)
    more_may_be_live: bool = False
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
    of a gateway's next tick, so they are listed too).

    Read in the order shown through rotation_due_order_idx, stopping after DUE_SHOWN; the
    folder test is an EXISTS per row, so that the database cannot start from every record of
    the folders instead."""
    return list(
        RotationSettings.objects.filter(
            _in_folders(folder_ids),
            enabled=True,
            next_run_at__isnull=False,
            next_run_at__lte=now + timedelta(days=DUE_DAYS),
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


def possibly_live(folder_ids) -> list[Rotation]:
    """Failed rotations whose pending password may be what AWS holds: a person must resolve
    them on the record's page. One more than shown, to tell whether there are more."""
    return list(
        Rotation.objects.filter(
            pam_user__folder_id__in=folder_ids,
            status=Rotation.FAILED,
            pending_may_be_live=True,
            resolved_at__isnull=True,
        )
        .exclude(pending_password_enc="")
        .select_related("pam_user")
        .defer("pending_password_enc", "pam_user__password_enc")
        .order_by("-created_at", "-id")[: ATTENTION_SHOWN + 1]
    )


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


def _nice_step(largest: int, max_ticks: int = 4) -> int:
    """A 1-2-5 step that splits 0..largest into at most max_ticks intervals."""
    raw = max(largest / max_ticks, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        if multiple * magnitude >= raw:
            return int(multiple * magnitude)
    return int(10 * magnitude)


def build_chart(per_day: dict[tuple[date, str], int], last_day: date) -> Chart:
    """Stacked bars (succeeded below, failed above) for CHART_DAYS days ending on last_day."""
    days = [last_day - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    totals = [
        (d, per_day.get((d, Rotation.SUCCEEDED), 0), per_day.get((d, Rotation.FAILED), 0))
        for d in days
    ]
    largest = max((s + f for _, s, f in totals), default=0)
    step = _nice_step(largest)
    top = max(step, math.ceil(largest / step) * step)
    plot_width = CHART_WIDTH - PLOT_LEFT - PLOT_RIGHT
    plot_height = CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    baseline = CHART_HEIGHT - PLOT_BOTTOM
    slot = plot_width / CHART_DAYS
    bar_width = round(slot * 0.7, 2)

    def height(n: int) -> float:
        return round(n / top * plot_height, 2)

    bars = []
    for i, (day, succeeded, failed) in enumerate(totals):
        ok_height, fail_height = height(succeeded), height(failed)
        x = round(PLOT_LEFT + i * slot + (slot - bar_width) / 2, 2)
        labelled = (CHART_DAYS - 1 - i) % LABEL_EVERY == 0
        bars.append(
            ChartBar(
                day=day,
                succeeded=succeeded,
                failed=failed,
                x=x,
                width=bar_width,
                ok_y=round(baseline - ok_height, 2),
                ok_height=ok_height,
                fail_y=round(baseline - ok_height - fail_height, 2),
                fail_height=fail_height,
                label=day.strftime("%b %d") if labelled else "",
                label_x=round(x + bar_width / 2, 2),
            )
        )
    ticks = [
        {"value": value, "y": round(baseline - height(value), 2)}
        for value in range(0, top + 1, step)
    ]
    succeeded = sum(b.succeeded for b in bars)
    failed = sum(b.failed for b in bars)
    busiest = max(bars, key=lambda b: (b.total, b.day))
    summary = (
        f"From {days[0]:%Y-%m-%d} to {days[-1]:%Y-%m-%d}: {succeeded} rotations succeeded "
        f"and {failed} failed."
    )
    if busiest.total:
        summary += (
            f" The busiest day was {busiest.day:%Y-%m-%d} with {busiest.total} "
            f"({busiest.succeeded} succeeded, {busiest.failed} failed)."
        )
    return Chart(
        bars=bars,
        ticks=ticks,
        first_day=days[0],
        last_day=days[-1],
        summary=summary,
        succeeded=succeeded,
        failed=failed,
    )


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
    live = possibly_live(folder_ids)
    return Dashboard(
        has_folders=True,
        can_audit=can_audit,
        counts=status_counts(folder_ids),
        due=due_rotations(folder_ids, now),
        failures=failed_records(folder_ids),
        may_be_live=live[:ATTENTION_SHOWN],
        more_may_be_live=len(live) > ATTENTION_SHOWN,
        gateways=gateways,
        gateways_online=online,
        gateways_offline=len(gateways) - online,
        chart=build_chart(daily_rotations(folder_ids, now), timezone.localdate(now)),
        now=now,
    )
