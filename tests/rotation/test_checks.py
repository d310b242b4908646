"""The settings the rotation's safety depends on are checked, and so are stored schedules."""

import itertools

import pytest
from django.core.management import call_command

from rotation.checks import check_rotation_timing, check_stored_schedules, longest_attempt_seconds
from rotation.models import RotationSettings
from tests.conftest import make_configuration, make_pam_user


def test_default_settings_pass(settings):
    assert check_rotation_timing() == []


def test_a_lease_shorter_than_the_longest_aws_attempt_is_reported(settings):
    settings.ROTATION_LEASE_SECONDS = int(longest_attempt_seconds())
    [warning] = check_rotation_timing()
    assert warning.id == "rotation.W001"


def test_a_task_timeout_above_the_redelivery_time_is_an_error(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 300, "retry": 200}
    [error] = check_rotation_timing()
    assert error.id == "rotation.E002"


def test_an_unanswered_window_shorter_than_awss_signature_validity_is_reported(settings):
    settings.ROTATION_UNANSWERED_WINDOW_SECONDS = 60
    [warning] = check_rotation_timing()
    assert warning.id == "rotation.W002"


# --- stored schedules that no longer read (issue 13) ---------------------------------------------

# Accepted by the croniter path before rotation/quartz.py; Quartz refuses each.
CRONITER_ERA = [
    {"type": "CRON", "cron": "0 0 3 ? * 2L,6L", "tz": "UTC"},
    {"type": "CRON", "cron": "0 0 3 1 * MON", "tz": "UTC"},
    {"type": "CRON", "cron": "0 0 3 ? * MON#1,FRI#2", "tz": "UTC"},
]


_names = itertools.count()


def _settings(personas, config, n: int, schedule: dict, **kw) -> list[RotationSettings]:
    made = []
    for _ in range(n):
        record = make_pam_user(personas.folder, f"user-{next(_names)}")
        made.append(
            RotationSettings.objects.create(
                pam_user=record, configuration=config, schedule=schedule, **kw
            )
        )
    return made


@pytest.mark.django_db
def test_stored_schedules_that_read_give_no_warning(personas):
    config = make_configuration(personas.folder, personas.gateway)
    _settings(personas, config, 2, {"type": "CRON", "cron": "0 0 3 ? * MON-FRI", "tz": "UTC"})
    _settings(personas, config, 1, {})
    assert check_stored_schedules(databases=["default"]) == []


@pytest.mark.django_db
def test_records_with_an_unreadable_schedule_are_counted_and_named(personas):
    config = make_configuration(personas.folder, personas.gateway)
    bad = []
    for schedule in CRONITER_ERA:
        bad += _settings(personas, config, 3, schedule)
    _settings(personas, config, 2, {"type": "DAILY", "time": "03:00:00", "tz": "UTC"})
    # Follows the configuration's default: its own schedule is not what runs.
    _settings(personas, config, 1, CRONITER_ERA[0], use_configuration_schedule=True)
    [warning] = check_stored_schedules(databases=["default"])
    assert warning.id == "rotation.W003"
    assert warning.msg.startswith(
        "9 records have a stored rotation settings schedule that no longer reads"
    )
    first = [rs.pam_user.uid for rs in sorted(bad, key=lambda rs: rs.pk)[:5]]
    assert ", ".join(first) + ", and 4 more." in warning.msg
    assert "Password Rotation Settings" in warning.hint


@pytest.mark.django_db
def test_configurations_with_an_unreadable_default_are_counted_and_named(personas):
    good = make_configuration(personas.folder, personas.gateway, title="Good")
    bad = make_configuration(personas.folder, personas.gateway, title="Bad")
    bad.default_rotation_schedule = CRONITER_ERA[1]
    bad.save()
    assert good.default_rotation_schedule == {"type": "ON_DEMAND"}
    [warning] = check_stored_schedules(databases=["default"])
    assert warning.id == "rotation.W004"
    assert warning.msg.startswith(
        "1 configuration has a stored default schedule that no longer reads"
    )
    assert bad.uid in warning.msg and good.uid not in warning.msg


def test_without_a_database_the_check_reads_nothing():
    assert check_stored_schedules(databases=None) == []


@pytest.mark.django_db
def test_manage_py_check_with_the_database_reports_it(personas, capsys):
    config = make_configuration(personas.folder, personas.gateway)
    _settings(personas, config, 1, CRONITER_ERA[0])
    call_command("check", "--database", "default")
    assert "rotation.W003" in capsys.readouterr().err
