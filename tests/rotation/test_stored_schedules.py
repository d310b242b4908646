"""A stored schedule that no longer reads (issue 13: a 6/7-field cron that the croniter path
accepted and Quartz refuses) is invalid data at rest: the record page says it must be chosen
again, the settings form asks for it, and the scheduler's tick goes on without it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from rotation import scheduler
from rotation.models import RotationSettings
from tests.conftest import login, make_configuration, make_pam_user

pytestmark = pytest.mark.django_db

INVALID_CRON = {"type": "CRON", "cron": "0 0 3 ? * 2L,6L", "tz": "UTC"}
DAILY = {"type": "DAILY", "time": "03:00:00", "tz": "UTC", "intervalCount": 1}


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


def _fact(html: str, term: str) -> str:
    match = re.search(rf"<dt>{re.escape(term)}</dt><dd>(.*?)</dd>", html, re.S)
    assert match, f"no {term!r} in the rotation panel"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def test_the_record_page_says_the_stored_schedule_must_be_chosen_again(personas, record, config):
    RotationSettings.objects.create(pam_user=record, configuration=config, schedule=INVALID_CRON)
    response = login(personas.editor).get(f"/records/{record.uid}/")
    assert response.status_code == 200
    text = _fact(response.content.decode(), "Schedule")
    assert text.startswith("Invalid schedule: The cron expression")
    assert text.endswith(
        "The stored schedule is invalid and must be chosen again in Password Rotation "
        "Settings: the scheduler computes no further runs from it."
    )


def test_a_configuration_default_that_no_longer_reads_is_said_too(personas, record, config):
    config.default_rotation_schedule = INVALID_CRON
    config.save()
    RotationSettings.objects.create(
        pam_user=record, configuration=config, schedule={}, use_configuration_schedule=True
    )
    html = login(personas.editor).get(f"/records/{record.uid}/").content.decode()
    assert 'id="schedule-problem"' in html
    settings_html = login(personas.editor).get(f"/records/{record.uid}/rotation/").content.decode()
    problem = re.search(r'id="stored-schedule-problem">(.*?)</p>', settings_html, re.S).group(1)
    assert problem.startswith("The configuration's default schedule that this record follows")


def test_a_readable_schedule_has_no_such_words(personas, record, config):
    RotationSettings.objects.create(pam_user=record, configuration=config, schedule=DAILY)
    html = login(personas.editor).get(f"/records/{record.uid}/").content.decode()
    assert 'id="schedule-problem"' not in html
    assert _fact(html, "Schedule") == "Daily at 03:00 (UTC)"


def test_the_scheduler_tick_goes_on_past_an_unreadable_schedule(personas, config):
    due = timezone.now() - timedelta(minutes=1)
    bad = RotationSettings.objects.create(
        pam_user=make_pam_user(personas.folder, "Bad"),
        configuration=config,
        schedule=INVALID_CRON,
        next_run_at=due,  # computed under the older rules, when the schedule was saved
    )
    good = RotationSettings.objects.create(
        pam_user=make_pam_user(personas.folder, "Good"),
        configuration=config,
        schedule=DAILY,
        next_run_at=due,
    )
    scheduler.rotation_schedule_due()
    bad.refresh_from_db()
    good.refresh_from_db()
    # No further run is computed from it (and a second tick leaves it alone)...
    assert bad.next_run_at is None
    assert good.next_run_at > timezone.now()
    assert good.pam_user.rotations.filter(trigger="scheduled").count() == 1
    # ...and nothing is queued from it, not even the run planned under the older rules.
    assert not bad.pam_user.rotations.exists()
    scheduler.rotation_schedule_due()
    assert not bad.pam_user.rotations.exists()
