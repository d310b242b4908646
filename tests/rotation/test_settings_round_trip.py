"""Open the Password Rotation Settings page and save it without touching anything: the stored
schedule is kept exactly, for every schedule type and key Keeper Commander writes."""

from __future__ import annotations

import pytest

from rotation.models import RotationSettings
from rotation.schedules import normalize_schedule
from tests.conftest import login, make_configuration
from tests.formvalues import form_values

pytestmark = pytest.mark.django_db

# As Commander (or `pam import`) writes them; stored in their canonical form.
COMMANDER_SCHEDULES = [
    {"type": "ON_DEMAND"},
    {"type": "RUN_ONCE", "time": "2026-05-01T09:00:00", "tz": "Etc/UTC"},
    {"type": "RUN_ONCE", "time": "2031-05-01T09:00:00", "tz": "Europe/Berlin"},
    {"type": "RUN_ONCE", "utcTime": "2031-05-01T09:15:30"},
    {"type": "RUN_ONCE", "time": "2000-01-01T00:00:00", "tz": "Etc/UTC", "intervalCount": 1},
    {"type": "DAILY", "time": "17:00:00", "tz": "Asia/Calcutta", "intervalCount": 2},
    {"type": "DAILY", "time": "03:00:00", "tz": "Etc/UTC", "intervalCount": 1, "occurrences": 5},
    {"type": "DAILY", "time": "03:00:30", "tz": "GMT", "intervalCount": 1},
    {"type": "DAILY", "utcTime": "23:59", "intervalCount": 365},
    {"type": "WEEKLY", "utcTime": "15:44", "weekday": "SUNDAY", "intervalCount": 1},
    {"type": "WEEKLY", "time": "08:00", "tz": "EST5EDT", "weekday": "WED", "intervalCount": 3},
    {"type": "MONTHLY_BY_DAY", "time": "02:00", "tz": "Europe/Berlin", "monthDay": 31},
    {"type": "MONTHLY_BY_DAY", "time": "02:00", "monthDay": 15, "intervalCount": 3},
    {"type": "MONTHLY_BY_WEEKDAY", "time": "09:30:00", "weekday": "FRIDAY", "occurrence": "LAST"},
    {
        "type": "MONTHLY_BY_WEEKDAY",
        "time": "09:30",
        "weekday": "MONDAY",
        "occurrence": "SECOND",
        "intervalCount": 2,
    },
    {"type": "YEARLY", "time": "00:00:00", "month": "MAY", "monthDay": 20},
    {"type": "YEARLY", "time": "12:00", "month": 2, "monthDay": 29, "intervalCount": 4},
    {"type": "CRON", "cron": "0 3 * * 1-5", "tz": "UTC"},
    {"type": "CRON", "cron": "0 0 3 ? * MON-FRI", "tz": "America/Chicago"},
    {"type": "CRON", "cron": "0 0/30 9-17 ? * MON,WED,FRI 2027-2030", "tz": "Etc/UTC"},
    {"type": "CRON", "cron": "0 15 10 L-3 * ? *", "tz": "Australia/Sydney"},
    {"type": "CRON", "cron": "0,30 * * * * ?"},
]


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


def _open_and_save(client, record) -> None:
    url = f"/records/{record.uid}/rotation/"
    page = client.get(url)
    assert page.status_code == 200
    data = form_values(page.content.decode(), "rotation-settings-form")
    response = client.post(url, data)
    assert response.status_code == 302, response.context["form"].errors


@pytest.mark.parametrize(
    "written", COMMANDER_SCHEDULES, ids=lambda s: "-".join(str(v) for v in s.values())
)
def test_open_and_save_keeps_the_stored_schedule(personas, record, config, written):
    stored = normalize_schedule(written)
    RotationSettings.objects.create(pam_user=record, configuration=config, schedule=stored)
    _open_and_save(login(personas.editor), record)
    rs = RotationSettings.objects.get(pam_user=record)
    assert rs.schedule == stored
    assert rs.use_configuration_schedule is False


def test_open_and_save_keeps_following_the_configuration(personas, record, config):
    config.default_rotation_schedule = normalize_schedule(
        {"type": "WEEKLY", "time": "04:00", "weekday": "TUESDAY", "intervalCount": 2}
    )
    config.save()
    RotationSettings.objects.create(
        pam_user=record,
        configuration=config,
        schedule={"type": "ON_DEMAND"},
        use_configuration_schedule=True,
    )
    _open_and_save(login(personas.editor), record)
    rs = RotationSettings.objects.get(pam_user=record)
    assert rs.use_configuration_schedule is True
    assert rs.effective_schedule == config.default_rotation_schedule
