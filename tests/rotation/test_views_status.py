"""Live rotation status (the JSON the page polls), gateway online/offline, and the history."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from rotation import engine
from rotation.models import Rotation
from tests.conftest import login, make_configuration
from tests.rotation.conftest import make_settings
from vault.models import Gateway

pytestmark = pytest.mark.django_db

OFFLINE_TEXT = "is offline"


@pytest.fixture(autouse=True)
def no_queue():
    """Tests run the rotation themselves; nothing goes to django-q2."""
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


@pytest.fixture
def rotatable(personas, record, config):
    make_settings(record, config)
    return record


def _url(record) -> str:
    return f"/records/{record.uid}/rotation/status/"


def _status(client, record) -> dict:
    response = client.get(_url(record), HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def _rotation(record, config, status=Rotation.QUEUED, **kw) -> Rotation:
    return Rotation.objects.create(
        pam_user=record,
        configuration=config,
        gateway_name=config.gateway.name,
        trigger=kw.pop("trigger", "on_demand"),
        status=status,
        **kw,
    )


def _gateway_seen(ago: timedelta | None) -> None:
    Gateway.objects.filter(name="default").update(
        last_seen_at=None if ago is None else timezone.now() - ago
    )


# --- who may see it ----------------------------------------------------------------------------


def test_editor_gets_the_status(personas, rotatable):
    assert login(personas.editor).get(_url(rotatable)).status_code == 200


def test_viewer_may_see_the_status(personas, rotatable, config):
    _rotation(rotatable, config)
    assert _status(login(personas.viewer), rotatable)["label"] == "Queued"


def test_outsider_gets_404_for_the_status(personas, rotatable):
    assert login(personas.outsider).get(_url(rotatable)).status_code == 404


def test_anonymous_is_sent_to_login_from_the_status(personas, rotatable):
    response = Client().get(_url(rotatable))
    assert response.status_code == 302 and response.url.startswith("/login/")


def test_status_rejects_post(personas, rotatable):
    assert login(personas.editor).post(_url(rotatable)).status_code == 405
    assert not Rotation.objects.exists()


def test_record_page_points_the_poller_at_the_status(personas, rotatable):
    html = login(personas.viewer).get(f"/records/{rotatable.uid}/").content.decode()
    assert f'data-status-url="{_url(rotatable)}"' in html
    assert "js/rotation" in html


# --- labels ----------------------------------------------------------------------------------


def test_no_rotation_yet_has_no_status(personas, rotatable):
    data = _status(login(personas.editor), rotatable)
    assert data["status"] is None and data["label"] is None and data["active"] is False


@pytest.mark.parametrize(
    ("status", "label", "active"),
    [
        (Rotation.QUEUED, "Queued", True),
        (Rotation.RUNNING, "Running", True),
        (Rotation.SUCCEEDED, "Succeeded", False),
        (Rotation.FAILED, "Failed", False),
    ],
)
def test_status_labels(personas, rotatable, config, status, label, active):
    _rotation(rotatable, config, status=status)
    data = _status(login(personas.editor), rotatable)
    assert (data["status"], data["label"], data["active"]) == (status, label, active)
    assert f'data-rotation-status="{status}">{label}</span>' in data["html"]


def test_status_follows_the_newest_rotation(personas, rotatable, config):
    _rotation(rotatable, config, status=Rotation.FAILED, error="old failure")
    _rotation(rotatable, config, status=Rotation.QUEUED)
    assert _status(login(personas.editor), rotatable)["label"] == "Queued"


# --- against the emulator -----------------------------------------------------------------------


def _rotate_now(client, record) -> Rotation:
    client.post(f"/records/{record.uid}/rotate/")
    rotation = Rotation.objects.get(pam_user=record, status=Rotation.QUEUED)
    engine.rotation_run(rotation_id=rotation.pk)
    return rotation


def test_successful_rotation_shows_succeeded(personas, world):
    record = world.user()
    client = login(personas.editor)
    _rotate_now(client, record)
    data = _status(client, record)
    assert (data["label"], data["active"], data["error"]) == ("Succeeded", False, "")
    assert "Succeeded" in data["html"]
    assert "Succeeded" in client.get(f"/records/{record.uid}/").content.decode()


def test_failed_rotation_shows_what_to_fix(personas, world):
    record = world.user(console=False)
    client = login(personas.editor)
    _rotate_now(client, record)
    data = _status(client, record)
    assert data["label"] == "Failed"
    assert "console" in data["error"].lower() and "temporary password" in data["error"]
    assert "temporary password" in data["html"]
    page = client.get(f"/records/{record.uid}/").content.decode()
    assert "temporary password" in page


def test_status_never_shows_the_new_password(personas, world):
    record = world.user()
    client = login(personas.editor)
    _rotate_now(client, record)
    record.refresh_from_db()
    assert record.get_secret("password") not in str(_status(client, record))


# --- gateway online / offline --------------------------------------------------------------------


@pytest.mark.parametrize("ago", [None, timedelta(minutes=3)], ids=["never-seen", "3-min-ago"])
def test_queued_rotation_on_an_offline_gateway_says_so(personas, rotatable, config, ago):
    _gateway_seen(ago)
    _rotation(rotatable, config)
    data = _status(login(personas.editor), rotatable)
    assert data["gateway_online"] is False
    assert OFFLINE_TEXT in data["html"]
    assert "default" in data["html"]


def test_queued_rotation_on_an_online_gateway_does_not_say_offline(personas, rotatable, config):
    _gateway_seen(timedelta(seconds=30))
    _rotation(rotatable, config)
    data = _status(login(personas.editor), rotatable)
    assert data["gateway_online"] is True
    assert OFFLINE_TEXT not in data["html"]


def test_finished_rotation_does_not_warn_about_an_offline_gateway(personas, rotatable, config):
    _gateway_seen(None)
    _rotation(rotatable, config, status=Rotation.SUCCEEDED)
    assert OFFLINE_TEXT not in _status(login(personas.editor), rotatable)["html"]


def test_record_page_says_the_gateway_is_offline_while_a_rotation_waits(
    personas, rotatable, config
):
    _gateway_seen(None)
    _rotation(rotatable, config)
    html = login(personas.viewer).get(f"/records/{rotatable.uid}/").content.decode()
    assert OFFLINE_TEXT in html


def test_gateway_just_under_two_minutes_old_is_online(personas, rotatable, config):
    _gateway_seen(timedelta(seconds=110))
    _rotation(rotatable, config)
    assert _status(login(personas.editor), rotatable)["gateway_online"] is True


# --- history ---------------------------------------------------------------------------------


def _rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [row for row in body.split("</tr>") if "<td>" in row]


def test_history_lists_trigger_who_status_and_error(personas, rotatable, config):
    now = timezone.now()
    _rotation(
        rotatable,
        config,
        status=Rotation.SUCCEEDED,
        requested_by=personas.editor,
        created_at=now - timedelta(hours=3),
    )
    _rotation(
        rotatable,
        config,
        status=Rotation.FAILED,
        trigger="scheduled",
        error="AWS refused iam:UpdateLoginProfile",
        created_at=now - timedelta(hours=2),
    )
    _rotation(
        rotatable,
        config,
        status=Rotation.SUCCEEDED,
        trigger="cli",
        requested_by=personas.manager,
        created_at=now - timedelta(hours=1),
    )
    html = login(personas.viewer).get(f"/records/{rotatable.uid}/").content.decode()
    cli, scheduled, on_demand = _rows(html)
    assert "CLI" in cli and "manager" in cli and "Succeeded" in cli
    assert "Scheduled" in scheduled and "system" in scheduled and "Failed" in scheduled
    assert "AWS refused iam:UpdateLoginProfile" in scheduled
    assert "On demand" in on_demand and "editor" in on_demand and "Succeeded" in on_demand


def test_history_shows_the_duration(personas, rotatable, config):
    started = timezone.now() - timedelta(seconds=10)
    _rotation(
        rotatable,
        config,
        status=Rotation.SUCCEEDED,
        started_at=started,
        finished_at=started + timedelta(seconds=1.5),
    )
    (row,) = _rows(_status(login(personas.editor), rotatable)["html"])
    assert "1.50 s" in row


def test_history_of_a_record_never_rotated_is_not_shown(personas, rotatable):
    assert "<caption>Rotations</caption>" not in _status(login(personas.editor), rotatable)["html"]


def test_a_gateway_never_seen_says_so_and_how_to_start_it(personas, record):
    from rotation import engine
    from tests.conftest import login_verified, make_configuration
    from tests.rotation.conftest import make_settings
    from vault.models import Gateway

    never = Gateway.objects.create(name="gw-never", application=personas.application)
    config = make_configuration(personas.folder, never, title="Never seen")
    make_settings(record, config)
    engine.rotation_request(record=record, trigger="on_demand")
    html = login_verified(personas.editor).get(f"/records/{record.uid}/rotation/status/").json()
    assert "is offline and has never been seen" in html["html"]
    assert "python manage.py pam gateway run gw-never" in html["html"]
