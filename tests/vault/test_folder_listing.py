"""The folder page's record list: rotation status, last rotated and next run columns; sorts
and filters kept in the URL; pagination that keeps them (issue 12, "Folder page")."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from rotation.models import Rotation, RotationSettings
from tests.conftest import login, make_configuration, make_pam_user


def _url(personas, query: str = "") -> str:
    return f"/folders/{personas.folder.uid}/{query}"


def _titles(html: str) -> list[str]:
    return re.findall(r'<td><a href="/records/[^"]+/">([^<]+)</a></td>', html)


def _rotation(record, config, status, *, days_ago=0, may_be_live=False):
    when = timezone.now() - timedelta(days=days_ago)
    rotation = Rotation(
        pam_user=record,
        configuration=config,
        gateway_name="default",
        trigger="on_demand",
        status=status,
        created_at=when,
        finished_at=when if status in ("succeeded", "failed") else None,
        pending_may_be_live=may_be_live,
    )
    if may_be_live:
        rotation.save()
        rotation.set_secret("pending_password", "Pending-Passw0rd-1!")
    rotation.save()
    return rotation


@pytest.fixture
def folder(personas):
    """Five records, one per case:
    ok       rotated 2 days ago, next run in 3 days       (succeeded; due this week)
    broken   last rotation failed, next run in 30 days    (failed)
    live     failed with a password that may be live      (failed; may be live)
    fresh    rotation settings, never rotated, no next run (never rotated)
    plain    no rotation settings at all                  (never rotated)"""
    config = make_configuration(personas.folder, personas.gateway)
    now = timezone.now()
    records = {
        name: make_pam_user(personas.folder, name, title=name)
        for name in ("ok", "broken", "live", "fresh", "plain")
    }
    for name, next_run, last in (
        ("ok", now + timedelta(days=3), now - timedelta(days=2)),
        ("broken", now + timedelta(days=30), now - timedelta(days=40)),
        ("live", None, None),
        ("fresh", None, None),
    ):
        RotationSettings.objects.create(
            pam_user=records[name],
            configuration=config,
            next_run_at=next_run,
            last_rotated_at=last,
        )
    _rotation(records["ok"], config, "succeeded", days_ago=2)
    _rotation(records["broken"], config, "failed", days_ago=1)
    _rotation(records["live"], config, "failed", days_ago=1, may_be_live=True)
    return records


def test_columns_show_status_last_rotated_and_next_run(personas, folder):
    html = login(personas.viewer).get(_url(personas)).content.decode()
    for header in ("Rotation status", "Last rotated", "Next run"):
        assert header in html
    rows = dict(re.findall(r'/records/[^"]+/">(\w+)</a></td>(.*?)</tr>', html, re.S))
    assert ">Succeeded<" in rows["ok"]
    assert ">Failed<" in rows["broken"]
    assert "password may be live" in rows["live"]
    assert "Never rotated" in rows["fresh"] and "Never rotated" in rows["plain"]
    assert rows["ok"].count("<time ") == 2  # last rotated and next run
    assert "<time " not in rows["fresh"]


@pytest.mark.parametrize(
    "status, expected",
    [
        ("failed", ["broken", "live"]),
        ("may_be_live", ["live"]),
        ("never", ["fresh", "plain"]),
        ("due_week", ["ok"]),
        ("", ["broken", "fresh", "live", "ok", "plain"]),
        ("no-such-filter", ["broken", "fresh", "live", "ok", "plain"]),
    ],
)
def test_each_filter(personas, folder, status, expected):
    response = login(personas.viewer).get(_url(personas, f"?status={status}"))
    assert response.status_code == 200
    assert _titles(response.content.decode()) == expected


def test_due_this_week_leaves_out_disabled_and_unmanaged(personas, folder):
    RotationSettings.objects.filter(pam_user=folder["ok"]).update(enabled=False)
    html = login(personas.viewer).get(_url(personas, "?status=due_week")).content.decode()
    assert _titles(html) == []
    RotationSettings.objects.filter(pam_user=folder["ok"]).update(enabled=True)
    type(folder["ok"]).objects.filter(pk=folder["ok"].pk).update(managed=False)
    html = login(personas.viewer).get(_url(personas, "?status=due_week")).content.decode()
    assert _titles(html) == []


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", ["broken", "fresh", "live", "ok", "plain"]),
        ("?sort=title&dir=desc", ["plain", "ok", "live", "fresh", "broken"]),
        # Status by its stored value ("" never, failed, may_be_live, succeeded), then title.
        ("?sort=status", ["fresh", "plain", "broken", "live", "ok"]),
        ("?sort=status&dir=desc", ["ok", "live", "broken", "plain", "fresh"]),
        # Empty values last either way.
        ("?sort=last_rotated", ["broken", "ok", "fresh", "live", "plain"]),
        ("?sort=last_rotated&dir=desc", ["ok", "broken", "plain", "live", "fresh"]),
        ("?sort=next_run", ["ok", "broken", "fresh", "live", "plain"]),
        ("?sort=next_run&dir=desc", ["broken", "ok", "plain", "live", "fresh"]),
        ("?sort=bogus&dir=sideways", ["broken", "fresh", "live", "ok", "plain"]),
    ],
)
def test_each_sort(personas, folder, query, expected):
    response = login(personas.viewer).get(_url(personas, query))
    assert response.status_code == 200
    assert _titles(response.content.decode()) == expected


def test_sort_links_flip_direction_and_keep_filter_and_search(personas, folder):
    html = (
        login(personas.viewer)
        .get(_url(personas, "?status=failed&q=o&sort=next_run"))
        .content.decode()
    )
    assert 'aria-sort="ascending"' in html
    # The current sort's link flips it; the others start ascending; all keep filter and search.
    assert 'href="?q=o&amp;sort=next_run&amp;dir=desc&amp;status=failed"' in html
    assert 'href="?q=o&amp;sort=last_rotated&amp;status=failed"' in html
    # Filters keep the sort and the search, and drop the page.
    assert 'href="?q=o&amp;sort=next_run&amp;status=never"' in html


def test_filter_and_search_combine(personas, folder):
    html = login(personas.viewer).get(_url(personas, "?status=failed&q=bro")).content.decode()
    assert _titles(html) == ["broken"]
    assert "1 · Failed matching" in html


def test_pagination_keeps_sort_and_filter(personas, folder):
    from vault.models import PamUser

    PamUser.objects.bulk_create(
        PamUser(
            folder=personas.folder,
            title=f"x{n:03d}",
            login=f"x{n:03d}",
            distinguished_name=f"arn:aws:iam::123456789012:user/x{n:03d}",
        )
        for n in range(120)
    )
    client = login(personas.viewer)
    first = client.get(_url(personas, "?status=never&sort=title&dir=desc")).content.decode()
    assert "Page 1 of 3" in first
    assert 'href="?dir=desc&amp;status=never&amp;page=2"' in first
    second = client.get(_url(personas, "?dir=desc&status=never&page=2")).content.decode()
    titles = _titles(second)
    assert len(titles) == 50 and titles[0] == "x069" and titles[-1] == "x020"
    third = client.get(_url(personas, "?dir=desc&status=never&page=3")).content.decode()
    # 120 x-records and the two never-rotated ones, titles descending: "plain", "fresh" last.
    assert _titles(third) == [f"x{n:03d}" for n in range(19, -1, -1)] + ["plain", "fresh"]
    assert 'href="?dir=desc&amp;status=never&amp;page=2" rel="prev"' in third


def test_outsider_gets_404_with_any_filter(personas, folder):
    assert login(personas.outsider).get(_url(personas, "?status=failed")).status_code == 404


@pytest.mark.parametrize("sort", ["title", "status", "last_rotated", "next_run"])
@pytest.mark.parametrize("direction", ["", "desc"])
@pytest.mark.parametrize("status", ["", "never", "due_week"])
def test_every_sort_and_filter_pages_through_every_row_once(
    personas, folder, sort, direction, status
):
    """Deep pages of every sort, with and without a filter: each row once, in order (a
    sort by a rotation column once failed on page 2 with a 500)."""
    from vault.models import PamUser

    config = RotationSettings.objects.first().configuration
    now = timezone.now()
    extra = PamUser.objects.bulk_create(
        PamUser(
            folder=personas.folder,
            title=f"x{n:03d}",
            login=f"x{n:03d}",
            distinguished_name=f"arn:aws:iam::123456789012:user/x{n:03d}",
        )
        for n in range(110)
    )
    RotationSettings.objects.bulk_create(
        RotationSettings(
            pam_user=r, configuration=config, next_run_at=now + timedelta(hours=n % 300)
        )
        for n, r in enumerate(extra)
        if n % 3
    )
    client = login(personas.viewer)
    seen = []
    for number in (1, 2, 3):
        query = f"?sort={sort}&dir={direction}&status={status}&page={number}"
        response = client.get(_url(personas, query))
        assert response.status_code == 200
        seen += _titles(response.content.decode())
        if 'rel="next"' not in response.content.decode():
            break
    expected = {
        "": 115,
        "never": 110 + 2,  # the x-records and "fresh", "plain"
        "due_week": 1 + sum(1 for n in range(110) if n % 3 and n % 300 <= 7 * 24),
    }[status]
    assert len(seen) == len(set(seen)) == expected
