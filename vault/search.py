"""Finding records by title or login across every folder a person is a member of (the
navigation's search box). Only their folders are searched (vault/access.py
`visible_records`), so a folder they cannot see shows up in nothing: no row, no count.

One page of results is two queries (a COUNT and the page), whatever the number of folders
and records. Matching is a case-insensitive substring of the title or the login, as the
folder page's own search.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import Q

from vault.access import visible_records

RESULTS_PER_PAGE = 50
QUERY_MAX = 200


@dataclass
class SearchResults:
    q: str
    page: Page | None  # None before anything was asked


def search_records(user, params) -> SearchResults:
    """The page of `user`'s records matching `params["q"]` (request.GET), by title."""
    q = params.get("q", "").strip()[:QUERY_MAX]
    if not q:
        return SearchResults(q="", page=None)
    records = (
        visible_records(user)
        .filter(Q(title__icontains=q) | Q(login__icontains=q))
        .select_related("folder")
        .only("uid", "title", "login", "distinguished_name", "folder__uid", "folder__name")
        .order_by("title", "pk")
    )
    return SearchResults(
        q=q, page=Paginator(records, RESULTS_PER_PAGE).get_page(params.get("page"))
    )
