"""django-q2 in the admin console: lists to look at, nothing that runs a task or shows one's content.

django-q2 registers admin pages that add and edit Schedules naming any function, resubmit
tasks, and show tasks' arguments and results: together, a way for a superuser to run code on a
gateway host and read what it printed. They are replaced here by lists of names, functions,
clusters, times and outcomes, with no add, change, detail or history page (only the list URL
exists) and no filtering on any other column. The one change left is deleting Schedules (see
ScheduleAdmin). Which functions may run at all is decided in rotation/taskguard.py.
"""

from __future__ import annotations

import django_q.admin  # noqa: F401  (django-q2 registers its pages first; they are replaced below)
from django.contrib import admin
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.db.models.constants import LOOKUP_SEP
from django.urls import path
from django_q.conf import Conf
from django_q.models import Failure, OrmQ, Schedule, Success, Task

from vault.admin import ReadOnlyAdmin
from vault.audit import audit_record

# django-q2's own pages, replaced below.
QUEUE_LISTED = admin.site.is_registered(OrmQ)  # with the ORM broker (or in django-q2's tests)
for _model in (Schedule, Success, Failure, OrmQ):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


class ListOnlyAdmin(ReadOnlyAdmin):
    """A read-only list and nothing else: no object pages, no links to them, and filters only
    on the columns of `list_filter` (a filter on `result` would let one probe its content)."""

    list_display_links = None

    def get_urls(self):
        opts = self.model._meta
        view = self.admin_site.admin_view(self.changelist_view)
        return [path("", view, name=f"{opts.app_label}_{opts.model_name}_changelist")]

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        return lookup.split(LOOKUP_SEP)[0] in self.list_filter


@admin.register(Schedule)
class ScheduleAdmin(ListOnlyAdmin):
    """Schedules cannot be added or edited by hand: the gateways create their own ticks.

    Deleting stays, through the list's action: it runs nothing and shows nothing, and without it
    a schedule the gateways refuse (one stored before the allowlist, such as the one of issue 9)
    or the tick of a retired gateway could only be removed with database access. A deleted
    tick is created again when its gateway's workers start. Each deletion is audited."""

    list_display = [
        "id",
        "name",
        "func",
        "schedule_type",
        "repeats",
        "cluster",
        "next_run",
        "last_run_success",
    ]
    list_filter = ["schedule_type", "cluster"]
    search_fields = ["name", "func"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return admin.ModelAdmin.has_delete_permission(self, request, obj)

    def get_queryset(self, request):
        last = Task.objects.filter(id=OuterRef("task")).values("success")[:1]
        return super().get_queryset(request).annotate(last_success=Subquery(last))

    @admin.display(boolean=True, description="last run succeeded")
    def last_run_success(self, obj: Schedule) -> bool | None:
        return obj.last_success

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for schedule in queryset:
                audit_record(
                    "gateway.schedule_deleted",
                    actor=request.user,
                    obj=schedule,
                    request=request,
                    details={
                        "name": schedule.name,
                        "func": schedule.func,
                        "cluster": schedule.cluster,
                    },
                )
            queryset.delete()


class TaskListAdmin(ListOnlyAdmin):
    """Finished tasks: what ran where and when, and whether it succeeded. Never the arguments
    or the result."""

    list_display = ["name", "func", "group", "cluster", "started", "stopped", "success"]
    list_filter = ["group", "cluster"]
    search_fields = ["name", "func", "group"]


@admin.register(Success)
class SuccessAdmin(TaskListAdmin):
    pass


@admin.register(Failure)
class FailureAdmin(TaskListAdmin):
    pass


class QueuedTaskAdmin(ListOnlyAdmin):
    """Tasks waiting in the ORM broker: name, function, cluster and lock; never the arguments."""

    list_display = ["id", "key", "name", "func", "lock"]
    list_filter = ["key"]

    def get_queryset(self, request):
        return super().get_queryset(request).using(Conf.ORM)


if QUEUE_LISTED:
    admin.site.register(OrmQ, QueuedTaskAdmin)
