"""The home and folder pages run the same number of queries with 10 records as with 1,000."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import login, make_configuration
from vault.models import PamUser


def _add_users(folder, count: int) -> None:
    PamUser.objects.bulk_create(
        PamUser(
            folder=folder,
            title=f"User {n:05d}",
            login=f"user{n:05d}",
            distinguished_name=f"arn:aws:iam::123456789012:user/user{n:05d}",
        )
        for n in range(PamUser.objects.filter(folder=folder).count(), count)
    )


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.fixture
def client(personas):
    make_configuration(personas.folder, personas.gateway)
    client = login(personas.editor)
    client.get("/")  # warm-up: content types, session
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/folders/{uid}/",
        "/folders/{uid}/?q=user&page=2",
        # The folder page's filters and sorts (vault/folder_listing.py), and the search.
        "/folders/{uid}/?status=never&sort=status&dir=desc&page=2",
        "/folders/{uid}/?status=failed&sort=last_rotated",
        "/folders/{uid}/?status=may_be_live&sort=next_run&dir=desc",
        "/folders/{uid}/?status=due_week&q=user",
        "/search/?q=user&page=2",
    ],
)
def test_query_count_does_not_grow_with_records(personas, client, url):
    url = url.format(uid=personas.folder.uid)
    _add_users(personas.folder, 10)
    small = _queries(client, url)
    _add_users(personas.folder, 1000)
    large = _queries(client, url)
    assert small == large


def test_folder_page_query_budget(personas, client, django_assert_max_num_queries):
    _add_users(personas.folder, 1000)
    # session, user, folder, membership, count, page of records, configurations,
    # and the navigation's audit log link (may the person read it: one EXISTS); the session
    # is not written (vault.security.SessionIdleMiddleware, at most once a minute)
    with django_assert_max_num_queries(8):
        client.get(f"/folders/{personas.folder.uid}/")


def test_home_page_query_budget(personas, client, django_assert_max_num_queries):
    _add_users(personas.folder, 1000)
    # session, user, memberships with their counts, the navigation's audit log link (1), and
    # the rotation dashboard's 7 (rotation/dashboard.py); the session is not written
    with django_assert_max_num_queries(12):
        client.get("/")


# --- 10 and 10,000 records, each with rotation settings and a rotation ---------------------------


def _add_rotated_users(folder, config, count: int) -> None:
    """Records up to `count`, each with rotation settings due tomorrow and one rotation (a mix
    of succeeded, failed, running and queued, finished over the last 30 days)."""
    from datetime import timedelta

    from django.utils import timezone

    from rotation.models import Rotation, RotationSettings

    start = PamUser.objects.filter(folder=folder).count()
    records = PamUser.objects.bulk_create(
        PamUser(
            folder=folder,
            title=f"User {n:05d}",
            login=f"user{n:05d}",
            distinguished_name=f"arn:aws:iam::123456789012:user/user{n:05d}",
        )
        for n in range(start, count)
    )
    now = timezone.now()
    RotationSettings.objects.bulk_create(
        RotationSettings(pam_user=r, configuration=config, next_run_at=now + timedelta(days=1))
        for r in records
    )
    rotations = []
    for n, record in enumerate(records, start):
        status = ("succeeded", "failed", "succeeded", "running", "queued")[n % 5]
        when = now - timedelta(days=n % 30, minutes=n % 97)
        rotations.append(
            Rotation(
                pam_user=record,
                configuration=config,
                gateway_name="default",
                trigger="scheduled",
                status=status,
                error="AccessDenied" if status == "failed" else "",
                pending_may_be_live=n % 50 == 1,
                created_at=when,
                finished_at=when if status in ("succeeded", "failed") else None,
            )
        )
    Rotation.objects.bulk_create(rotations)


def test_home_folder_and_record_pages_run_as_many_queries_for_10_as_for_10000_records(personas):
    """The home page (with its rotation dashboard), a folder page and a record page each run
    a fixed number of queries, whatever the number of records and rotations."""
    config = make_configuration(personas.folder, personas.gateway)
    client = login(personas.editor)
    client.get("/")  # warm-up: content types, session
    _add_rotated_users(personas.folder, config, 10)
    record = PamUser.objects.filter(folder=personas.folder).order_by("pk").first()
    folder_url = f"/folders/{personas.folder.uid}/"
    urls = {
        "home": "/",
        "folder": folder_url,
        "folder, page 2": f"{folder_url}?page=2",
        "folder, failed by last rotated": f"{folder_url}?status=failed&sort=last_rotated&page=2",
        "folder, may be live": f"{folder_url}?status=may_be_live&sort=status&dir=desc",
        "folder, never rotated": f"{folder_url}?status=never&sort=next_run",
        "folder, due this week": f"{folder_url}?status=due_week&sort=next_run&dir=desc&page=3",
        "search": "/search/?q=user&page=2",
        "record": f"/records/{record.uid}/",
    }
    small = {page: _queries(client, url) for page, url in urls.items()}
    _add_rotated_users(personas.folder, config, 10_000)
    large = {page: _queries(client, url) for page, url in urls.items()}
    print(small, large)
    assert large == small
    # home: session, user, memberships with their counts, the dashboard's 7, the navigation's
    # audit link (1); folder: see test_folder_page_query_budget; record: the record page's.
    assert large["home"] <= 12 and large["folder"] <= 8 and large["record"] <= 10, large
    # A filtered folder page counts its rows (one COUNT) instead of reading the kept count.
    assert all(large[page] <= 8 for page in large if page.startswith("folder")), large
    assert large["search"] <= 6, large  # session, user, nav link, COUNT, the page (+1 spare)
    home = client.get("/")
    (membership,) = home.context["memberships"]
    assert membership.record_count == 10_000
    assert b'data-count="failed">2000<' in home.content
