"""Turning two-factor sign-in on or off signs the person out everywhere else: a session opened
before (perhaps by whoever made the change necessary) must not outlive it. The session that
made the change stays signed in, and nobody else's sessions are touched."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import login, login_verified
from tests.security.test_two_factor import enrol
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db


def signed_in(client: Client) -> bool:
    return client.get("/account/").status_code == 200


def test_turning_two_factor_on_signs_out_the_persons_other_sessions(personas):
    laptop, phone = login(personas.editor), login(personas.editor)
    enrol(laptop)
    assert not signed_in(phone)


def test_turning_two_factor_on_keeps_the_session_that_did_it(personas):
    laptop, _phone = login(personas.editor), login(personas.editor)
    enrol(laptop)
    assert signed_in(laptop)


def test_turning_two_factor_on_leaves_other_peoples_sessions_alone(personas):
    laptop, colleague = login(personas.editor), login(personas.viewer)
    enrol(laptop)
    assert signed_in(colleague)


def test_turning_two_factor_on_records_how_many_sessions_ended(personas):
    laptop, _phone, _tablet = (login(personas.editor) for _ in range(3))
    enrol(laptop)
    event = AuditEvent.objects.get(action="2fa.enabled")
    assert event.details == {"other_sessions_ended": 2}


def test_turning_two_factor_off_signs_out_the_persons_other_sessions(personas):
    laptop, phone = login_verified(personas.editor), login_verified(personas.editor)
    response = laptop.post("/account/2fa/disable/")
    assert response.status_code == 302
    assert not signed_in(phone)
    assert signed_in(laptop)
    event = AuditEvent.objects.get(action="2fa.disabled")
    assert event.details == {"other_sessions_ended": 1}
