"""vault/rowvalues.py: one UPDATE that changes each row by its own values."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from vault.models import Gateway
from vault.rowvalues import Sql, update_from_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def gateways():
    return [Gateway.objects.create(name=f"gw-{n}", version="1") for n in range(4)]


def versions() -> dict[str, str]:
    return dict(Gateway.objects.values_list("name", "version"))


def test_each_listed_row_gets_its_own_values_and_the_others_none(gateways):
    a, b, c, _d = gateways
    changed = update_from_rows(
        Gateway,
        fields=["id", "version"],
        rows=[(a.pk, "2.0"), (c.pk, "3.0")],
        set_sql={"version": 'v."version"'},
    )
    assert changed == 2
    assert versions() == {"gw-0": "2.0", "gw-1": "1", "gw-2": "3.0", "gw-3": "1"}
    assert Gateway.objects.get(pk=b.pk).last_seen_at is None


def test_a_value_shared_by_every_row_is_saved_as_the_orm_saves_it(gateways):
    seen = timezone.now() - timedelta(minutes=3)
    update_from_rows(
        Gateway,
        fields=["id"],
        rows=[(g.pk,) for g in gateways[:2]],
        set_values={"last_seen_at": seen, "allow_instance_role": True},
    )
    # Read back through the ORM, and found by it: the same stored form as an ORM save.
    assert Gateway.objects.filter(last_seen_at=seen, allow_instance_role=True).count() == 2


def test_a_row_value_can_be_null(gateways):
    a, b = gateways[:2]
    Gateway.objects.update(last_seen_at=timezone.now())
    update_from_rows(
        Gateway,
        fields=["id", "last_seen_at"],
        rows=[(a.pk, None), (b.pk, timezone.now())],
        set_sql={"last_seen_at": 'v."last_seen_at"'},
    )
    assert Gateway.objects.get(pk=a.pk).last_seen_at is None
    assert Gateway.objects.get(pk=b.pk).last_seen_at is not None


def test_returning_gives_exactly_the_rows_whose_own_condition_held(gateways):
    a, b, c, _d = gateways
    # b was read with another version than it has: its row's condition fails.
    changed = update_from_rows(
        Gateway,
        fields=["id", "version"],
        rows=[(a.pk, "1"), (b.pk, "0.9"), (c.pk, "1")],
        set_values={"allow_instance_role": True},
        set_sql={"version": "{t}.\"version\" || '+'"},
        where=Sql(
            '{t}."version" = v."version" AND {t}."allow_instance_role" = %s',
            (("allow_instance_role", False),),
        ),
        returning=True,
    )
    assert sorted(changed) == sorted([a.pk, c.pk])
    names = dict(Gateway.objects.values_list("pk", "version"))
    assert names[a.pk] == names[c.pk] == "1+"
    assert names[b.pk] == "1"


def test_rows_beyond_the_parameter_limit_go_in_several_statements(gateways, monkeypatch):
    if not connection.features.max_query_params:
        pytest.skip("this database has no parameter limit (one array per column)")
    monkeypatch.setattr(connection.features, "max_query_params", 5)
    with CaptureQueriesContext(connection) as queries:
        changed = update_from_rows(
            Gateway,
            fields=["id", "version"],
            rows=[(g.pk, f"v{n}") for n, g in enumerate(gateways)],
            set_sql={"version": 'v."version"'},
            returning=True,
        )
    assert sorted(changed) == sorted(g.pk for g in gateways)
    assert len(queries) == 2  # two rows (four parameters) per statement
    assert versions() == {"gw-0": "v0", "gw-1": "v1", "gw-2": "v2", "gw-3": "v3"}


def test_no_rows_is_no_statement(gateways):
    with CaptureQueriesContext(connection) as queries:
        assert update_from_rows(Gateway, fields=["id"], rows=[], set_values={"name": "x"}) == 0
        assert update_from_rows(Gateway, fields=["id"], rows=[], returning=True) == []
    assert len(queries) == 0


def test_the_first_field_must_be_the_primary_key(gateways):
    with pytest.raises(ValueError, match="primary key"):
        update_from_rows(Gateway, fields=["name"], rows=[("gw-0",)], set_values={"version": "2"})
