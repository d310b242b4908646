"""The PAM Configuration's default schedule through the schedule widget (issue 12, defect 9):
the same fields as the record's Password Rotation Settings, never JSON to read or type unless
chosen; what is stored is kept exactly when the page is saved unchanged."""

from __future__ import annotations

import json
import re

import pytest

from rotation.schedules import normalize_schedule
from tests.conftest import login, make_configuration
from tests.formvalues import form_values
from tests.rotation.test_settings_round_trip import COMMANDER_SCHEDULES
from vault.models import AuditEvent, PamConfiguration

pytestmark = pytest.mark.django_db


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway, access_key_id="AKIATEST")


def _create_url(personas) -> str:
    return f"/folders/{personas.folder.uid}/configurations/new/"


def _edit_url(config) -> str:
    return f"/configurations/{config.uid}/edit/"


def _new(**schedule) -> dict:
    return {
        "title": "Widget configuration",
        "environment": "aws",
        "gateway": "default",
        "new_gateway": "",
        "aws_id": "AWS-Dept",
        "access_key_id": "AKIATEST",
        "access_secret_key": "Typed-Secret-Key-1",
        "region_names": "us-east-1",
        "endpoint_url": "",
        "tz": "UTC",
        "time": "00:00",
        "interval_count": "1",
        "weekday": "MONDAY",
        "month_day": "1",
        "occurrence": "FIRST",
        "month": "JANUARY",
        "cron": "",
        "once_at": "",
        "default_rotation_schedule": "",
        **schedule,
    }


def _selected(html: str, name: str) -> str:
    select = re.search(rf'<select name="{name}".*?</select>', html, re.S).group(0)
    match = re.search(r'<option value="([^"]*)"[^>]*selected', select)
    return match.group(1) if match else ""


def test_new_configuration_offers_the_schedule_widget(personas):
    html = login(personas.editor).get(_create_url(personas)).content.decode()
    assert 'data-schedule-fields="' in html
    assert _selected(html, "schedule_type") == "ON_DEMAND"
    for kind in ("RUN_ONCE", "DAILY", "WEEKLY", "MONTHLY_BY_DAY", "YEARLY", "CRON", "JSON"):
        assert f'<option value="{kind}"' in html
    for name in ("tz", "time", "once_at", "interval_count", "weekday", "month_day", "cron"):
        assert f'name="{name}"' in html
    assert "/static/js/schedule-fields.js" in html
    assert "Default rotation schedule (JSON)" not in html


def test_creating_with_the_widget_stores_the_schedule(personas):
    response = login(personas.editor).post(
        _create_url(personas),
        _new(schedule_type="WEEKLY", tz="Europe/Berlin", time="03:30", weekday="FRIDAY"),
    )
    assert response.status_code == 302
    config = PamConfiguration.objects.get(title="Widget configuration")
    assert config.default_rotation_schedule == {
        "type": "WEEKLY",
        "time": "03:30:00",
        "tz": "Europe/Berlin",
        "intervalCount": 1,
        "weekday": "FRIDAY",
    }


def test_a_run_once_default_schedule(personas):
    response = login(personas.editor).post(
        _create_url(personas), _new(schedule_type="RUN_ONCE", once_at="2031-05-01T09:00")
    )
    assert response.status_code == 302
    config = PamConfiguration.objects.get(title="Widget configuration")
    assert config.default_rotation_schedule == {
        "type": "RUN_ONCE",
        "time": "2031-05-01T09:00:00",
        "tz": "UTC",
    }


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"schedule_type": "CRON", "cron": "0 0 3 ? * 2L,6L"}, "cron", "day-of-week"),
        ({"schedule_type": "CRON", "cron": ""}, "cron", "Enter a cron expression"),
        ({"schedule_type": "DAILY", "time": "25:99"}, "time", "Enter a valid time"),
        (
            {"schedule_type": "YEARLY", "month": "FEBRUARY", "month_day": "30"},
            "month_day",
            "Day of month must be a whole number from 1 to 29 in February",
        ),
        ({"schedule_type": "RUN_ONCE", "once_at": "2020-01-01T00:00"}, "once_at", "passed"),
        ({"schedule_type": "DAILY", "tz": "Mars/Olympus"}, "tz", "Select a valid choice"),
        ({"schedule_type": "HOURLY"}, "schedule_type", "Select a valid choice"),
    ],
)
def test_a_bad_schedule_is_an_error_beside_its_field(personas, fields, field, words):
    before = list(AuditEvent.objects.values_list("pk", flat=True))
    response = login(personas.editor).post(_create_url(personas), _new(**fields))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert words in " ".join(errors[field])
    assert not PamConfiguration.objects.filter(title="Widget configuration").exists()
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == before


