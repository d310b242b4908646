"""The rotation dashboard on the home page: counts, due rotations, what needs attention,
gateways, and the 30-day chart, in a fixed number of queries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rotation import dashboard
from rotation.models import Rotation, RotationSettings
from tests.conftest import login, make_configuration, make_pam_user
from tests.rotation.conftest import make_settings
from vault.models import Gateway, PamUser

pytestmark = pytest.mark.django_db


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


def make_rotation(record, config, status, *, ago=timedelta(minutes=5), error="", **kw):
    when = timezone.now() - ago
    finished = status in (Rotation.SUCCEEDED, Rotation.FAILED)
    rotation = Rotation(
        pam_user=record,
        configuration=config,
        gateway_name=config.gateway.name,
        trigger=kw.pop("trigger", "on_demand"),
        status=status,
        created_at=when - timedelta(seconds=2),
        started_at=when - timedelta(seconds=1),
        finished_at=when if finished else None,
        error=error,
        **kw,
    )
    return rotation


def add_rotation(record, config, status, **kw) -> Rotation:
    rotation = make_rotation(record, config, status, **kw)
    rotation.save()
    return rotation


def _home(user) -> str:
    response = login(user).get("/")
    assert response.status_code == 200
    return response.content.decode()


def _dashboard_html(user) -> str:
    html = _home(user)
    match = re.search(r'<section class="card dashboard".*?\n</section>', html, re.S)
    assert match, "no dashboard on the home page"
    return match.group(0)


def _shown_counts(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-count="(\w+)">(\d+)<', html)}


# --- counts by last rotation status -------------------------------------------------------------


def test_counts_records_by_the_status_of_their_latest_rotation(personas, config):
    ok = make_pam_user(personas.folder, "Ok")
    add_rotation(ok, config, "failed", ago=timedelta(days=2))
    add_rotation(ok, config, "succeeded", ago=timedelta(days=1))
    bad = make_pam_user(personas.folder, "Bad")
    add_rotation(bad, config, "succeeded", ago=timedelta(days=2))
    add_rotation(bad, config, "failed", ago=timedelta(days=1))
    busy = make_pam_user(personas.folder, "Busy")
    add_rotation(busy, config, "succeeded", ago=timedelta(days=2))
    add_rotation(busy, config, "running", ago=timedelta(seconds=5))
    make_pam_user(personas.folder, "Fresh")
    html = _dashboard_html(personas.editor)
    assert _shown_counts(html) == {"succeeded": 1, "failed": 1, "rotating": 1, "never": 1}


def test_counts_only_records_of_the_users_folders(personas, config):
    mine = make_pam_user(personas.folder, "Mine")
    add_rotation(mine, config, "succeeded")
    other_config = make_configuration(personas.other_folder, personas.gateway)
    theirs = make_pam_user(personas.other_folder, "Theirs")
    add_rotation(theirs, other_config, "failed")
    counts = dashboard.rotation_dashboard(user=personas.editor).counts
    assert (counts["succeeded"], counts["failed"], counts["total"]) == (1, 0, 1)


def test_a_user_without_folders_sees_no_dashboard(personas):
    from tests.conftest import make_user

    html = _home(make_user("newcomer"))
    assert 'class="card dashboard"' not in html


# --- due in the next 7 days ---------------------------------------------------------------------


def _due(personas, config, title: str, in_days: float, **kw) -> PamUser:
    record = make_pam_user(personas.folder, title)
    rs = make_settings(record, config, schedule={"type": "DAILY", "time": "03:00"}, **kw)
    RotationSettings.objects.filter(pk=rs.pk).update(
        next_run_at=timezone.now() + timedelta(days=in_days)
    )
    return record


def test_due_lists_rotations_of_the_next_7_days_soonest_first(personas, config):
    later = _due(personas, config, "Later", 5)
    sooner = _due(personas, config, "Sooner", 1)
    _due(personas, config, "NextMonth", 20)
    _due(personas, config, "Disabled", 2, enabled=False)
    due = dashboard.rotation_dashboard(user=personas.editor).due
    assert [rs.pam_user for rs in due] == [sooner, later]


def test_due_list_links_to_the_records_in_order(personas, config):
    later = _due(personas, config, "Later", 5)
    sooner = _due(personas, config, "Sooner", 1)
    html = _dashboard_html(personas.editor)
    section = re.search(r'id="dashboard-due".*?</section>', html, re.S).group(0)
    links = re.findall(r'href="/records/([^/]+)/"', section)
    assert links == [sooner.uid, later.uid]


def test_due_list_shows_at_most_20(personas, config):
    for n in range(25):
        _due(personas, config, f"Due{n:02d}", 1 + n / 10)
    due = dashboard.rotation_dashboard(user=personas.editor).due
    assert len(due) == 20
    assert due[0].pam_user.title == "AWS user: Due00"


# --- needs attention ----------------------------------------------------------------------------


def test_failed_records_are_listed_with_their_error_and_a_link(personas, config):
    bad = make_pam_user(personas.folder, "Bad")
    add_rotation(bad, config, "failed", error="AccessDenied: iam:UpdateLoginProfile was refused")
    html = _dashboard_html(personas.editor)
    section = re.search(r'id="dashboard-attention".*?</section>', html, re.S).group(0)
    assert f'<a href="/records/{bad.uid}/">{bad.title}</a>' in section
    assert "AccessDenied: iam:UpdateLoginProfile was refused" in section


def test_a_failure_followed_by_a_success_needs_no_attention(personas, config):
    record = make_pam_user(personas.folder, "Recovered")
    add_rotation(record, config, "failed", ago=timedelta(days=1), error="boom")
    add_rotation(record, config, "succeeded")
    assert dashboard.rotation_dashboard(user=personas.editor).failures == []


def test_a_record_rotating_again_after_a_failure_is_not_listed_as_failed(personas, config):
    record = make_pam_user(personas.folder, "Retrying")
    add_rotation(record, config, "failed", ago=timedelta(days=1), error="boom")
    add_rotation(record, config, "queued")
    assert dashboard.rotation_dashboard(user=personas.editor).failures == []


def test_possibly_live_passwords_are_listed_with_a_link(personas, config):
    record = make_pam_user(personas.folder, "Unsure")
    rotation = make_rotation(record, config, "failed", error="gave up", pending_may_be_live=True)
    rotation.set_secret("pending_password", "Pending-Passw0rd!")
    rotation.save()
    resolved = make_rotation(
        make_pam_user(personas.folder, "Settled"),
        config,
        "failed",
        pending_may_be_live=True,
        resolved_at=timezone.now(),
    )
    resolved.save()
    dash = dashboard.rotation_dashboard(user=personas.editor)
    assert [r.pam_user for r in dash.may_be_live] == [record]
    html = _dashboard_html(personas.editor)
    section = re.search(r'id="dashboard-may-be-live".*?</ul>', html, re.S).group(0)
    assert f'href="/records/{record.uid}/"' in section
    assert "Pending-Passw0rd!" not in html


def test_nothing_needs_attention_says_so(personas, config):
    add_rotation(make_pam_user(personas.folder, "Fine"), config, "succeeded")
    assert "Nothing needs attention." in _dashboard_html(personas.editor)


# --- gateways -----------------------------------------------------------------------------------


def test_gateways_serving_the_users_folders_show_online_or_offline(personas, config):
    Gateway.objects.filter(pk=personas.gateway.pk).update(last_seen_at=timezone.now())
    stale = Gateway.objects.create(
        name="branch", last_seen_at=timezone.now() - timedelta(minutes=10)
    )
    make_configuration(personas.folder, stale, title="Branch office")
    elsewhere = Gateway.objects.create(name="elsewhere", last_seen_at=timezone.now())
    make_configuration(personas.other_folder, elsewhere)
    dash = dashboard.rotation_dashboard(user=personas.editor)
    assert [g.name for g in dash.gateways] == ["branch", "default"]
    assert (dash.gateways_online, dash.gateways_offline) == (1, 1)
    html = _dashboard_html(personas.editor)
    section = re.search(r'id="dashboard-gateways".*?</section>', html, re.S).group(0)
    assert "1 online, 1 offline" in section
    assert re.search(r"branch\s*<span class=\"badge badge-failed\">offline", section)
    assert re.search(r"default\s*<span class=\"badge badge-succeeded\">online", section)
    assert "elsewhere" not in section


# --- the chart ----------------------------------------------------------------------------------


@pytest.fixture
def history(personas, config):
    """Today: 3 succeeded, 1 failed. Five days ago: 2 succeeded. 40 days ago: 1 (too old)."""
    records = [make_pam_user(personas.folder, f"H{n}") for n in range(7)]
    for record in records[:3]:
        add_rotation(record, config, "succeeded", ago=timedelta(minutes=1))
    add_rotation(records[3], config, "failed", ago=timedelta(minutes=1), error="x")
    for record in records[4:6]:
        add_rotation(record, config, "succeeded", ago=timedelta(days=5))
    add_rotation(records[6], config, "succeeded", ago=timedelta(days=40))
    return records


def test_chart_has_one_bar_per_day_for_30_days_ending_today(personas, history):
    chart = dashboard.rotation_dashboard(user=personas.editor).chart
    assert len(chart.bars) == 30
    assert chart.last_day == timezone.localdate()
    assert chart.first_day == timezone.localdate() - timedelta(days=29)


def test_chart_counts_succeeded_and_failed_per_day(personas, history):
    bars = dashboard.rotation_dashboard(user=personas.editor).chart.bars
    assert (bars[-1].succeeded, bars[-1].failed) == (3, 1)
    assert (bars[-6].succeeded, bars[-6].failed) == (2, 0)
    assert sum(b.total for b in bars) == 6


def test_chart_bars_scale_to_the_axis_and_stack_failures_on_top(personas, history):
    chart = dashboard.rotation_dashboard(user=personas.editor).chart
    today = chart.bars[-1]
    top = chart.ticks[-1]
    assert top["value"] >= 4
    assert today.fail_y + today.fail_height == pytest.approx(today.ok_y)
    assert today.ok_y + today.ok_height == pytest.approx(chart.baseline)
    per_rotation = (chart.baseline - top["y"]) / top["value"]
    assert today.ok_height == pytest.approx(3 * per_rotation, abs=0.02)
    assert today.fail_height == pytest.approx(per_rotation, abs=0.02)


def test_chart_is_an_svg_with_a_title_and_a_description(personas, history):
    html = _dashboard_html(personas.editor)
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    assert 'role="img"' in svg and 'aria-labelledby="chart-title chart-desc"' in svg
    desc = re.search(r'<desc id="chart-desc">(.*?)</desc>', svg, re.S).group(1)
    assert "5 rotations succeeded and 1 failed" in desc
    assert len(re.findall(r'<rect class="bar-ok"', svg)) == 2
    assert len(re.findall(r'<rect class="bar-fail"', svg)) == 1


def test_chart_has_a_data_table_as_text_alternative(personas, history):
    html = _dashboard_html(personas.editor)
    table = re.search(r'<table class="table" id="chart-table">.*?</table>', html, re.S).group(0)
    rows = re.findall(
        r'<time datetime="([\d-]+)">.*?<td class="num">(\d+)</td><td class="num">(\d+)</td>', table
    )
    assert len(rows) == 30
    assert rows[-1] == (timezone.localdate().isoformat(), "3", "1")


def test_dashboard_has_no_inline_style_or_script(personas, history):
    html = _dashboard_html(personas.editor)
    assert "style=" not in html
    assert "<script" not in html


def test_chart_of_an_empty_history_is_flat_and_says_so(personas, config):
    make_pam_user(personas.folder, "Quiet")
    chart = dashboard.rotation_dashboard(user=personas.editor).chart
    assert all(b.ok_height == 0 and b.fail_height == 0 for b in chart.bars)
    assert "0 rotations succeeded and 0 failed" in chart.summary


# --- the audit link -----------------------------------------------------------------------------


def test_folder_managers_get_a_link_to_the_audit_log(personas):
    assert 'href="/audit/"' in _dashboard_html(personas.manager)


def test_members_who_do_not_manage_users_get_no_audit_link(personas):
    assert 'href="/audit/"' not in _home(personas.editor)


def test_a_superuser_without_folders_still_gets_the_audit_link(personas):
    assert 'href="/audit/"' in _home(personas.superuser)


# --- queries ------------------------------------------------------------------------------------


def _populate(folder, config, count: int) -> None:
    """`count` records, each with settings due soon and a mix of rotation outcomes."""
    start = PamUser.objects.filter(folder=folder).count()
    records = PamUser.objects.bulk_create(
        PamUser(
            folder=folder,
            title=f"User {n:05d}",
            login=f"user{n:05d}",
            distinguished_name=f"arn:aws:iam::123456789012:user/user{n:05d}",
        )
        for n in range(start, start + count)
    )
    soon = timezone.now() + timedelta(days=1)
    RotationSettings.objects.bulk_create(
        RotationSettings(pam_user=r, configuration=config, next_run_at=soon) for r in records
    )
    rotations = []
    for n, record in enumerate(records):
        status = ("succeeded", "failed", "succeeded", "running")[n % 4]
        rotation = make_rotation(record, config, status, ago=timedelta(days=n % 30, minutes=1))
        if n % 8 == 1:
            rotation.pending_may_be_live = True
            rotation.set_secret("pending_password", "Pending-Passw0rd!")
        rotations.append(rotation)
    Rotation.objects.bulk_create(rotations)


def _home_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/").status_code == 200
    return len(ctx.captured_queries)


def test_home_page_queries_do_not_grow_with_records(personas, config):
    Gateway.objects.filter(pk=personas.gateway.pk).update(last_seen_at=timezone.now())
    client = login(personas.editor)
    client.get("/")  # warm-up: content types, session
    _populate(personas.folder, config, 10)
    small = _home_queries(client)
    _populate(personas.folder, config, 190)
    large = _home_queries(client)
    dash = dashboard.rotation_dashboard(user=personas.editor)
    assert dash.counts["total"] == 200 and dash.failures and dash.may_be_live and dash.due
    assert small == large


def test_dashboard_runs_eight_queries(personas, config, django_assert_num_queries):
    _populate(personas.folder, config, 40)
    # Eight whatever the size: the two attention lists are read apart (each through its own
    # index; together they made PostgreSQL scan every rotation).
    with django_assert_num_queries(8):
        dashboard.rotation_dashboard(user=personas.editor)


def test_chart_opens_on_its_newest_days_through_a_static_script(personas, history):
    """On a narrow screen the chart scrolls sideways; a deferred script from static/ (the CSP
    allows no inline script) scrolls it to today on load (tests/e2e/test_small_screens.py)."""
    html = _home(personas.editor)
    assert re.search(r'<script src="/static/js/dashboard\.js(\?[^"]*)?" defer></script>', html)
    assert re.search(r'<div class="chart-scroll"', html)
