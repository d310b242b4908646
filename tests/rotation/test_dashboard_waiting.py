"""Rotations waiting on an offline gateway are listed under "Needs attention" on the home page,
with what to do: start the gateway (the exact command) or cancel them (issue 12, defect 1).
Still eight queries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from rotation import dashboard, engine
from rotation.models import Rotation
from tests.conftest import login, make_configuration, make_pam_user
from tests.rotation.conftest import make_settings
from tests.rotation.test_dashboard import add_rotation
from vault.models import Gateway, SharedFolder

pytestmark = pytest.mark.django_db


@pytest.fixture
def gw2(personas):
    return Gateway.objects.create(name="gw2", application=personas.application)


@pytest.fixture
def online(personas):
    Gateway.objects.filter(pk=personas.gateway.pk).update(last_seen_at=timezone.now())
    return make_configuration(personas.folder, personas.gateway, title="Working")


def _waiting(personas, title: str, config, *, ago=timedelta(minutes=5)) -> Rotation:
    return add_rotation(make_pam_user(personas.folder, title), config, "queued", ago=ago)


def _attention(user) -> str:
    html = login(user).get("/").content.decode()
    return re.search(r'id="dashboard-attention".*?</section>', html, re.S).group(0)


def test_a_rotation_waiting_on_a_gateway_never_seen_is_listed_with_the_command(personas, gw2):
    rotation = _waiting(personas, "Stuck", make_configuration(personas.folder, gw2))
    dash = dashboard.rotation_dashboard(user=personas.editor)
    assert [r.pk for r in dash.waiting] == [rotation.pk]
    [group] = dash.waiting_gateways
    assert group.name == "gw2" and group.last_seen_at is None
    section = _attention(personas.editor)
    assert "Waiting for an offline gateway" in section
    assert f'<a href="/records/{rotation.pam_user.uid}/">AWS user: Stuck</a>' in section
    assert "never seen" in section
    assert "<code>python manage.py pam gateway run gw2</code>" in section
    assert "Cancel rotation" in section  # the other way out, on the record's page
    assert "pam action cancel --record" in section
    assert "Nothing needs attention." not in section


def test_a_gateway_that_went_offline_says_when_it_was_last_seen(personas, gw2):
    seen = timezone.now() - timedelta(minutes=30)
    Gateway.objects.filter(pk=gw2.pk).update(last_seen_at=seen)
    _waiting(personas, "Stuck", make_configuration(personas.folder, gw2))
    [group] = dashboard.rotation_dashboard(user=personas.editor).waiting_gateways
    assert group.last_seen_at == seen
    assert "last seen" in _attention(personas.editor)


def test_rotations_queued_on_an_online_gateway_need_no_attention(personas, online):
    _waiting(personas, "Busy", online)
    dash = dashboard.rotation_dashboard(user=personas.editor)
    assert dash.waiting == [] and dash.waiting_gateways == []
    assert "Nothing needs attention." in _attention(personas.editor)


def test_running_and_finished_rotations_on_an_offline_gateway_are_not_waiting(personas, gw2):
    config = make_configuration(personas.folder, gw2)
    for status in (Rotation.RUNNING, Rotation.SUCCEEDED):
        add_rotation(make_pam_user(personas.folder, status), config, status)
    assert dashboard.rotation_dashboard(user=personas.editor).waiting == []


def test_only_rotations_of_the_users_folders_are_listed(personas, gw2):
    elsewhere = make_configuration(personas.other_folder, gw2)
    add_rotation(make_pam_user(personas.other_folder, "Theirs"), elsewhere, "queued")
    assert dashboard.rotation_dashboard(user=personas.editor).waiting == []
    assert len(dashboard.rotation_dashboard(user=personas.outsider).waiting) == 1


def test_a_record_in_my_folder_using_a_configuration_elsewhere_is_listed(personas, gw2):
    kept = SharedFolder.objects.create(name="Configurations")
    rotation = _waiting(personas, "Mine", make_configuration(kept, gw2))
    assert [r.pk for r in dashboard.rotation_dashboard(user=personas.editor).waiting] == [
        rotation.pk
    ]


def test_waiting_rotations_are_grouped_by_gateway_newest_first(personas, gw2, online):
    """(The subquery reads them in this order through rotation_waiting_idx.)"""
    gw3 = Gateway.objects.create(name="gw3", application=personas.application)
    on_gw2 = make_configuration(personas.folder, gw2, title="On gw2")
    older = _waiting(personas, "Older", on_gw2, ago=timedelta(days=2))
    newer = _waiting(personas, "Newer", on_gw2)
    third = _waiting(personas, "Third", make_configuration(personas.folder, gw3, title="gw3"))
    groups = dashboard.rotation_dashboard(user=personas.editor).waiting_gateways
    assert [(g.name, [r.pk for r in g.rotations]) for g in groups] == [
        ("gw2", [newer.pk, older.pk]),
        ("gw3", [third.pk]),
    ]


def test_at_most_twenty_are_listed_and_the_page_says_there_are_more(personas, gw2):
    config = make_configuration(personas.folder, gw2)
    for n in range(dashboard.ATTENTION_SHOWN + 3):
        _waiting(personas, f"U{n:02d}", config, ago=timedelta(minutes=n + 1))
    dash = dashboard.rotation_dashboard(user=personas.editor)
    assert len(dash.waiting) == dashboard.ATTENTION_SHOWN and dash.more_waiting
    assert "Showing 20: more rotations wait." in _attention(personas.editor)


def test_many_waiting_rotations_do_not_crowd_out_the_may_be_live_ones(personas, gw2):
    config = make_configuration(personas.folder, gw2)
    for n in range(dashboard.ATTENTION_SHOWN + 3):
        _waiting(personas, f"U{n:02d}", config)
    live = add_rotation(
        make_pam_user(personas.folder, "Unsure"),
        config,
        "failed",
        pending_may_be_live=True,
        ago=timedelta(days=3),
    )
    live.set_secret("pending_password", "Pending-Passw0rd!1")
    live.save()
    dash = dashboard.rotation_dashboard(user=personas.editor)
    assert [r.pk for r in dash.may_be_live] == [live.pk]
    assert len(dash.waiting) == dashboard.ATTENTION_SHOWN


def test_a_cancelled_rotation_is_no_longer_waiting(personas, gw2, record):
    make_settings(record, make_configuration(personas.folder, gw2))
    rotation = engine.rotation_request(record=record, trigger="on_demand")
    assert len(dashboard.rotation_dashboard(user=personas.editor).waiting) == 1
    engine.rotation_cancel(rotation=rotation, actor=personas.editor)
    assert dashboard.rotation_dashboard(user=personas.editor).waiting == []


def test_the_dashboard_still_runs_eight_queries(personas, gw2, online, django_assert_num_queries):
    config = make_configuration(personas.folder, gw2)
    for n in range(5):
        _waiting(personas, f"W{n}", config)
    with django_assert_num_queries(8):
        dash = dashboard.rotation_dashboard(user=personas.editor)
    assert len(dash.waiting) == 5


def test_the_waiting_list_is_read_in_order_through_its_index(personas, gw2):
    """A long queue on an online gateway costs the home page nothing, and a long one on an
    offline gateway is read only as far as shown: SQLite reads rotation_waiting_idx per
    offline gateway, in the order shown, without sorting."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("the plan checked is SQLite's")
    folder_ids = personas.editor.memberships.values("folder_id")
    waiting = dashboard._waiting(folder_ids, timezone.now()).order_by(*dashboard.WAITING_ORDER)
    sql, params = waiting.values("pk")[:21].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        plan = " | ".join(row[-1] for row in cursor.fetchall())
    assert "USING INDEX rotation_waiting_idx (status=? AND gateway_name=?)" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
