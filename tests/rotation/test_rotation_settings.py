"""Saving rotation settings (rotation/rotation_settings.py): the audit event says which schedule
was chosen, and a schedule that follows the configuration's default is described as such."""

from __future__ import annotations

import pytest

from rotation.passwords import Complexity
from rotation.rotation_settings import rotation_settings_save, schedule_text
from tests.conftest import make_configuration
from tests.rotation.conftest import make_settings
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db

DAILY = {"type": "DAILY", "time": "05:00", "tz": "UTC"}


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


def _save(record, config, **kw):
    return rotation_settings_save(
        record=record,
        configuration=config,
        schedule=kw.pop("schedule", None),
        use_configuration_schedule=kw.pop("use_configuration_schedule", False),
        complexity=Complexity(24, 2, 2, 2, 2),
        enabled=kw.pop("enabled", True),
        actor=None,
        actor_kind="cli",
    )


def _details() -> dict:
    return AuditEvent.objects.filter(action__startswith="rotation_settings").first().details


def test_inherited_schedule_is_audited_as_the_configurations_default_with_its_value(
    personas, record, config
):
    config.default_rotation_schedule = DAILY
    config.save()
    _save(record, config, use_configuration_schedule=True)
    details = _details()
    assert details["schedule"] == "configuration default"
    assert details["configuration_default"] == {
        "type": "DAILY",
        "time": "05:00:00",
        "tz": "UTC",
        "intervalCount": 1,
    }


def test_inherited_empty_default_is_not_audited_as_the_records_own_on_demand(
    personas, record, config
):
    config.default_rotation_schedule = {}
    config.save()
    _save(record, config, use_configuration_schedule=True)
    details = _details()
    assert details["schedule"] == "configuration default"
    assert details["configuration_default"] == {"type": "ON_DEMAND"}


def test_own_schedule_is_audited_as_it_is(personas, record, config):
    _save(record, config, schedule={"type": "ON_DEMAND"})
    details = _details()
    assert details["schedule"] == {"type": "ON_DEMAND"}
    assert "configuration_default" not in details


def test_schedule_text_of_an_inherited_schedule(personas, record, config):
    rs = make_settings(record, config, use_configuration_schedule=True)
    assert schedule_text(rs) == "Follows the configuration’s default, which is now: On demand only"
    config.default_rotation_schedule = {"type": "WEEKLY", "weekday": "MONDAY", "time": "02:00"}
    config.save()
    rs.refresh_from_db()
    assert schedule_text(rs) == (
        "Follows the configuration’s default, which is now: Weekly on Monday at 02:00 (UTC)"
    )


def test_schedule_text_of_an_own_schedule(personas, record, config):
    rs = make_settings(record, config, schedule=DAILY)
    assert schedule_text(rs) == "Daily at 05:00 (UTC)"
