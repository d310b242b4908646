"""Password Rotation Settings page: who may open it, what it saves, and the errors it gives."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from rotation.models import RotationSettings
from rotation.passwords import AWS_SYMBOLS
from tests.conftest import login, make_configuration
from tests.formvalues import form_values
from vault.models import Application, AuditEvent, Gateway

pytestmark = pytest.mark.django_db


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


def _url(record) -> str:
    return f"/records/{record.uid}/rotation/"


def _data(config, **changes) -> dict:
    data = {
        "method": "iam_user",
        "configuration": config.uid,
        "schedule_type": "ON_DEMAND",
        "tz": "UTC",
        "time": "00:00",
        "interval_count": "1",
        "weekday": "MONDAY",
        "month_day": "1",
        "occurrence": "FIRST",
        "month": "JANUARY",
        "cron": "",
        "length": "32",
        "min_upper": "5",
        "min_lower": "5",
        "min_digits": "5",
        "min_symbols": "5",
        "symbols": AWS_SYMBOLS,
        "enabled": "on",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def _snapshot(record) -> tuple:
    return (
        list(RotationSettings.objects.filter(pam_user=record).values()),
        list(AuditEvent.objects.values_list("action", flat=True)),
    )


def _errors(response) -> dict:
    return response.context["form"].errors


def _save(client, record, config, **changes):
    return client.post(_url(record), _data(config, **changes))


# --- who may open it ---------------------------------------------------------------------------


def test_editor_opens_the_settings_form(personas, record):
    response = login(personas.editor).get(_url(record))
    assert response.status_code == 200
    assert "Password Rotation Settings" in response.content.decode()


def test_settings_form_shows_the_iam_user_method(personas, record):
    html = login(personas.editor).get(_url(record)).content.decode()
    assert '<option value="iam_user" selected>IAM User</option>' in html


def test_viewer_gets_403_for_the_settings_form(personas, record):
    assert login(personas.viewer).get(_url(record)).status_code == 403


def test_outsider_gets_404_for_the_settings_form(personas, record):
    assert login(personas.outsider).get(_url(record)).status_code == 404


def test_anonymous_is_sent_to_login_from_the_settings_form(personas, record):
    response = Client().get(_url(record))
    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_viewer_forged_settings_post_is_403_and_saves_nothing(personas, record, config):
    before = _snapshot(record)
    assert _save(login(personas.viewer), record, config).status_code == 403
    assert _snapshot(record) == before


def test_outsider_forged_settings_post_is_404_and_saves_nothing(personas, record, config):
    before = _snapshot(record)
    assert _save(login(personas.outsider), record, config).status_code == 404
    assert _snapshot(record) == before


def test_anonymous_settings_post_redirects_and_saves_nothing(personas, record, config):
    before = _snapshot(record)
    response = _save(Client(), record, config)
    assert response.status_code == 302 and response.url.startswith("/login/")
    assert _snapshot(record) == before


# --- saving ------------------------------------------------------------------------------------


def test_saving_redirects_to_the_record_and_stores_the_settings(personas, record, config):
    response = _save(
        login(personas.editor),
        record,
        config,
        length="40",
        min_upper="3",
        min_lower="4",
        min_digits="6",
        min_symbols="7",
        symbols="!@#",
    )
    assert response.status_code == 302
    assert response.url == f"/records/{record.uid}/"
    rs = RotationSettings.objects.get(pam_user=record)
    assert rs.configuration == config
    assert rs.complexity_text == "40,3,4,6,7,!@#"
    assert rs.enabled


def test_saving_a_daily_schedule_computes_the_next_run(personas, record, config):
    before = timezone.now()
    _save(login(personas.editor), record, config, schedule_type="DAILY", time="03:30")
    rs = RotationSettings.objects.get(pam_user=record)
    assert rs.next_run_at is not None
    assert before < rs.next_run_at <= before + timezone.timedelta(days=1)
    assert (rs.next_run_at.hour, rs.next_run_at.minute) == (3, 30)


def test_on_demand_settings_have_no_next_run(personas, record, config):
    _save(login(personas.editor), record, config, schedule_type="ON_DEMAND")
    assert RotationSettings.objects.get(pam_user=record).next_run_at is None


def test_weekly_europe_berlin_schedule_runs_on_sunday_at_berlin_time(personas, record, config):
    _save(
        login(personas.editor),
        record,
        config,
        schedule_type="WEEKLY",
        tz="Europe/Berlin",
        time="15:44",
        weekday="SUNDAY",
    )
    rs = RotationSettings.objects.get(pam_user=record)
    assert rs.schedule == {
        "type": "WEEKLY",
        "time": "15:44:00",
        "tz": "Europe/Berlin",
        "intervalCount": 1,
        "weekday": "SUNDAY",
    }
    local = rs.next_run_at.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.strftime("%A"), local.hour, local.minute) == ("Sunday", 15, 44)
    # Berlin is UTC+1 or UTC+2: the stored instant is not 15:44 UTC.
    assert rs.next_run_at.astimezone(UTC).hour in (13, 14)


def test_preview_shows_the_next_five_runs_without_saving(personas, record, config):
    response = login(personas.editor).post(
        _url(record), _data(config, schedule_type="DAILY", time="06:00", preview="1")
    )
    assert response.status_code == 200
    runs = response.context["upcoming"]
    assert len(runs) == 5
    assert all((r.hour, r.minute) == (6, 0) for r in runs)
    html = response.content.decode()
    assert html.count("06:00 UTC</time></li>") == 5
    assert not RotationSettings.objects.filter(pam_user=record).exists()
    assert not AuditEvent.objects.filter(action__startswith="rotation_settings").exists()


def test_preview_shows_the_runs_in_the_schedules_time_zone(personas, record, config):
    response = login(personas.editor).post(
        _url(record),
        _data(
            config,
            schedule_type="WEEKLY",
            tz="Europe/Berlin",
            time="15:44",
            weekday="SUNDAY",
            preview="1",
        ),
    )
    html = response.content.decode()
    assert len(re.findall(r"Sun \d{4}-\d\d-\d\d 15:44 Europe/Berlin</time>", html)) == 5
    assert len(re.findall(r"\(Sun 1[34]:44 UTC\)", html)) == 5


def test_preview_of_an_existing_setting_does_not_change_it(personas, record, config):
    client = login(personas.editor)
    _save(client, record, config, schedule_type="ON_DEMAND")
    before = _snapshot(record)
    client.post(_url(record), _data(config, schedule_type="DAILY", preview="1"))
    assert _snapshot(record) == before


def test_get_shows_the_next_runs_of_the_saved_schedule(personas, record, config):
    client = login(personas.editor)
    _save(client, record, config, schedule_type="DAILY", time="04:15")
    response = client.get(_url(record))
    runs = response.context["upcoming"]
    assert len(runs) == 5
    assert runs[0] == RotationSettings.objects.get(pam_user=record).next_run_at


ROUND_TRIPS = {
    "ON_DEMAND": {},
    "DAILY": {"time": "07:05", "interval_count": "3", "tz": "America/New_York"},
    "WEEKLY": {"time": "15:44", "weekday": "SUNDAY", "interval_count": "2", "tz": "Europe/Berlin"},
    "MONTHLY_BY_DAY": {"time": "01:00", "month_day": "31"},
    "MONTHLY_BY_WEEKDAY": {"time": "22:30", "weekday": "FRIDAY", "occurrence": "LAST"},
    "YEARLY": {"time": "12:00", "month": "FEBRUARY", "month_day": "29"},
    "CRON": {"cron": "30 2 * * 1-5", "tz": "Asia/Tokyo"},
}


@pytest.mark.parametrize("kind", list(ROUND_TRIPS))
def test_every_schedule_type_shows_what_was_saved(personas, record, config, kind):
    client = login(personas.editor)
    typed = ROUND_TRIPS[kind]
    response = _save(client, record, config, schedule_type=kind, **typed)
    assert response.status_code == 302, _errors(response)
    form = client.get(_url(record)).context["form"]
    assert form["schedule_type"].value() == kind
    for name, value in typed.items():
        shown = str(form[name].value())
        assert shown == value or shown == f"{value}:00", (name, shown)


def test_get_shows_the_saved_complexity_and_enabled_flag(personas, record, config):
    client = login(personas.editor)
    _save(client, record, config, length="20", min_symbols="0", symbols="", enabled=None)
    form = client.get(_url(record)).context["form"]
    assert form["length"].value() == 20
    assert form["min_symbols"].value() == 0
    assert form["symbols"].value() == ""
    assert form["enabled"].value() is False


def test_configuration_default_schedule_is_used_when_chosen(personas, record, config):
    config.default_rotation_schedule = {"type": "DAILY", "time": "05:00", "tz": "UTC"}
    config.save()
    client = login(personas.editor)
    response = _save(client, record, config, schedule_type="CONFIG_DEFAULT")
    assert response.status_code == 302
    rs = RotationSettings.objects.get(pam_user=record)
    assert rs.use_configuration_schedule
    assert rs.effective_schedule["type"] == "DAILY"
    assert (rs.next_run_at.hour, rs.next_run_at.minute) == (5, 0)
    assert client.get(_url(record)).context["form"]["schedule_type"].value() == "CONFIG_DEFAULT"


def test_configuration_default_schedule_option_is_offered(personas, record):
    html = login(personas.editor).get(_url(record)).content.decode()
    assert "Use the configuration&#x27;s default schedule" in html


# --- errors -----------------------------------------------------------------------------------


def _assert_refused(response, record, field: str) -> str:
    """The submission came back with an error on `field` and saved nothing; returns the text."""
    assert response.status_code == 200
    errors = _errors(response)
    assert field in errors, errors
    assert not RotationSettings.objects.filter(pam_user=record).exists()
    assert not AuditEvent.objects.filter(action__startswith="rotation_settings").exists()
    return " ".join(errors[field])


def test_minimums_exceeding_the_length_is_a_field_error(personas, record, config):
    response = _save(
        login(personas.editor),
        record,
        config,
        length="10",
        min_upper="3",
        min_lower="3",
        min_digits="3",
        min_symbols="3",
    )
    text = _assert_refused(response, record, "length")
    assert "= 12" in text and "(10)" in text


@pytest.mark.parametrize("length", ["7", "129"])
def test_length_outside_8_to_128_is_a_field_error(personas, record, config, length):
    response = _save(
        login(personas.editor),
        record,
        config,
        length=length,
        min_upper="1",
        min_lower="1",
        min_digits="1",
        min_symbols="1",
    )
    _assert_refused(response, record, "length")


def test_symbols_required_with_an_empty_symbol_set_is_a_field_error(personas, record, config):
    response = _save(login(personas.editor), record, config, min_symbols="2", symbols="")
    assert "symbol" in _assert_refused(response, record, "symbols").lower()


def test_invalid_cron_is_a_field_error(personas, record, config):
    response = _save(login(personas.editor), record, config, schedule_type="CRON", cron="61 * * *")
    _assert_refused(response, record, "cron")


def test_cron_schedule_without_an_expression_is_a_field_error(personas, record, config):
    response = _save(login(personas.editor), record, config, schedule_type="CRON", cron="")
    _assert_refused(response, record, "cron")


def test_configuration_whose_application_lacks_the_folder_says_what_to_share(personas, record):
    app = Application.objects.create(name="Other App")
    gateway = Gateway.objects.create(name="other", application=app)
    unshared = make_configuration(personas.folder, gateway, title="Unshared")
    response = _save(login(personas.editor), record, unshared)
    text = _assert_refused(response, record, "configuration")
    assert "“Team” is not shared to the application “Other App”" in text
    assert "an administrator of “Other App” with the Share permission" in text
    assert "must share it, editable" in text


def test_configuration_from_a_folder_the_user_is_not_in_is_a_field_error(personas, record):
    foreign = make_configuration(personas.other_folder, personas.gateway, title="Foreign")
    response = _save(login(personas.editor), record, foreign)
    _assert_refused(response, record, "configuration")


def test_configuration_from_another_folder_is_not_offered(personas, record):
    foreign = make_configuration(personas.other_folder, personas.gateway, title="Foreign")
    html = login(personas.editor).get(_url(record)).content.decode()
    assert foreign.uid not in html


def test_unknown_time_zone_is_a_field_error(personas, record, config):
    response = _save(
        login(personas.editor), record, config, schedule_type="DAILY", tz="Mars/Olympus"
    )
    _assert_refused(response, record, "tz")


def test_invalid_submission_keeps_what_was_typed(personas, record, config):
    response = _save(
        login(personas.editor),
        record,
        config,
        schedule_type="CRON",
        cron="not a cron",
        tz="Europe/Berlin",
        length="77",
        symbols="#$%",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="not a cron"' in html
    assert 'value="77"' in html
    assert 'value="#$%"' in html
    assert '<option value="Europe/Berlin" selected>' in html
    assert '<option value="CRON" selected>' in html
    assert "The settings were not saved" in html


def test_empty_submission_is_refused_without_a_500(personas, record):
    response = login(personas.editor).post(_url(record), {})
    assert response.status_code == 200
    assert {"configuration", "schedule_type", "length"} <= set(_errors(response))
    assert not RotationSettings.objects.filter(pam_user=record).exists()


# --- audit ------------------------------------------------------------------------------------


def _actions(record) -> list[str]:
    return list(
        AuditEvent.objects.filter(
            object_uid=record.uid, action__startswith="rotation_settings"
        ).values_list("action", flat=True)
    )


def test_first_save_is_audited_as_created(personas, record, config):
    _save(login(personas.editor), record, config)
    event = AuditEvent.objects.get(action="rotation_settings.created")
    assert event.object_uid == record.uid
    assert event.actor == personas.editor
    assert event.details["configuration"] == config.uid


def test_second_save_is_audited_as_updated(personas, record, config):
    client = login(personas.editor)
    _save(client, record, config)
    _save(client, record, config, length="40")
    assert _actions(record) == ["rotation_settings.updated", "rotation_settings.created"]


def test_turning_rotation_off_is_audited_as_disabled(personas, record, config):
    client = login(personas.editor)
    _save(client, record, config, schedule_type="DAILY")
    _save(client, record, config, schedule_type="DAILY", enabled=None)
    assert _actions(record)[0] == "rotation_settings.disabled"
    rs = RotationSettings.objects.get(pam_user=record)
    assert not rs.enabled and rs.next_run_at is None


def test_audit_details_hold_no_secret(personas, record, config):
    _save(login(personas.editor), record, config)
    details = AuditEvent.objects.get(action="rotation_settings.created").details
    assert "testing-secret" not in str(details)


def test_saved_next_run_is_in_the_future(personas, record, config):
    _save(login(personas.editor), record, config, schedule_type="CRON", cron="*/5 * * * *")
    rs = RotationSettings.objects.get(pam_user=record)
    assert rs.next_run_at > datetime.now(UTC)


# --- words: the next runs, the configuration's default, field errors (issue 12, 8 and 9) -------


def _next_runs_note(response) -> str:
    html = response.content.decode()
    match = re.search(r'<p class="muted" id="next-runs">(.*?)</p>', html, re.S)
    return match.group(1).strip() if match else ""


def test_error_outside_the_schedule_still_shows_the_next_runs(personas, record, config):
    response = login(personas.editor).post(
        _url(record), _data(config, schedule_type="DAILY", time="06:00", length="3")
    )
    assert "length" in _errors(response)
    assert "Correct the errors above" not in response.content.decode()
    assert len(response.context["upcoming"]) == 5


def test_error_outside_an_on_demand_schedule_says_on_demand(personas, record, config):
    response = login(personas.editor).post(_url(record), _data(config, length="3"))
    assert _next_runs_note(response) == "On demand only."


def test_schedule_error_asks_to_correct_the_schedule(personas, record, config):
    response = login(personas.editor).post(
        _url(record), _data(config, schedule_type="CRON", cron="not a cron")
    )
    assert "cron" in _errors(response)
    assert _next_runs_note(response) == "Correct the schedule above to see the next runs."


def test_day_of_month_error_names_the_field_as_the_page_does(personas, record, config):
    response = _save(
        login(personas.editor),
        record,
        config,
        schedule_type="YEARLY",
        month="FEBRUARY",
        month_day="30",
    )
    text = _assert_refused(response, record, "month_day")
    assert "monthDay" not in text
    assert text.startswith("Day of month must be a whole number from 1 to 29")


def test_configuration_default_says_what_it_is_now(personas, record, config):
    config.default_rotation_schedule = {"type": "DAILY", "time": "05:00", "tz": "UTC"}
    config.save()
    client = login(personas.editor)
    _save(client, record, config, schedule_type="CONFIG_DEFAULT")
    html = client.get(_url(record)).content.decode()
    source = re.search(r'<p id="schedule-source">(.*?)</p>', html, re.S).group(1)
    assert source == (
        "Follows the default schedule of configuration “AWS IAM Configuration”, which is now: "
        "Daily at 05:00 (UTC)"
    )


def test_configuration_default_on_demand_says_so(personas, record, config):
    response = login(personas.editor).post(
        _url(record), _data(config, schedule_type="CONFIG_DEFAULT", preview="1")
    )
    assert _next_runs_note(response) == "On demand only (the configuration’s default)."


def test_own_schedule_has_no_configuration_default_line(personas, record, config):
    response = login(personas.editor).post(
        _url(record), _data(config, schedule_type="DAILY", preview="1")
    )
    assert 'id="schedule-source"' not in response.content.decode()


# --- RUN_ONCE: Keeper's one-time schedule ---------------------------------------------------------


def _select_value(html: str, name: str) -> str:
    select = re.search(rf'<select name="{name}".*?</select>', html, re.S).group(0)
    match = re.search(r'<option value="([^"]*)"[^>]*selected', select)
    return match.group(1) if match else ""


def test_the_form_offers_once_with_a_date_and_time(personas, record):
    html = login(personas.editor).get(_url(record)).content.decode()
    assert '<option value="RUN_ONCE">Once, at a date and time</option>' in html
    assert re.search(r'<input type="datetime-local" name="once_at"', html)


def test_a_stored_run_once_is_shown_as_stored(personas, record, config):
    RotationSettings.objects.create(
        pam_user=record,
        configuration=config,
        schedule={"type": "RUN_ONCE", "time": "2031-05-01T09:00:00", "tz": "Europe/Berlin"},
    )
    html = login(personas.editor).get(_url(record)).content.decode()
    assert _select_value(html, "schedule_type") == "RUN_ONCE"
    assert _select_value(html, "tz") == "Europe/Berlin"
    assert re.search(r'<input type="datetime-local" name="once_at" value="2031-05-01T09:00"', html)
    assert re.findall(r'<time datetime="([^"]+)"', _upcoming(html)) == ["2031-05-01T07:00:00+00:00"]


def _upcoming(html: str) -> str:
    return re.search(r'<div class="upcoming".*?</div>', html, re.S).group(0)


def _next_runs_note_or_list(html: str) -> str:
    match = re.search(r'<p class="muted" id="next-runs">(.*?)</p>', html, re.S)
    return match.group(1) if match else ""


def test_saving_a_run_once_stores_it_and_its_one_run(personas, record, config):
    response = _save(
        login(personas.editor),
        record,
        config,
        schedule_type="RUN_ONCE",
        once_at="2031-05-01T09:00",
        tz="Etc/UTC",
    )
    assert response.status_code == 302
    rs = RotationSettings.objects.get(pam_user=record)
    assert rs.schedule == {"type": "RUN_ONCE", "time": "2031-05-01T09:00:00", "tz": "Etc/UTC"}
    assert rs.next_run_at == datetime(2031, 5, 1, 9, 0, tzinfo=UTC)


def test_preview_of_a_run_once_shows_the_single_run(personas, record, config):
    response = login(personas.editor).post(
        _url(record),
        _data(config, schedule_type="RUN_ONCE", once_at="2031-05-01T09:00", tz="UTC", preview="1"),
    )
    assert response.context["upcoming"] == [datetime(2031, 5, 1, 9, 0, tzinfo=UTC)]
    assert not RotationSettings.objects.filter(pam_user=record).exists()


def test_a_run_once_in_the_past_is_a_field_error_saying_so(personas, record, config):
    before = _snapshot(record)
    response = _save(
        login(personas.editor),
        record,
        config,
        schedule_type="RUN_ONCE",
        once_at="2020-05-01T09:00",
        tz="UTC",
    )
    assert response.status_code == 200
    [error] = _errors(response)["once_at"]
    assert error.startswith("This date and time has already passed (it is now ")
    assert _snapshot(record) == before


@pytest.mark.parametrize(
    ("once_at", "words"),
    [
        ("", "Enter the date and time of the one run."),
        ("2031-02-30T09:00", 'must be a date and time as "YYYY-MM-DDTHH:MM:SS"'),
        ("tomorrow", 'must be a date and time as "YYYY-MM-DDTHH:MM:SS"'),
    ],
)
def test_a_bad_run_once_date_is_a_field_error(personas, record, config, once_at, words):
    response = _save(
        login(personas.editor), record, config, schedule_type="RUN_ONCE", once_at=once_at
    )
    assert words in " ".join(_errors(response)["once_at"])
    assert not RotationSettings.objects.filter(pam_user=record).exists()


def test_a_passed_run_once_saved_unchanged_says_its_run_has_passed(personas, record, config):
    RotationSettings.objects.create(
        pam_user=record,
        configuration=config,
        schedule={"type": "RUN_ONCE", "time": "2020-05-01T09:00:00", "tz": "UTC"},
    )
    html = login(personas.editor).get(_url(record)).content.decode()
    assert _next_runs_note_or_list(html).strip() == (
        "None: its one run has passed (Once on 2020-05-01 at 09:00 (UTC))."
    )


# --- a stored schedule that no longer reads (issue 13: croniter-era Quartz cron) -------------------


INVALID_CRON = {"type": "CRON", "cron": "0 0 3 ? * 2L,6L", "tz": "UTC"}


def test_a_stored_schedule_that_no_longer_reads_is_shown_as_invalid(personas, record, config):
    RotationSettings.objects.create(pam_user=record, configuration=config, schedule=INVALID_CRON)
    response = login(personas.editor).get(_url(record))
    assert response.status_code == 200
    html = response.content.decode()
    problem = re.search(r'id="stored-schedule-problem">(.*?)</p>', html, re.S).group(1)
    assert problem.startswith("The stored schedule is invalid and must be chosen again: ")
    assert "day-of-week" in problem
    assert _select_value(html, "schedule_type") == "CRON"
    assert 'value="0 0 3 ? * 2L,6L"' in html
    assert (
        _next_runs_note_or_list(html).strip() == "None: the stored schedule is invalid (see above)."
    )


def test_saving_an_invalid_stored_schedule_unchanged_is_refused(personas, record, config):
    RotationSettings.objects.create(pam_user=record, configuration=config, schedule=INVALID_CRON)
    client = login(personas.editor)
    data = form_values(client.get(_url(record)).content.decode(), "rotation-settings-form")
    response = client.post(_url(record), data)
    assert response.status_code == 200
    assert "cron" in _errors(response)
    assert RotationSettings.objects.get(pam_user=record).schedule == INVALID_CRON


def test_a_stored_type_the_form_cannot_show_must_be_chosen(personas, record, config):
    RotationSettings.objects.create(
        pam_user=record, configuration=config, schedule={"type": "HOURLY", "time": "00:05"}
    )
    client = login(personas.editor)
    html = client.get(_url(record)).content.decode()
    assert '<option value="" selected>— the stored schedule is invalid: choose one —' in html
    response = client.post(_url(record), form_values(html, "rotation-settings-form"))
    assert response.status_code == 200
    assert "schedule_type" in _errors(response)
    assert RotationSettings.objects.get(pam_user=record).schedule["type"] == "HOURLY"
