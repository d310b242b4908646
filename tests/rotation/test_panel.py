"""The rotation panel on a PAM User page (rotation/panel.py, templates/rotation/_panel.html):
what it says about a disabled rotation and a schedule that follows the configuration's."""

from __future__ import annotations

import re

import pytest

from rotation.engine import DISABLED
from rotation.panel import panel_context
from tests.conftest import login, make_configuration
from tests.rotation.conftest import make_settings
from vault.models import FolderMember

pytestmark = pytest.mark.django_db

DAILY = {"type": "DAILY", "time": "03:00", "tz": "Europe/Berlin", "intervalCount": 1}


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


def _page(personas, record) -> str:
    return login(personas.editor).get(f"/records/{record.uid}/").content.decode()


def _fact(html: str, term: str) -> str:
    """The text of the <dd> after <dt>term</dt> in the panel's facts, tags removed."""
    match = re.search(rf"<dt>{re.escape(term)}</dt><dd>(.*?)</dd>", html, re.S)
    assert match, f"no {term!r} in the rotation panel"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def _rotate_button(html: str) -> str:
    (button,) = re.findall(r'<button[^>]*id="rotate-button"[^>]*>.*?</button>', html, re.S)
    return button


# --- rotation disabled ---------------------------------------------------------------------------


def test_disabled_rotation_shows_the_rotate_button_disabled_with_the_reason(
    personas, record, config
):
    make_settings(record, config, schedule=DAILY, enabled=False)
    html = _page(personas, record)
    button = _rotate_button(html)
    assert re.search(r"\sdisabled[\s>]", button)
    described = re.search(r'aria-describedby="([^"]+)"', button).group(1)
    reason = re.search(rf'id="{described}"[^>]*>(.*?)<', html, re.S).group(1)
    assert reason.strip() == DISABLED
    # No form posts a rotation request from a disabled panel.
    assert f'action="/records/{record.uid}/rotate/"' not in html


def test_disabled_rotation_says_so_on_the_next_run_line(personas, record, config):
    make_settings(record, config, schedule=DAILY, enabled=False)
    next_run = _fact(_page(personas, record), "Next run")
    assert next_run == "none: rotation is disabled"
    assert "on demand" not in next_run


def test_enabled_rotation_keeps_an_active_rotate_button(personas, record, config):
    make_settings(record, config)
    html = _page(personas, record)
    assert not re.search(r"\sdisabled[\s>]", _rotate_button(html))
    assert f'action="/records/{record.uid}/rotate/"' in html
    assert _fact(html, "Next run") == "on demand only"


def test_panel_context_gives_the_reason_rotate_is_unavailable(personas, record, config):
    member = FolderMember.objects.get(folder=personas.folder, user=personas.editor)
    rs = make_settings(record, config, enabled=False)
    assert panel_context(record, member)["rotate_unavailable"] == DISABLED
    rs.enabled = True
    rs.save()
    assert panel_context(record, member)["rotate_unavailable"] is None


# --- a schedule that follows the configuration's default -----------------------------------------


def test_inherited_schedule_says_it_follows_the_configurations_default(personas, record, config):
    config.default_rotation_schedule = DAILY
    config.save()
    make_settings(record, config, use_configuration_schedule=True)
    assert _fact(_page(personas, record), "Schedule") == (
        "Follows the configuration’s default, which is now: Daily at 03:00 (Europe/Berlin)"
    )


def test_inherited_on_demand_default_is_not_shown_as_the_records_own(personas, record, config):
    config.default_rotation_schedule = {}
    config.save()
    make_settings(record, config, use_configuration_schedule=True)
    assert _fact(_page(personas, record), "Schedule") == (
        "Follows the configuration’s default, which is now: On demand only"
    )


def test_inherited_schedule_shows_the_configurations_default_as_it_is_now(personas, record, config):
    make_settings(record, config, use_configuration_schedule=True)
    config.default_rotation_schedule = {"type": "CRON", "cron": "0 3 * * *", "tz": "UTC"}
    config.save()
    assert _fact(_page(personas, record), "Schedule") == (
        "Follows the configuration’s default, which is now: Cron 0 3 * * * (UTC)"
    )


def test_own_schedule_is_described_as_it_is(personas, record, config):
    make_settings(record, config, schedule=DAILY)
    assert _fact(_page(personas, record), "Schedule") == "Daily at 03:00 (Europe/Berlin)"
