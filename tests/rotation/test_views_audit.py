"""The audit log page and its CSV export: who may read which events, filters, pages."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import login, make_pam_user
from vault import services as vault_services
from vault.audit import audit_record
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db

URL, CSV_URL = "/audit/", "/audit/export.csv"


def _at(day: str, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime.fromisoformat(day).replace(hour=hour))


def _event(action, *, folder=None, actor=None, when=None, obj=None, details=None) -> AuditEvent:
    event = audit_record(action, actor=actor, obj=obj, folder=folder, details=details)
    if when is not None:
        AuditEvent.objects.filter(pk=event.pk).update(created_at=when)
    return event


@pytest.fixture
def events(personas):
    """Two events in Team, one in Elsewhere, one about a gateway (no folder)."""
    team = personas.folder
    return {
        "team_reveal": _event(
            "password.revealed",
            folder=team,
            actor=personas.editor,
            when=_at("2026-11-10"),
            details={"record": "abc"},
        ),
        "team_settings": _event(
            "rotation_settings.created",
            folder=team,
            actor=personas.manager,
            when=_at("2026-11-12"),
        ),
        "elsewhere": _event(
            "record.created",
            folder=personas.other_folder,
            actor=personas.outsider,
            when=_at("2026-11-11"),
        ),
        "gateway": _event("gateway.online", when=_at("2026-11-13")),
    }


def _shown(response) -> list[str]:
    """The actions of the events on the page, in order."""
    assert response.status_code == 200
    html = response.content.decode()
    listed = re.search(r'<ol class="audit-events" id="audit-events">.*?</ol>', html, re.S)
    return re.findall(r'data-action="([^"]+)"', listed.group(0)) if listed else []


def _csv(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


# --- who may read what --------------------------------------------------------------------------


def test_superuser_sees_every_event(personas, events):
    shown = _shown(login(personas.superuser).get(URL))
    assert shown == [
        "gateway.online",
        "rotation_settings.created",
        "record.created",
        "password.revealed",
    ]


def test_folder_manager_sees_only_the_events_of_their_folders(personas, events):
    shown = _shown(login(personas.manager).get(URL))
    assert shown == ["rotation_settings.created", "password.revealed"]


def test_manager_of_another_folder_sees_only_that_folders_events(personas, events):
    assert _shown(login(personas.outsider).get(URL)) == ["record.created"]


def test_editor_without_manage_users_gets_403(personas, events):
    assert login(personas.editor).get(URL).status_code == 403


def test_viewer_gets_403(personas, events):
    assert login(personas.viewer).get(URL).status_code == 403


def test_anonymous_is_sent_to_log_in(personas, events):
    response = Client().get(URL)
    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_audit_page_rejects_post(personas, events):
    assert login(personas.superuser).post(URL).status_code == 405


# --- filters ------------------------------------------------------------------------------------


def test_filter_by_action(personas, events):
    shown = _shown(login(personas.superuser).get(URL, {"action": "record.created"}))
    assert shown == ["record.created"]


def test_action_choices_are_the_actions_the_reader_may_see(personas, events):
    html = login(personas.manager).get(URL).content.decode()
    select = re.search(r'<select name="action".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option value="([^"]*)"', select) == [
        "",
        "password.revealed",
        "rotation_settings.created",
    ]


def test_filter_by_username(personas, events):
    shown = _shown(login(personas.superuser).get(URL, {"user": "manager"}))
    assert shown == ["rotation_settings.created"]


def test_filter_by_dates_includes_both_whole_days(personas, events):
    _event("late.on.the.last.day", when=_at("2026-11-12", 23))
    response = login(personas.superuser).get(
        URL, {"date_from": "2026-11-11", "date_to": "2026-11-12"}
    )
    assert _shown(response) == [
        "late.on.the.last.day",
        "rotation_settings.created",
        "record.created",
    ]


def test_filters_combine(personas, events):
    response = login(personas.superuser).get(
        URL, {"user": "editor", "date_from": "2026-11-11", "action": "password.revealed"}
    )
    assert _shown(response) == []


@pytest.mark.parametrize(
    "params, field, message",
    [
        ({"date_from": "yesterday"}, "date_from", "Enter a valid date."),
        ({"date_to": "2026-13-45"}, "date_to", "Enter a valid date."),
        ({"date_to": "0001-01-01"}, "date_to", "Enter a date between"),
        ({"date_to": "9999-12-31"}, "date_to", "Enter a date between"),
        ({"action": "no.such.action"}, "action", "Select a valid choice."),
        ({"user": "nobody"}, "user", "No user is named “nobody”."),
        (
            {"date_from": "2026-11-12", "date_to": "2026-11-10"},
            "date_to",
            "The end date is before the start date.",
        ),
    ],
)
def test_invalid_filters_give_a_field_error_not_a_500(personas, events, params, field, message):
    response = login(personas.superuser).get(URL, params)
    assert response.status_code == 200
    html = response.content.decode()
    error = re.search(
        rf'data-field="{field}".*?<span class="field-error"[^>]*>(.*?)</span>', html, re.S
    )
    assert error and message in error.group(1).replace("&ldquo;", "“").replace("&rdquo;", "”")
    assert 'id="audit-events"' not in html


def test_events_are_paginated_by_50_keeping_the_filter(personas):
    for n in range(51):
        _event("bulk.event", folder=personas.folder, when=_at("2026-11-01") + timedelta(minutes=n))
    _event("other.event", folder=personas.folder)
    client = login(personas.superuser)
    first = client.get(URL, {"action": "bulk.event"})
    assert len(_shown(first)) == 50
    html = first.content.decode()
    assert 'href="?action=bulk.event&amp;page=2"' in html
    assert _shown(client.get(URL, {"action": "bulk.event", "page": 2})) == ["bulk.event"]


def _event_items(response) -> list[str]:
    html = response.content.decode()
    return re.findall(r'<li class="audit-event".*?</li>', html, re.S)


def _text(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).strip()


def test_each_event_is_one_readable_sentence(personas):
    record = make_pam_user(personas.folder, "bob.deploy", title="AWS user: bob.deploy")
    _event("password.revealed", actor=personas.editor, obj=record, details={"what": "password"})
    (item,) = _event_items(login(personas.manager).get(URL))
    sentence = re.search(r'<p class="audit-sentence">(.*?)</p>', item, re.S).group(1)
    assert sentence == "editor revealed the password of PAM User “AWS user: bob.deploy”."


def test_details_are_key_values_behind_a_toggle_not_json(personas, events):
    response = login(personas.superuser).get(URL, {"action": "password.revealed"})
    (item,) = _event_items(response)
    toggle = re.search(r"<details[^>]*>\s*<summary>Details</summary>(.*?)</details>", item, re.S)
    assert toggle, item
    pairs = re.findall(r"<dt>(.*?)</dt>\s*<dd>(.*?)</dd>", toggle.group(1), re.S)
    assert ("Record", "abc") in [(k, _text(v)) for k, v in pairs]
    assert ("Action", "password.revealed") in [(k, _text(v)) for k, v in pairs]
    assert "&quot;record&quot;" not in item and "{" not in _text(item)


def test_object_types_are_shown_by_their_names_not_model_names(personas):
    record = make_pam_user(personas.folder, "bob.deploy")
    _event("record.created", actor=personas.editor, obj=record)
    _event("member.added", actor=personas.manager, obj=personas.folder, details={"user": "x"})
    html = login(personas.superuser).get(URL).content.decode()
    assert "PAM User “AWS user: bob.deploy”" in html
    assert "Shared folder “Team”" in html
    assert ">pamuser<" not in html and ">sharedfolder<" not in html


def _pages_nav(html: str) -> list[str]:
    navs = re.findall(r'<nav class="pagination"[^>]*>(.*?)</nav>', html, re.S)
    assert navs, "no pagination"
    return navs


def test_pagination_is_visible_above_and_below_with_numbered_links(personas):
    for n in range(120):
        _event("bulk.event", folder=personas.folder, when=_at("2026-11-01") + timedelta(minutes=n))
    html = login(personas.superuser).get(URL, {"action": "bulk.event", "page": 2}).content.decode()
    top, bottom = _pages_nav(html)
    assert top == bottom
    assert 'href="?action=bulk.event&amp;page=1"' in top
    assert 'href="?action=bulk.event&amp;page=3"' in top
    assert 'aria-current="page">2<' in top
    assert "Showing 51–100 of 120 events" in html


def test_every_page_link_keeps_the_filters(personas):
    for n in range(60):
        _event("bulk.event", folder=personas.folder, when=_at("2026-11-01") + timedelta(minutes=n))
    html = (
        login(personas.superuser)
        .get(URL, {"action": "bulk.event", "date_from": "2026-11-01", "date_to": "2026-11-02"})
        .content.decode()
    )
    links = re.findall(r'href="(\?[^"]*)"', "".join(_pages_nav(html)))
    assert links
    for link in links:
        assert "action=bulk.event" in link and "date_from=2026-11-01" in link, link
        assert "date_to=2026-11-02" in link, link


def test_a_single_page_says_how_many_events(personas, events):
    html = login(personas.superuser).get(URL).content.decode()
    assert "Showing 1–4 of 4 events" in html


# --- the navigation link ------------------------------------------------------------------------


def _nav(client) -> str:
    html = client.get("/account/").content.decode()
    return re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S).group(1)


@pytest.mark.parametrize("who", ["superuser", "manager", "outsider"])
def test_navigation_links_the_audit_log_for_those_who_may_read_it(personas, who):
    assert 'href="/audit/"' in _nav(login(getattr(personas, who)))


@pytest.mark.parametrize("who", ["editor", "viewer"])
def test_navigation_has_no_audit_link_for_those_who_may_not(personas, who):
    assert 'href="/audit/"' not in _nav(login(getattr(personas, who)))


def test_audit_nav_link_is_marked_current_on_the_audit_page(personas):
    html = login(personas.manager).get(URL).content.decode()
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S).group(1)
    assert re.search(r'<a href="/audit/" aria-current="page">Audit log</a>', nav)


# --- CSV ----------------------------------------------------------------------------------------


def test_download_link_carries_the_filter(personas, events):
    html = login(personas.superuser).get(URL, {"user": "editor", "page": "1"}).content.decode()
    assert f'href="{CSV_URL}?user=editor"' in html


def test_csv_has_the_documented_columns(personas, events):
    rows = _csv(login(personas.superuser).get(CSV_URL, {"action": "password.revealed"}))
    assert list(rows[0]) == [
        "time",
        "actor",
        "actor kind",
        "action",
        "object type",
        "object uid",
        "object",
        "folder",
        "source ip",
        "details",
    ]
    (row,) = rows
    assert row["actor"] == "editor"
    assert row["actor kind"] == "user"
    assert row["folder"] == "Team"
    assert json.loads(row["details"]) == {"record": "abc"}
    assert datetime.fromisoformat(row["time"]) == _at("2026-11-10")


def test_csv_exports_the_filtered_events_only(personas, events):
    rows = _csv(login(personas.superuser).get(CSV_URL, {"date_from": "2026-11-12"}))
    assert [r["action"] for r in rows] == ["gateway.online", "rotation_settings.created"]


def test_csv_exports_every_page_not_only_the_first(personas):
    for n in range(120):
        _event("bulk.event", folder=personas.folder, when=_at("2026-11-01") + timedelta(minutes=n))
    assert len(_csv(login(personas.superuser).get(CSV_URL))) == 120


def test_csv_of_a_folder_manager_holds_only_their_folders_events(personas, events):
    rows = _csv(login(personas.manager).get(CSV_URL))
    assert {r["folder"] for r in rows} == {"Team"}
    assert len(rows) == 2


def test_csv_is_refused_to_members_who_do_not_manage_users(personas, events):
    assert login(personas.editor).get(CSV_URL).status_code == 403


def test_csv_with_an_invalid_filter_is_a_400_with_the_reason(personas, events):
    response = login(personas.superuser).get(CSV_URL, {"date_from": "soon"})
    assert response.status_code == 400
    assert "date_from: Enter a valid date." in response.content.decode()


def test_csv_cells_cannot_run_as_spreadsheet_formulas(personas):
    record = make_pam_user(personas.folder, "Evil", title='=HYPERLINK("http://x","click")')
    _event("record.created", obj=record, actor=personas.editor)
    (row,) = _csv(login(personas.superuser).get(CSV_URL))
    assert row["object"] == '\'=HYPERLINK("http://x","click")'


def test_a_revealed_password_appears_in_neither_the_page_nor_the_csv(personas):
    record = make_pam_user(personas.folder, "Secretive", password="Very-Secret-Passw0rd!")
    vault_services.pam_user_reveal(record=record, actor=personas.editor)
    client = login(personas.manager)
    assert _shown(client.get(URL)) == ["password.revealed"]
    assert b"Very-Secret-Passw0rd!" not in client.get(URL).content
    assert b"Very-Secret-Passw0rd!" not in b"".join(client.get(CSV_URL).streaming_content)