def test_schedule_json_remains_for_those_who_choose_it(personas):
    text = '{"type": "DAILY", "time": "17:00:00", "tz": "Asia/Calcutta", "occurrences": 5}'
    response = login(personas.editor).post(
        _create_url(personas), _new(schedule_type="JSON", default_rotation_schedule=text)
    )
    assert response.status_code == 302
    config = PamConfiguration.objects.get(title="Widget configuration")
    assert config.default_rotation_schedule == normalize_schedule(json.loads(text))


def test_bad_schedule_json_is_an_error_on_the_json_field(personas):
    response = login(personas.editor).post(
        _create_url(personas),
        _new(schedule_type="JSON", default_rotation_schedule='{"type": "WEEKLY"}'),
    )
    assert list(response.context["form"].errors) == ["default_rotation_schedule"]


def test_posting_only_the_json_still_works(personas):
    data = _new(default_rotation_schedule='{"type": "DAILY", "utcTime": "03:00"}')
    for name in ("tz", "time", "interval_count", "weekday", "month_day", "occurrence", "month"):
        del data[name]
    response = login(personas.editor).post(_create_url(personas), data)
    assert response.status_code == 302
    config = PamConfiguration.objects.get(title="Widget configuration")
    assert config.default_rotation_schedule["type"] == "DAILY"


def test_the_edit_page_shows_the_stored_schedule_in_the_widget(personas, config):
    config.default_rotation_schedule = normalize_schedule(
        {"type": "MONTHLY_BY_WEEKDAY", "time": "09:30", "weekday": "FRIDAY", "occurrence": "LAST"}
    )
    config.save()
    html = login(personas.editor).get(_edit_url(config)).content.decode()
    assert _selected(html, "schedule_type") == "MONTHLY_BY_WEEKDAY"
    assert _selected(html, "weekday") == "FRIDAY"
    assert _selected(html, "occurrence") == "LAST"
    assert re.search(r'name="time" value="09:30"', html)


@pytest.mark.parametrize(
    "written", COMMANDER_SCHEDULES, ids=lambda s: "-".join(str(v) for v in s.values())
)
def test_open_and_save_keeps_the_stored_default_schedule(personas, config, written):
    stored = normalize_schedule(written)
    config.default_rotation_schedule = stored
    config.save()
    client = login(personas.editor)
    page = client.get(_edit_url(config))
    response = client.post(_edit_url(config), form_values(page.content.decode()))
    assert response.status_code == 302, response.context["form"].errors
    config.refresh_from_db()
    assert config.default_rotation_schedule == stored


def test_the_configuration_page_says_the_default_schedule_in_words(personas, config):
    config.default_rotation_schedule = normalize_schedule(
        {"type": "CRON", "cron": "0 0 3 ? * MON-FRI", "tz": "America/Chicago"}
    )
    config.save()
    html = login(personas.editor).get(f"/configurations/{config.uid}/").content.decode()
    shown = re.search(r'<dd id="default-schedule">(.*?)<details', html, re.S).group(1)
    assert shown.strip() == "Cron 0 0 3 ? * MON-FRI (America/Chicago)"
