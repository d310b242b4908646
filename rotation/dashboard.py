"""The home page's rotation overview, for the folders a person is a member of.

Seven queries whatever the number of folders, records or rotations: one per figure, each
scoped by a subquery on the person's memberships. Nothing here reads a secret.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from rotation.models import Rotation, RotationSettings
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


def _latest_rotation() -> QuerySet[Rotation]:
    # The record's newest rotation, served by the (pam_user, -created_at) index.
    return Rotation.objects.filter(pam_user=OuterRef("pk")).order_by("-created_at", "-id")


def _records_with_last_status(folder_ids) -> QuerySet[PamUser]:
    return PamUser.objects.filter(folder_id__in=folder_ids).annotate(
        last_status=Subquery(_latest_rotation().values("status")[:1])
    )


def status_counts(folder_ids) -> dict[str, int]:
    """Records by the status of their latest rotation: rotating, succeeded, failed, never."""
    rows = (
        _records_with_last_status(folder_ids)
        .order_by()
        .values("last_status")
        .annotate(n=Count("pk"))
        .values_list("last_status", "n")
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
    of a gateway's next tick, so they are listed too)."""
    return list(
        RotationSettings.objects.filter(
            enabled=True,
            next_run_at__isnull=False,
            next_run_at__lte=now + timedelta(days=DUE_DAYS),
            pam_user__folder_id__in=folder_ids,
        )
        .select_related("pam_user__folder")
        .defer("pam_user__password_enc")
        .order_by("next_run_at", "pk")[:DUE_SHOWN]
    )


def failed_records(folder_ids) -> list[PamUser]:
    """Records whose latest rotation failed, newest failure first, with its error."""
    latest = _latest_rotation()
    return list(
        _records_with_last_status(folder_ids)
        .filter(last_status=Rotation.FAILED)
        .annotate(
            last_error=Subquery(latest.values("error")[:1]),
            last_finished_at=Subquery(latest.values("finished_at")[:1]),
        )
        .select_related("folder")
        .defer("password_enc")
        .order_by("-last_finished_at", "pk")[:ATTENTION_SHOWN]
    )


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
    """Finished rotations per local day and outcome over the last CHART_DAYS days."""
    first_day = timezone.localdate(now) - timedelta(days=CHART_DAYS - 1)
    start = timezone.make_aware(datetime.combine(first_day, time.min))
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
