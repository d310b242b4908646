"""The record page and every password AWS may hold besides the current one: the rotation
panel names each candidate (never its secret), and Reveal shows each beside the current
password, audited, to whoever may reveal the current one."""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client

from rotation.models import Rotation
from tests.conftest import login, make_configuration
from tests.rotation import candidate_states as states
from tests.rotation.conftest import make_settings
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db

CURRENT = "Old-Passw0rd!"  # the `record` fixture's password
JSON = {"HTTP_ACCEPT": "application/json"}
BEING_SET = "being set now — AWS may already hold it"


@pytest.fixture(autouse=True)
def no_queue():
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


@pytest.fixture
def rotatable(personas, record):
    make_settings(record, make_configuration(personas.folder, personas.gateway))
    return record


@pytest.fixture
def both(rotatable):
    """A failed rotation whose password may be live, and one running now."""
    failed = states.may_be_live(rotatable, ago=300, pending="Maybe-Live-Passw0rd!")
    running = states.being_set(rotatable, ago=5, pending="Being-Set-Passw0rd!")
    return failed, running


def _reveal(client, record, **extra):
    # A page's Reveal is followed to the record page it redirects to (post/redirect/get);
    # Copy (Accept: JSON) is answered at once.
    return client.post(f"/records/{record.uid}/reveal/", follow=not extra, **extra)


def _page(client, record) -> str:
    return client.get(f"/records/{record.uid}/").content.decode()


def _revealed() -> list[dict]:
    return list(
        AuditEvent.objects.filter(action="password.revealed").values_list("details", flat=True)
    )


# --- the panel: every candidate named, no secret ------------------------------------------------


@pytest.mark.parametrize("persona", ["viewer", "editor"])
def test_panel_names_a_running_rotations_password_as_being_set(personas, both, persona):
    failed, running = both
    html = _page(login(getattr(personas, persona)), running.pam_user)
    assert "A new password is being set now." in html
    assert f'data-candidate="{running.uid}"' in html
    assert f'data-candidate="{failed.uid}"' in html
    assert "Being-Set-Passw0rd!" not in html and "Maybe-Live-Passw0rd!" not in html


def test_panel_offers_no_choice_for_a_password_being_set(personas, rotatable):
    running = states.being_set(rotatable)
    html = _page(login(personas.editor), rotatable)
    assert f"/rotations/{running.uid}/resolve/" not in html
    assert 'name="keep"' not in html


def test_panel_offers_the_choice_for_each_may_be_live_password(personas, rotatable):
    older = states.may_be_live(rotatable, ago=600)
    newer = states.may_be_live(rotatable, ago=300)
    html = _page(login(personas.editor), rotatable)
    assert html.count("A password may be live in AWS.") == 2
    assert html.index(newer.uid) < html.index(older.uid)  # newest first
    for rotation in (older, newer):
        assert f'action="/records/{rotatable.uid}/rotations/{rotation.uid}/resolve/"' in html


def test_status_poll_carries_the_being_set_notice(personas, rotatable):
    running = states.being_set(rotatable)
    response = login(personas.viewer).get(f"/records/{rotatable.uid}/rotation/status/")
    html = response.json()["html"]
    assert "A new password is being set now." in html and running.uid in html


# --- Reveal: the current password and every candidate ------------------------------------------


@pytest.mark.parametrize("persona", ["viewer", "editor", "manager"])
def test_reveal_shows_every_candidate_beside_the_current_password(personas, both, persona):
    failed, running = both
    response = _reveal(login(getattr(personas, persona)), running.pam_user)
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="password-value">{CURRENT}<' in html
    assert 'id="revealed-candidates"' in html
    # Newest first, each with its rotation, kind and what it means.
    assert html.index("Being-Set-Passw0rd!") < html.index("Maybe-Live-Passw0rd!")
    assert BEING_SET in html
    assert f"rotation {running.uid}, running" in html
    assert f"rotation {failed.uid}, failed" in html


def test_reveal_audits_the_current_password_and_each_candidate(personas, both):
    failed, running = both
    _reveal(login(personas.viewer), running.pam_user)
    assert sorted(_revealed(), key=lambda d: d.get("rotation", "")) == sorted(
        [
            {"what": "password"},
            {"what": "candidate password", "rotation": failed.uid, "kind": "may_be_live"},
            {"what": "candidate password", "rotation": running.uid, "kind": "being_set"},
        ],
        key=lambda d: d.get("rotation", ""),
    )
    for event in AuditEvent.objects.all():
        assert "Passw0rd" not in str(event.details)
    assert set(AuditEvent.objects.values_list("actor", flat=True)) == {personas.viewer.pk}


