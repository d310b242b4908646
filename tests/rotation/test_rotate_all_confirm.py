"""Rotate all asks first: its confirmation says how many records it will rotate, how many are
already rotating, how many it skips and why; only a POST confirming that number requests."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from django.test import Client
from django.utils.html import escape

from rotation import engine
from rotation.models import Rotation, RotationBatch
from tests.conftest import login, make_configuration, make_pam_user
from tests.rotation.conftest import make_settings
from vault.models import AuditEvent, PamUser

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture(autouse=True)
def no_queue():
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


@pytest.fixture
def folder_mix(personas):
    """Two records to rotate, one already rotating, and three skipped for two reasons."""
    config = make_configuration(personas.folder, personas.gateway)
    records = {}
    for name in ("Alpha", "Bravo", "Busy", "Off", "Unmanaged", "Bare"):
        records[name] = make_pam_user(personas.folder, name, password="Old-Passw0rd!")
    for name in ("Alpha", "Bravo", "Busy", "Unmanaged"):
        make_settings(records[name], config)
    make_settings(records["Off"], config, enabled=False)
    PamUser.objects.filter(pk=records["Unmanaged"].pk).update(managed=False)
    busy = Rotation.objects.create(
        pam_user=records["Busy"],
        configuration=config,
        gateway_name=personas.gateway.name,
        trigger="on_demand",
        lease_expires_at=engine.lease_deadline(),
    )
    return records, busy


def _url(folder) -> str:
    return f"/folders/{folder.uid}/rotate-all/"


def _snapshot() -> tuple:
    return (
        list(Rotation.objects.order_by("pk").values_list("pk", "status")),
        RotationBatch.objects.count(),
        list(AuditEvent.objects.values_list("action", flat=True)),
    )


def _number(html: str, element_id: str) -> int:
    return int(re.search(rf'id="{element_id}">(\d+)<', html)[1])


def test_confirmation_says_how_many_will_be_rotated_skipped_and_why(personas, folder_mix):
    before = _snapshot()
    html = login(personas.editor).get(_url(personas.folder)).content.decode()

    assert _number(html, "confirm-rotate") == 2
    assert _number(html, "confirm-in-progress") == 1
    assert _number(html, "confirm-skipped") == 3
    assert 'name="confirm" value="2"' in html
    assert "Rotate 2 PAM Users</button>" in html
    assert f"<li><strong>1</strong>: {escape(engine.NOT_MANAGED)}</li>" in html
    assert f"<li><strong>1</strong>: {escape(engine.DISABLED)}</li>" in html
    assert f"<li><strong>1</strong>: {escape(engine.NOT_SET_UP)}</li>" in html
    records, _ = folder_mix
    for name in ("Off", "Unmanaged", "Bare"):
        assert f'href="/records/{records[name].uid}/"' in html
    assert _snapshot() == before


def test_confirmed_rotate_all_does_what_the_confirmation_said(personas, folder_mix):
    records, busy = folder_mix
    client = login(personas.editor)
    client.get(_url(personas.folder))

    response = client.post(_url(personas.folder), {"confirm": "2"})

    batch = RotationBatch.objects.get()
    assert response.status_code == 302
    assert response.url == f"/folders/{personas.folder.uid}/rotate-all/{batch.uid}/"
    new = Rotation.objects.exclude(pk=busy.pk)
    assert {r.pam_user.login for r in new} == {"Alpha", "Bravo"}
    assert set(batch.rotations.all()) == {*new, busy}
    assert len(batch.skipped) == 3
    event = AuditEvent.objects.get(action="rotation.rotate_all")
    assert (event.details["requested"], event.details["skipped"]) == (2, 3)


def test_post_without_confirmation_requests_nothing_and_shows_the_number(personas, folder_mix):
    before = _snapshot()
    response = login(personas.editor).post(_url(personas.folder))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing was requested yet" in html
    assert _number(html, "confirm-rotate") == 2
    assert _snapshot() == before


def test_confirming_a_number_that_changed_requests_nothing_and_says_the_new_one(
    personas, folder_mix
):
    records, _ = folder_mix
    client = login(personas.editor)
    assert 'name="confirm" value="2"' in client.get(_url(personas.folder)).content.decode()
    make_settings(records["Bare"], records["Alpha"].rotation_settings.configuration)
    before = _snapshot()

    response = client.post(_url(personas.folder), {"confirm": "2"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "The folder changed since you looked: Rotate all would now rotate 3." in html
    assert 'name="confirm" value="3"' in html
    assert _snapshot() == before


@pytest.mark.parametrize("confirm", ["", "two", "-1", "2.0", " 2", "\x00"])
def test_malformed_confirmation_requests_nothing(personas, folder_mix, confirm):
    before = _snapshot()
    response = login(personas.editor).post(_url(personas.folder), {"confirm": confirm})
    assert response.status_code == 200
    assert _snapshot() == before


def test_json_answers_the_counts_and_needs_the_confirmation_too(personas, folder_mix):
    client = login(personas.editor)
    assert client.get(_url(personas.folder), **JSON).json() == {
        "rotate": 2,
        "in_progress": 1,
        "skipped": 3,
    }
    before = _snapshot()
    refused = client.post(_url(personas.folder), **JSON)
    assert refused.status_code == 400
    assert refused.json()["error"] == "confirmation_required"
    assert _snapshot() == before
    done = client.post(_url(personas.folder), {"confirm": "2"}, **JSON)
    assert done.status_code == 200 and done.json()["ok"] is True


def test_nothing_to_rotate_offers_no_button(personas):
    make_pam_user(personas.folder, "Bare")
    html = login(personas.editor).get(_url(personas.folder)).content.decode()
    assert _number(html, "confirm-rotate") == 0
    assert "Nothing to rotate" in html
    assert 'name="confirm"' not in html


@pytest.mark.parametrize("persona,status", [("viewer", 403), ("outsider", 404), ("anonymous", 302)])
def test_refused_personas_get_no_confirmation(personas, folder_mix, persona, status):
    client = Client() if persona == "anonymous" else login(getattr(personas, persona))
    before = _snapshot()
    for method in ("get", "post"):
        response = getattr(client, method)(_url(personas.folder), {"confirm": "2"})
        assert response.status_code == status
        if persona == "anonymous":
            assert response.url.startswith("/login/")
    assert _snapshot() == before


def test_the_folder_button_opens_the_confirmation(personas):
    html = login(personas.editor).get(f"/folders/{personas.folder.uid}/").content.decode()
    form = re.search(r'<form method="(\w+)" action="([^"]+)"[^>]*>\s*<button[^>]*rotate-all', html)
    assert form and form.groups() == ("get", _url(personas.folder))
