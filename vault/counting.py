"""How many PAM Users a folder holds, for the pages that show it (home, folder).

By default a COUNT over the folder's records, which reads every one of them: 40 ms for a
folder of 1,000,000 on SQLite, on every view. An installed app that keeps exact counts may
offer them instead through ``RECORD_COUNT``: a function that takes an expression naming a
folder id (``OuterRef("folder")``) and returns an integer expression (a subquery) for that
folder's number of records. The rotation app does (rotation/counts.py: database triggers keep
its counts per folder and status, whose sum per folder is the number of records); the pages
then read a few rows whatever the folder's size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from vault.models import PamUser, SharedFolder

RECORD_COUNT: Callable[[Any], Any] | None = None


def record_count(folder_ref) -> Any:
    """An expression: the number of records of the folder `folder_ref` names."""
    if RECORD_COUNT is not None:
        return RECORD_COUNT(folder_ref)
    counts = (
        PamUser.objects.filter(folder=folder_ref)
        .order_by()
        .values("folder")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def records_in(folder: SharedFolder) -> int:
    """The number of records of `folder`, in one query."""
    if RECORD_COUNT is None:
        return PamUser.objects.filter(folder=folder).count()
    return (
        SharedFolder.objects.filter(pk=folder.pk)
        .annotate(n=RECORD_COUNT(OuterRef("pk")))
        .values_list("n", flat=True)
        .get()
    )
