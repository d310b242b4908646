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


@pytest.mark.parametrize("url", ["/", "/folders/{uid}/", "/folders/{uid}/?q=user&page=2"])
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
    # and the session save (savepoint, update, release)
    with django_assert_max_num_queries(10):
        client.get(f"/folders/{personas.folder.uid}/")


def test_home_page_query_budget(personas, client, django_assert_max_num_queries):
    _add_users(personas.folder, 1000)
    # session, user, memberships with their counts, the session save (3), and the rotation
    # dashboard's 7 (rotation/dashboard.py)
    with django_assert_max_num_queries(13):
        client.get("/")
