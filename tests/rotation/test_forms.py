"""RotationSettingsForm on its own: schedules, complexity, configuration checks, initial values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rotation.forms import CONFIG_DEFAULT, RotationSettingsForm
from rotation.models import RotationSettings
from rotation.passwords import AWS_SYMBOLS
from tests.conftest import make_configuration
from vault.models import ApplicationFolder, Gateway

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


def _form(personas, record, config, user=None, **changes) -> RotationSettingsForm:
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
        **changes,
    }
    return RotationSettingsForm(data, record=record, user=user or personas.editor)


def test_default_complexity_is_valid_and_kept(personas, record, config):
    form = _form(personas, record, config)
    assert form.is_valid(), form.errors
    assert form.complexity.length == 32
    assert form.complexity.symbols == AWS_SYMBOLS


def test_weekly_schedule_is_normalized_to_keeper_json(personas, record, config):
    form = _form(
        personas,
        record,
        config,
        schedule_type="WEEKLY",
        time="15:44",
        weekday="SUNDAY",
        tz="Europe/Berlin",
    )
    assert form.is_valid(), form.errors
    assert form.schedule == {
        "type": "WEEKLY",
        "time": "15:44:00",
        "tz": "Europe/Berlin",
        "intervalCount": 1,
        "weekday": "SUNDAY",
    }


def test_upcoming_runs_are_five_in_order(personas, record, config):
    form = _form(personas, record, config, schedule_type="DAILY", time="09:00")
    assert form.is_valid(), form.errors
    runs = form.upcoming_runs(now=NOW)
    assert runs == [datetime(2025, 3, 20 + i, 9, 0, tzinfo=UTC) for i in range(1, 6)]


def test_on_demand_has_no_upcoming_runs(personas, record, config):
    form = _form(personas, record, config)
    assert form.is_valid()
    assert form.upcoming_runs(now=NOW) == []


def test_quartz_six_field_cron_is_accepted(personas, record, config):
    form = _form(personas, record, config, schedule_type="CRON", cron="0 30 2 ? * MON-FRI")
    assert form.is_valid(), form.errors
    assert form.schedule["type"] == "CRON"


def test_cron_with_an_impossible_date_is_a_cron_field_error(personas, record, config):
    form = _form(personas, record, config, schedule_type="CRON", cron="0 0 30 2 *")
    assert not form.is_valid()
    assert list(form.errors) == ["cron"]


def test_yearly_day_beyond_the_month_is_a_month_day_error(personas, record, config):
    form = _form(personas, record, config, schedule_type="YEARLY", month="APRIL", month_day="31")
    assert not form.is_valid()
    assert list(form.errors) == ["month_day"]
    assert "30" in form.errors["month_day"][0]


def test_schedule_without_a_time_is_a_time_field_error(personas, record, config):
    form = _form(personas, record, config, schedule_type="DAILY", time="")
    assert not form.is_valid()
    assert list(form.errors) == ["time"]


def test_bad_time_gives_one_error_not_two(personas, record, config):
    form = _form(personas, record, config, schedule_type="DAILY", time="25:00")
    assert not form.is_valid()
    assert form.errors == {"time": ["Enter a valid time."]}


def test_unknown_schedule_type_gives_one_error(personas, record, config):
    form = _form(personas, record, config, schedule_type="HOURLY")
    assert not form.is_valid()
    assert list(form.errors) == ["schedule_type"]
    assert len(form.errors["schedule_type"]) == 1


def test_a_field_the_schedule_type_does_not_use_cannot_block_saving(personas, record, config):
    # The page hides the fields a schedule type does not read; their errors would be invisible.
    form = _form(personas, record, config, schedule_type="ON_DEMAND", interval_count="abc")
    assert form.is_valid(), form.errors


def test_a_field_the_schedule_type_uses_is_still_checked(personas, record, config):
    form = _form(personas, record, config, schedule_type="DAILY", interval_count="abc")
    assert not form.is_valid()
    assert list(form.errors) == ["interval_count"]


def test_symbol_set_with_letters_is_a_symbols_error(personas, record, config):
    form = _form(personas, record, config, symbols="abc")
    assert not form.is_valid()
    assert list(form.errors) == ["symbols"]


def test_no_symbols_needed_accepts_an_empty_symbol_set(personas, record, config):
    form = _form(personas, record, config, min_symbols="0", symbols="")
    assert form.is_valid(), form.errors


def test_read_only_share_is_a_configuration_error_asking_for_editable(personas, record, config):
    ApplicationFolder.objects.filter(folder=personas.folder).update(editable=False)
    form = _form(personas, record, config)
    assert not form.is_valid()
    assert "editable" in form.errors["configuration"][0]


def test_gateway_without_an_application_is_a_configuration_error(personas, record):
    orphan = make_configuration(personas.folder, Gateway.objects.create(name="orphan"))
    form = _form(personas, record, orphan)
    assert not form.is_valid()
    message = form.errors["configuration"][0]
    assert "The gateway “orphan” belongs to no application" in message
    assert "a superuser must give it one" in message


def test_configuration_choices_are_limited_to_the_users_folders(personas, record, config):
    foreign = make_configuration(personas.other_folder, personas.gateway, title="Foreign")
    form = _form(personas, record, config)
    choices = set(form.fields["configuration"].queryset)
    assert config in choices and foreign not in choices


def test_invalid_configuration_default_schedule_is_a_schedule_error(personas, record, config):
    config.default_rotation_schedule = {"type": "WEEKLY", "time": "10:00"}  # no weekday
    config.save()
    form = _form(personas, record, config, schedule_type=CONFIG_DEFAULT)
    assert not form.is_valid()
    assert "default schedule is invalid" in form.errors["schedule_type"][0]


def test_configuration_default_schedule_gives_the_upcoming_runs(personas, record, config):
    config.default_rotation_schedule = {"type": "DAILY", "utcTime": "18:00"}
    config.save()
    form = _form(personas, record, config, schedule_type=CONFIG_DEFAULT)
    assert form.is_valid(), form.errors
    assert form.upcoming_runs(now=NOW)[0] == datetime(2025, 3, 20, 18, 0, tzinfo=UTC)


def test_initial_for_no_settings_is_on_demand_iam_user(personas, record, config):
    assert RotationSettingsForm.initial_for(None) == {
        "method": "iam_user",
        "schedule_type": "ON_DEMAND",
        "tz": "UTC",
    }


def test_initial_for_saved_settings_reproduces_a_valid_form(personas, record, config):
    rs = RotationSettings.objects.create(
        pam_user=record,
        configuration=config,
        schedule={
            "type": "MONTHLY_BY_WEEKDAY",
            "time": "22:30:00",
            "tz": "Europe/Berlin",
            "intervalCount": 1,
            "weekday": "FRIDAY",
            "occurrence": "LAST",
        },
        length=20,
        min_symbols=0,
        symbols="",
        enabled=False,
    )
    initial = RotationSettingsForm.initial_for(rs)
    resubmitted = {k: ("on" if v is True else v) for k, v in initial.items() if v is not False}
    form = RotationSettingsForm(resubmitted, record=record, user=personas.editor)
    assert form.is_valid(), form.errors
    assert form.schedule == rs.schedule
    assert form.cleaned_data["enabled"] is False
    assert form.complexity.length == 20
