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


# --- prepared statements (a gateway's claim read, vault/prepared.py) ---------------------------


@pytest.fixture
def preparing(monkeypatch):
    """The default connection with a gateway's option: statements asked for are prepared."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "prepared_statements", True)
    return connection


def _server_prepared(sql_start: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            [sql_start + "%"],
        )
        return cursor.fetchone()[0]


def _record_by_uid():
    from vault.models import PamUser
    from vault.prepared import PreparedQuery

    return PreparedQuery(lambda uid: PamUser.objects.filter(uid=uid), uid=str)


def test_a_prepared_read_is_planned_once_per_connection_and_finds_what_the_orm_finds(
    preparing, personas
):
    from tests.conftest import make_pam_user

    record = make_pam_user(personas.folder, "Prepared")
    read = _record_by_uid()
    for _ in range(3):
        assert read.run(uid=record.uid) == [record]
    assert read.run(uid="no-such-uid-xxxxxxxxxx") == []
    assert _server_prepared('SELECT "vault_pamuser"."id"') == 1
    found = read.run(uid=record.uid)[0]
    assert found.created_at == record.created_at and found.created_at.utcoffset() is not None


def test_a_prepared_read_still_runs_after_a_rollback(preparing, personas):
    from django.db import transaction

    from tests.conftest import make_pam_user

    record = make_pam_user(personas.folder, "Prepared")
    read = _record_by_uid()
    assert read.run(uid=record.uid) == [record]
    try:
        with transaction.atomic():  # a savepoint inside the test's transaction
            assert read.run(uid=record.uid) == [record]
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert read.run(uid=record.uid) == [record]


def test_execute_wrappers_see_a_prepared_read(preparing, personas):
    """The AWS lane refuses the database through execute wrappers (rotation/lane.py)."""
    seen = []

    def spy(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        _record_by_uid().run(uid="no-such-uid-xxxxxxxxxx")
    assert len(seen) == 1 and seen[0].startswith('SELECT "vault_pamuser"."id"')


def test_without_the_option_nothing_is_prepared_on_the_server(personas, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    monkeypatch.delitem(connection.settings_dict["OPTIONS"], "prepared_statements", raising=False)
    _record_by_uid().run(uid="no-such-uid-xxxxxxxxxx")
    assert _server_prepared('SELECT "vault_pamuser"."id"') == 0
