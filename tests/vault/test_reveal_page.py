"""The record page around a reveal: a Hide link (a plain link to the record page, which shows
the password masked; static/js/reveal.js hides in place and after REVEAL_AUTO_HIDE_SECONDS),
and Copy on each password history row, audited as a reveal of that version."""

from __future__ import annotations

import re

import pytest

from tests.conftest import login
from tests.vault.test_views_reveal import JSON, PASSWORD, _version, record  # noqa: F401
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db


def revealed_page(client, record) -> str:  # noqa: F811
    client.post(f"/records/{record.uid}/reveal/")
    return client.get(f"/records/{record.uid}/").content.decode()


def test_a_revealed_password_has_a_hide_link_to_the_record_page(personas, record):  # noqa: F811
    client = login(personas.viewer)
    html = revealed_page(client, record)
    assert re.search(
        rf'<a class="button" href="/records/{record.uid}/" data-hide[^>]*>Hide</a>', html
    )
    # Following it shows the password masked (it was shown once) and reveals nothing again.
    again = client.get(f"/records/{record.uid}/").content.decode()
    assert PASSWORD not in again and "data-hide" not in again


def test_the_page_says_after_how_long_it_hides(personas, record, settings):  # noqa: F811
    settings.REVEAL_AUTO_HIDE_SECONDS = 45
    html = revealed_page(login(personas.viewer), record)
    assert 'data-reveal-auto-hide="45"' in html
    assert "js/reveal.js" in html


def test_auto_hide_off_leaves_no_timer(personas, record, settings):  # noqa: F811
    settings.REVEAL_AUTO_HIDE_SECONDS = 0
    assert "data-reveal-auto-hide" not in revealed_page(login(personas.viewer), record)


def test_a_history_row_has_copy_which_is_an_audited_reveal(personas, record):  # noqa: F811
    client = login(personas.editor)
    version = _version(record)
    url = f"/records/{record.uid}/versions/{version.uid}/reveal/"
    html = client.get(f"/records/{record.uid}/").content.decode()
    assert f'data-copy-url="{url}"' in html
    response = client.post(url, **JSON)
    assert response.json() == {"password": PASSWORD}
    event = AuditEvent.objects.get(action="password.revealed")
    assert event.actor == personas.editor
    assert version.uid in str(event.details)


def test_the_viewer_has_no_history_copy(personas, record):  # noqa: F811
    html = login(personas.viewer).get(f"/records/{record.uid}/").content.decode()
    assert "/versions/" not in html
