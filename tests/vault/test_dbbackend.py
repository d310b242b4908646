"""vault/dbbackend: on PostgreSQL, a connection whose server stops answering (a black-holed
proxy: TCP stays healthy, so no keepalive or TCP timeout fires) fails within its read timeout,
is dropped, and the next call connects again."""

from __future__ import annotations

import time

import pytest
from django.db import OperationalError, connection

from tests.tcpproxy import TcpProxy
from vault.dbbackend.base import DatabaseWrapper

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def through_proxy():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    s = connection.settings_dict
    with TcpProxy(s["HOST"] or "127.0.0.1", int(s["PORT"] or 5432)) as proxy:
        options = {**s["OPTIONS"], "read_timeout": 1, "connect_timeout": 2}
        wrapper = DatabaseWrapper({**s, "PORT": proxy.port, "OPTIONS": options}, alias="proxied")
        yield proxy, wrapper
        wrapper.close()


def _select(wrapper: DatabaseWrapper, value: int) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT %s", [value])
        return cursor.fetchone()[0]


def test_an_unanswered_query_fails_within_the_read_timeout_and_the_connection_is_dropped(
    through_proxy,
):
    proxy, wrapper = through_proxy
    assert _select(wrapper, 1) == 1
    proxy.blackhole()
    started = time.monotonic()
    with pytest.raises(OperationalError, match="no answer from the database within 1 s"):
        _select(wrapper, 2)
    assert time.monotonic() - started < 5
    wrapper.close_if_unusable_or_obsolete()  # what django-q2 does before each task
    assert wrapper.connection is None
    proxy.restore()
    assert _select(wrapper, 3) == 3


def test_a_commit_that_gets_no_answer_fails_too(through_proxy):
    proxy, wrapper = through_proxy
    wrapper.set_autocommit(False)
    _select(wrapper, 1)
    proxy.blackhole()
    started = time.monotonic()
    with pytest.raises(OperationalError):
        wrapper.commit()
    assert time.monotonic() - started < 5


def test_without_a_read_timeout_the_backend_is_djangos(through_proxy):
    proxy, wrapper = through_proxy
    wrapper.settings_dict["OPTIONS"].pop("read_timeout")
    _select(wrapper, 1)
    assert type(wrapper.connection).__name__ == "Connection"
    assert "read_timeout" not in wrapper.get_connection_params()