def test_reveal_says_how_many_other_passwords_it_shows(personas, both):
    response = _reveal(login(personas.viewer), both[0].pam_user)
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == [
        "Password revealed, with 2 other password(s) AWS may hold. This was recorded in the "
        "audit log."
    ]


def test_reveal_without_candidates_is_as_before(personas, rotatable):
    states.plain(rotatable, status=Rotation.SUCCEEDED)
    response = _reveal(login(personas.viewer), rotatable)
    assert 'id="revealed-candidates"' not in response.content.decode()
    assert _revealed() == [{"what": "password"}]


def test_copy_returns_the_current_password_alone(personas, both):
    response = _reveal(login(personas.viewer), both[0].pam_user, **JSON)
    assert response.json() == {"password": CURRENT}
    assert _revealed() == [{"what": "password"}]


def test_an_undecryptable_candidate_is_shown_as_such_and_the_rest_still_shown(personas, both):
    failed, running = both
    Rotation.objects.filter(pk=failed.pk).update(pending_password_enc="v1:0000:AAAA")
    response = _reveal(login(personas.viewer), running.pam_user)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Being-Set-Passw0rd!" in html and f'id="password-value">{CURRENT}<' in html
    assert "cannot be decrypted" in html
    assert AuditEvent.objects.filter(action="password.reveal_failed").count() == 1


def test_the_page_before_a_reveal_shows_no_candidate_secret(personas, both):
    html = _page(login(personas.editor), both[0].pam_user)
    assert "Being-Set-Passw0rd!" not in html and "Maybe-Live-Passw0rd!" not in html
    assert 'id="revealed-candidates"' not in html


# --- refused ------------------------------------------------------------------------------------


def test_get_of_the_reveal_address_reveals_nothing(personas, both):
    response = login(personas.viewer).get(f"/records/{both[0].pam_user.uid}/reveal/")
    assert response.status_code == 405
    assert "Passw0rd" not in response.content.decode()
    assert _revealed() == []


def test_outsider_reveal_is_404_and_reveals_no_candidate(personas, both):
    response = _reveal(login(personas.outsider), both[0].pam_user)
    assert response.status_code == 404
    assert "Passw0rd" not in response.content.decode()
    assert not AuditEvent.objects.exists()


def test_superuser_outside_the_folder_reveal_is_404(personas, both):
    response = _reveal(login(personas.superuser), both[0].pam_user)
    assert response.status_code == 404
    assert not AuditEvent.objects.exists()


def test_anonymous_reveal_redirects_to_login_and_reveals_nothing(both):
    response = Client().post(f"/records/{both[0].pam_user.uid}/reveal/")
    assert response.status_code == 302 and response.url.startswith("/login/")
    assert not AuditEvent.objects.exists()


def test_enforced_policy_without_reveal_is_403_and_reveals_no_candidate(personas, both, settings):
    settings.VAULT_ENFORCE_POLICIES = True
    response = _reveal(login(personas.editor), both[0].pam_user)
    assert response.status_code == 403
    assert "Passw0rd" not in response.content.decode()
    assert _revealed() == []


def test_enforced_policy_with_reveal_shows_the_candidates(personas, both, settings):
    settings.VAULT_ENFORCE_POLICIES = True
    personas.editor.user_permissions.add(Permission.objects.get(codename="reveal"))
    response = _reveal(login(personas.editor), both[0].pam_user)
    assert response.status_code == 200
    assert "Being-Set-Passw0rd!" in response.content.decode()


def test_a_reveal_showing_candidates_counts_once_against_the_limit(personas, both, settings):
    settings.REVEAL_RATE_LIMIT = "2/1m"
    client = login(personas.viewer)
    record = both[0].pam_user
    assert _reveal(client, record).status_code == 200
    assert _reveal(client, record).status_code == 200  # 6 passwords shown, 2 reveals
    response = _reveal(client, record)
    assert response.status_code == 429
    assert "Passw0rd" not in response.content.decode()
    assert len(_revealed()) == 6
