"""A failed rotation whose password may be live in AWS: the warning, and resolving it."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from django.test import Client

from rotation import aws, engine
from rotation.models import Rotation
from tests.conftest import login
from vault.models import AuditEvent, PamUser, PasswordVersion

pytestmark = pytest.mark.django_db

INITIAL = "Initial-Passw0rd!"
WARNING = "A password may be live in AWS."
# What the confirmation page posts back to discard the pending password.
CONFIRMED = {"keep": "current", "confirmed": "yes"}


@pytest.fixture(autouse=True)
def no_queue():
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


@pytest.fixture
def failed(world, settings) -> Rotation:
    """A rotation that gave up after an answer that proves nothing: its password may be live."""
    settings.ROTATION_MAX_ATTEMPTS = 1
    record = world.user()
    rotation = engine.rotation_request(record=record, trigger="on_demand")
    lost = aws.AwsTransient("connection closed", "ConnectionClosed", may_have_applied=True)
    with mock.patch("rotation.aws.set_console_password", side_effect=lost):
        assert engine.rotation_run(rotation_id=rotation.pk) == Rotation.FAILED
    rotation.refresh_from_db()
    assert rotation.holds_possibly_live_password
    return rotation


def _url(rotation, record=None) -> str:
    record = record or rotation.pam_user
    return f"/records/{record.uid}/rotations/{rotation.uid}/resolve/"


def _page(client, rotation) -> str:
    return client.get(f"/records/{rotation.pam_user.uid}/").content.decode()


def _snapshot(rotation) -> tuple:
    return (
        PamUser.objects.get(pk=rotation.pam_user_id).password_enc,
        list(Rotation.objects.filter(pk=rotation.pk).values()),
        PasswordVersion.objects.count(),
        list(AuditEvent.objects.values_list("action", flat=True)),
    )


def _password(rotation) -> str:
    return PamUser.objects.get(pk=rotation.pam_user_id).get_secret("password")


# --- the warning ------------------------------------------------------------------------------


def test_editor_sees_the_warning_and_both_choices(personas, failed):
    html = _page(login(personas.editor), failed)
    assert WARNING in html
    assert f'action="{_url(failed)}"' in html
    assert 'name="keep" value="pending"' in html
    assert 'name="keep" value="current"' in html


def test_viewer_sees_the_warning_but_no_choices(personas, failed):
    html = _page(login(personas.viewer), failed)
    assert WARNING in html
    assert 'name="keep"' not in html


def test_warning_never_shows_the_pending_password(personas, failed):
    assert failed.get_secret("pending_password") not in _page(login(personas.editor), failed)


def test_status_poll_carries_the_warning(personas, failed):
    response = login(personas.editor).get(f"/records/{failed.pam_user.uid}/rotation/status/")
    assert WARNING in response.json()["html"]


def test_no_warning_after_a_plain_failure(personas, world):
    record = world.user(console=False)
    rotation = engine.rotation_request(record=record, trigger="on_demand")
    engine.rotation_run(rotation_id=rotation.pk)
    assert WARNING not in _page(login(personas.editor), rotation)


# --- resolving ---------------------------------------------------------------------------------


def test_keep_pending_makes_it_the_current_password(personas, failed):
    pending = failed.get_secret("pending_password")
    response = login(personas.editor).post(_url(failed), {"keep": "pending"}, follow=True)
    assert _password(failed) == pending
    assert "now the current password" in response.content.decode()
    latest = PasswordVersion.objects.filter(pam_user=failed.pam_user).first()
    assert latest.source == "resolution" and latest.get_secret("password") == pending


def test_keep_pending_settles_the_rotation_and_is_audited(personas, failed):
    login(personas.editor).post(_url(failed), {"keep": "pending"})
    failed.refresh_from_db()
    assert failed.resolved_by == personas.editor
    assert not failed.has_secret("pending_password")
    event = AuditEvent.objects.get(action="rotation.resolved")
    assert event.details == {"rotation": failed.uid, "kept": "pending"}


def test_keep_current_asks_for_confirmation_first_and_changes_nothing(personas, failed):
    before = _snapshot(failed)
    response = login(personas.editor).post(_url(failed), {"keep": "current"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Discard the pending password?" in html
    assert "discards the pending one for good" in html
    assert "rotate again instead" in html and "cannot check which one it accepts" in html
    assert f'action="{_url(failed)}"' in html
    assert 'name="confirmed" value="yes"' in html
    assert failed.get_secret("pending_password") not in html
    assert _snapshot(failed) == before


@pytest.mark.parametrize("confirmed", ["", "no", "1"])
def test_only_the_confirmation_pages_answer_discards(personas, failed, confirmed):
    before = _snapshot(failed)
    data = {"keep": "current", "confirmed": confirmed}
    assert login(personas.editor).post(_url(failed), data).status_code == 200
    assert _snapshot(failed) == before


def test_confirming_on_a_resolved_rotation_says_nothing_is_left(personas, failed):
    client = login(personas.editor)
    client.post(_url(failed), {"keep": "pending"})
    before = _snapshot(failed)
    response = client.post(_url(failed), {"keep": "current"}, follow=True)
    assert "nothing left to resolve" in response.content.decode()
    assert _snapshot(failed) == before


def test_the_warning_says_rotating_again_resolves_it(personas, failed):
    html = _page(login(personas.editor), failed)
    assert "Rotating again also resolves it" in html
    assert "no way to test a console password" in html


def test_keep_current_discards_the_pending_password(personas, failed):
    response = login(personas.editor).post(_url(failed), CONFIRMED, follow=True)
    assert _password(failed) == INITIAL
    failed.refresh_from_db()
    assert failed.resolved_at is not None
    assert not failed.has_secret("pending_password")
    assert "Kept the current password" in response.content.decode()
    assert AuditEvent.objects.get(action="rotation.resolved").details["kept"] == "current"


def test_warning_is_gone_after_resolving(personas, failed):
    client = login(personas.editor)
    client.post(_url(failed), CONFIRMED)
    assert WARNING not in _page(client, failed)


def test_resolving_twice_says_there_is_nothing_left(personas, failed):
    client = login(personas.editor)
    client.post(_url(failed), CONFIRMED)
    before = _snapshot(failed)
    response = client.post(_url(failed), {"keep": "pending"}, follow=True)
    assert "nothing left to resolve" in response.content.decode()
    assert _snapshot(failed) == before
    assert _password(failed) == INITIAL


@pytest.mark.parametrize("keep", ["both", "", "PENDING", None])
def test_bad_keep_value_changes_nothing(personas, failed, keep):
    before = _snapshot(failed)
    data = {} if keep is None else {"keep": keep}
    response = login(personas.editor).post(_url(failed), data, follow=True)
    assert response.status_code == 200
    assert "Choose which password to keep." in response.content.decode()
    assert _snapshot(failed) == before


def test_unknown_rotation_changes_nothing(personas, failed):
    before = _snapshot(failed)
    url = f"/records/{failed.pam_user.uid}/rotations/no-such-rotation/resolve/"
    assert login(personas.editor).post(url, {"keep": "pending"}).status_code == 404
    assert _snapshot(failed) == before


def test_rotation_of_another_record_cannot_be_resolved_through_this_one(personas, failed, world):
    other = world.user("OtherUser")
    before = _snapshot(failed)
    response = login(personas.editor).post(_url(failed, record=other), {"keep": "pending"})
    assert response.status_code == 404
    assert _snapshot(failed) == before
    assert PamUser.objects.get(pk=other.pk).get_secret("password") == INITIAL


# --- refused personas -------------------------------------------------------------------------


def test_resolve_rejects_get(personas, failed):
    before = _snapshot(failed)
    assert login(personas.editor).get(_url(failed), {"keep": "pending"}).status_code == 405
    assert _snapshot(failed) == before


def test_viewer_forged_resolve_is_403_and_changes_nothing(personas, failed):
    before = _snapshot(failed)
    assert login(personas.viewer).post(_url(failed), {"keep": "pending"}).status_code == 403
    assert _snapshot(failed) == before


def test_outsider_resolve_is_404_and_changes_nothing(personas, failed):
    before = _snapshot(failed)
    assert login(personas.outsider).post(_url(failed), {"keep": "pending"}).status_code == 404
    assert _snapshot(failed) == before


def test_anonymous_resolve_redirects_to_login_and_changes_nothing(personas, failed):
    before = _snapshot(failed)
    response = Client().post(_url(failed), {"keep": "pending"})
    assert response.status_code == 302 and response.url.startswith("/login/")
    assert _snapshot(failed) == before


def test_resolve_form_from_the_status_poll_carries_a_working_csrf_token(personas, failed):
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.editor)
    html = client.get(f"/records/{failed.pam_user.uid}/rotation/status/").json()["html"]
    (token,) = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    response = client.post(_url(failed), {**CONFIRMED, "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.resolved_at is not None


def test_resolve_without_a_csrf_token_is_refused(personas, failed):
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.editor)
    before = _snapshot(failed)
    assert client.post(_url(failed), {"keep": "pending"}).status_code == 403
    assert _snapshot(failed) == before
