"""After the password is confirmed, the reveal that asked for it happens at once: the person
lands on the record page with the password shown (audited, as any reveal), without pressing
Reveal again. Only the reveal that was asked for, by the same session, within minutes; a visit
to the record page without confirming forgets it."""

from __future__ import annotations

import time

import pytest

from tests.conftest import PASSWORD
from tests.security.conftest import CURRENT_PASSWORD, OLDER_PASSWORD
from tests.security.test_reauth import stale
from vault import revealed
from vault.audit import REVEALED_ALONGSIDE
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db


def reveals() -> int:
    """Reveals asked for (the world's may-be-live password shown alongside is not one)."""
    events = AuditEvent.objects.filter(action="password.revealed")
    return sum(e.details.get("what") != REVEALED_ALONGSIDE for e in events)


def confirm(client, next_url: str):
    return client.post("/account/confirm/", {"password": PASSWORD, "next": next_url}, follow=True)


def test_reveal_after_confirming_shows_the_password_at_once(vault_world):
    record = vault_world.record
    client = stale(vault_world.client("viewer"))
    asked = client.post(f"/records/{record.uid}/reveal/")
    assert asked["Location"].startswith("/account/confirm/")
    assert reveals() == 0
    page = confirm(client, f"/records/{record.uid}/")
    html = page.content.decode()
    assert f'id="password-value">{CURRENT_PASSWORD}<' in html
    assert page.redirect_chain[-1] == (f"/records/{record.uid}/", 302)
    assert reveals() == 1
    actors = set(
        AuditEvent.objects.filter(action="password.revealed").values_list("actor", flat=True)
    )
    assert actors == {vault_world.personas.viewer.pk}
    # Once: the next visit shows it masked and reveals nothing.
    assert CURRENT_PASSWORD not in client.get(f"/records/{record.uid}/").content.decode()
    assert reveals() == 1


def test_history_reveal_after_confirming_shows_that_version_at_once(vault_world):
    record, version = vault_world.record, vault_world.version
    client = stale(vault_world.client("editor"))
    client.post(f"/records/{record.uid}/versions/{version.uid}/reveal/")
    page = confirm(client, f"/records/{record.uid}/")
    assert f'<code class="secret revealed" data-version="{version.uid}">{OLDER_PASSWORD}<' in (
        page.content.decode()
    )
    assert reveals() == 1


def test_visiting_the_record_page_without_confirming_forgets_the_reveal(vault_world):
    record = vault_world.record
    client = stale(vault_world.client("viewer"))
    client.post(f"/records/{record.uid}/reveal/")
    assert CURRENT_PASSWORD not in client.get(f"/records/{record.uid}/").content.decode()
    # Confirming later (for anything) reveals nothing by itself.
    assert CURRENT_PASSWORD not in confirm(client, f"/records/{record.uid}/").content.decode()
    assert reveals() == 0


def test_the_asked_reveal_expires(vault_world, monkeypatch):
    record = vault_world.record
    client = stale(vault_world.client("viewer"))
    client.post(f"/records/{record.uid}/reveal/")
    later = time.time() + revealed.ASK_SECONDS + 1
    monkeypatch.setattr("vault.revealed.time.time", lambda: later)
    assert CURRENT_PASSWORD not in confirm(client, f"/records/{record.uid}/").content.decode()
    assert reveals() == 0


def test_a_copy_that_asked_for_the_password_reveals_nothing_after_confirming(vault_world):
    record = vault_world.record
    client = stale(vault_world.client("viewer"))
    response = client.post(f"/records/{record.uid}/reveal/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert CURRENT_PASSWORD not in confirm(client, f"/records/{record.uid}/").content.decode()
    assert reveals() == 0


def test_another_records_page_does_not_take_the_asked_reveal(vault_world):
    from tests.conftest import make_pam_user

    record = vault_world.record
    other = make_pam_user(record.folder, "OtherUser", password="Other-Passw0rd!")
    client = stale(vault_world.client("viewer"))
    client.post(f"/records/{record.uid}/reveal/")
    client.post("/account/confirm/", {"password": PASSWORD, "next": f"/records/{other.uid}/"})
    assert "Other-Passw0rd!" not in client.get(f"/records/{other.uid}/").content.decode()
    assert reveals() == 0
