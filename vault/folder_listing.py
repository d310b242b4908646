"""The folder page's list of PAM Users: its columns, sorts and filters, read from the query
string (so a sorted, filtered page is a link), and one query for the page's rows.

The vault itself offers the title sort and the title/login search. An installed app adds
columns, sorts and filters through ``EXTENSIONS`` (the rotation app adds rotation status, last
rotated, next run and the "failed", "may be live", "never rotated", "due this week" filters:
rotation/folder_listing.py), as vault/counting.py lets it keep counts: the vault never
imports the apps above it. Every extension works on the same queryset, so a page costs the
same number of queries whatever the folder's size: a COUNT and the page's rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.http import QueryDict

from vault import counting
from vault.models import PamUser, SharedFolder

RECORDS_PER_PAGE = 50


@dataclass(frozen=True)
class Column:
    """A column of the list: `attr` is the row's attribute (an annotation the extension adds),
    `kind` how the page shows it ("datetime" or "text"), `labels` words for stored values."""

    key: str
    label: str
    attr: str
    kind: str = "text"
    labels: dict[str, str] = field(default_factory=dict)
    empty: str = "—"


@dataclass(frozen=True)
class Sort:
    """The orderings for ascending and descending; each ends with a unique term (pk) so
    that pages never overlap. Empty values (never rotated, no next run) go last either way."""

    key: str
    label: str
    ascending: tuple[Any, ...]
    descending: tuple[Any, ...]


@dataclass(frozen=True)
class Filter:
    """`condition()` returns the Q that keeps the filter's rows (called per request, so a
    filter may depend on the time)."""

    key: str
    label: str
    condition: Callable[[], Q]


@dataclass(frozen=True)
class Extension:
    """What an app adds to the list: `annotate(queryset)` adds the columns' attributes."""

    columns: tuple[Column, ...] = ()
    sorts: tuple[Sort, ...] = ()
    filters: tuple[Filter, ...] = ()
    annotate: Callable[[QuerySet], QuerySet] | None = None


EXTENSIONS: dict[str, Extension] = {}

TITLE_SORT = Sort("title", "Title", ("title", "pk"), ("-title", "-pk"))


def columns() -> list[Column]:
    return [c for ext in EXTENSIONS.values() for c in ext.columns]


def sorts() -> dict[str, Sort]:
    return {TITLE_SORT.key: TITLE_SORT, **{s.key: s for e in EXTENSIONS.values() for s in e.sorts}}


def filters() -> dict[str, Filter]:
    return {f.key: f for ext in EXTENSIONS.values() for f in ext.filters}


@dataclass
class Listing:
    """What the page shows: the page of rows, each with its extension cells, and the choices
    the query string made (unknown ones fall back to the defaults, never an error)."""

    page: Page
    rows: list[tuple[PamUser, list[tuple[Column, Any, str]]]]
    q: str
    sort: str
    descending: bool
    status: str
    columns: list[Column]
    sorts: dict[str, Sort]
    filters: dict[str, Filter]

    def query(self, **changes) -> str:
        """The query string for this listing with `changes` (None drops a key); page 1 unless
        the page is what changes."""
        values: dict[str, Any] = {
            "q": self.q,
            "sort": self.sort if self.sort != TITLE_SORT.key else "",
            "dir": "desc" if self.descending else "",
            "status": self.status,
        }
        values.update(changes)
        params = QueryDict(mutable=True)
        for key, value in values.items():
            if value:
                params[key] = str(value)
        return params.urlencode()

    @property
    def previous_query(self) -> str:
        return self.query(page=self.page.previous_page_number()) if self.page.has_previous() else ""

    @property
    def next_query(self) -> str:
        return self.query(page=self.page.next_page_number()) if self.page.has_next() else ""

    @property
    def title_link(self) -> Link:
        return sort_links(self)[TITLE_SORT.key]

    @property
    def headers(self) -> list[tuple[Column, Link | None]]:
        """The extension columns with their sort links (None: not sortable)."""
        links = sort_links(self)
        return [(c, links.get(c.key)) for c in self.columns]

    @property
    def status_label(self) -> str:
        return self.filters[self.status].label if self.status else ""

    @property
    def filter_links(self) -> list[Link]:
        return filter_links(self)


FIELDS = ("uid", "title", "login", "distinguished_name", "folder_id", "managed")


def _annotated(records: QuerySet) -> QuerySet:
    for ext in EXTENSIONS.values():
        if ext.annotate is not None:
            records = ext.annotate(records)
    return records


def _cell(column: Column, value: Any) -> tuple[Column, Any, str]:
    """(column, value, words): words for a text column's stored value, else the value as is."""
    if column.kind == "datetime":
        return column, value, ""
    return column, value, column.labels.get(value or "", str(value) if value else "")


def folder_listing(folder: SharedFolder, params) -> Listing:
    """The page of `folder`'s records that `params` (request.GET) asks for."""
    q = params.get("q", "").strip()[:200]
    all_sorts, all_filters = sorts(), filters()
    sort = params.get("sort", "")
    sort = sort if sort in all_sorts else TITLE_SORT.key
    descending = params.get("dir") == "desc"
    status = params.get("status", "")
    status = status if status in all_filters else ""

    records = PamUser.objects.filter(folder=folder).only(*FIELDS)
    if q:
        records = records.filter(Q(title__icontains=q) | Q(login__icontains=q))
    if status:
        records = records.filter(all_filters[status].condition())
    order = all_sorts[sort].descending if descending else all_sorts[sort].ascending
    by_title = sort == TITLE_SORT.key
    if not by_title:
        # An extension's sort orders by its columns' attributes: every row is annotated.
        records = _annotated(records)
    paginator = Paginator(records.order_by(*order), RECORDS_PER_PAGE)
    if not q and not status:
        paginator.count = counting.records_in(folder)  # kept counts, when an app keeps them
    page = paginator.get_page(params.get("page"))
    if by_title:
        # The extensions' columns for the page's rows only, in the same query: the page is
        # chosen (filtered, ordered through the (folder, title) index, offset) without them,
        # so a deep page computes no column of the rows it skips.
        page_rows = PamUser.objects.filter(pk__in=page.object_list.values("pk"))
        page.object_list = _annotated(page_rows.only(*FIELDS)).order_by(*order)
    page.object_list = list(page.object_list)
    shown = columns()
    rows = [(r, [_cell(c, getattr(r, c.attr, None)) for c in shown]) for r in page.object_list]
    return Listing(
        page=page,
        rows=rows,
        q=q,
        sort=sort,
        descending=descending,
        status=status,
        columns=shown,
        sorts=all_sorts,
        filters=all_filters,
    )


@dataclass(frozen=True)
class Link:
    key: str
    label: str
    query: str
    active: bool
    # For a sort link: "ascending"/"descending" when it is the current sort (aria-sort).
    direction: str = ""


def sort_links(listing: Listing) -> dict[str, Link]:
    """Each sort's link: the current one flips its direction; another starts ascending."""
    links = {}
    for key, sort in listing.sorts.items():
        active = key == listing.sort
        flip = active and not listing.descending
        direction = ("descending" if listing.descending else "ascending") if active else ""
        query = listing.query(sort=key, dir="desc" if flip else "", page=None)
        links[key] = Link(key, sort.label, query, active, direction)
    return links


def filter_links(listing: Listing) -> list[Link]:
    everything = Link("", "All", listing.query(status="", page=None), not listing.status)
    return [everything] + [
        Link(key, f.label, listing.query(status=key, page=None), key == listing.status)
        for key, f in listing.filters.items()
    ]
