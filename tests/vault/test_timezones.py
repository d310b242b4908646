"""Times on the pages are shown in each person's time zone (vault/timezones.py), always with
the zone's name: their saved choice, else their browser's, else UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import login, make_configuration, make_pam_user
from tests.rotation.conftest import make_settings
from vault.models import Preference
from vault.timezones import COOKIE, SESSION_KEY, valid_zone

pytestmark = pytest.mark.django_db

ROTATED = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def rotated_record(personas):
    record = make_pam_user(personas.folder, "Zoned")
    config = make_configuration(personas.folder, personas.gateway)
    make_settings(record, config, last_rotated_at=ROTATED)
    return record


def last_rotated(client, record) -> str:
    html = client.get(f"/records/{record.uid}/").content.decode()
    start = html.index("<dt>Last rotated</dt>")
    return html[start : html.index("</dd>", start)]


def test_without_a_choice_times_are_in_utc_and_say_so(personas, rotated_record):
    assert "2026-01-15 12:00 UTC" in last_rotated(login(personas.editor), rotated_record)


def test_the_browsers_zone_is_used_when_the_person_chose_none(personas, rotated_record):
    client = login(personas.editor)
    client.cookies[COOKIE] = "Europe/Berlin"
    assert "2026-01-15 13:00 CET" in last_rotated(client, rotated_record)


def test_a_chosen_zone_wins_over_the_browsers(personas, rotated_record):
    client = login(personas.editor)
    client.cookies[COOKIE] = "Europe/Berlin"
    session = client.session
    session[SESSION_KEY] = "America/New_York"
    session.save()
    assert "2026-01-15 07:00 EST" in last_rotated(client, rotated_record)


def test_an_unknown_zone_in_the_cookie_falls_back_to_utc(personas, rotated_record):
    client = login(personas.editor)
    client.cookies[COOKIE] = "Mars/Olympus_Mons"
    assert "2026-01-15 12:00 UTC" in last_rotated(client, rotated_record)


@pytest.mark.parametrize("name", ["", None, "../etc/passwd", "Europe/Berlin\x00", 5])
def test_only_known_zone_names_are_valid(name):
    assert valid_zone(name) is None


# --- the person's choice (account page) -------------------------------------------------------


def test_the_account_page_offers_the_time_zone_choice(personas):
    html = login(personas.editor).get("/account/").content.decode()
    assert 'name="time_zone"' in html
    assert "Your browser&#x27;s time zone" in html


def test_choosing_a_zone_keeps_it_and_the_pages_use_it(personas, rotated_record):
    client = login(personas.editor)
    response = client.post("/account/time-zone/", {"time_zone": "Asia/Tokyo"})
    assert response.status_code == 302
    assert Preference.objects.get(user=personas.editor).time_zone == "Asia/Tokyo"
    assert "2026-01-15 21:00 JST" in last_rotated(client, rotated_record)


def test_the_choice_follows_the_person_to_a_new_session(personas, rotated_record):
    Preference.objects.create(user=personas.editor, time_zone="Asia/Tokyo")
    client = login(personas.editor)
    client.cookies[COOKIE] = "Europe/Berlin"  # the browser's, overruled by the choice
    assert "2026-01-15 21:00 JST" in last_rotated(client, rotated_record)


def test_choosing_the_browsers_zone_forgets_the_choice(personas, rotated_record):
    Preference.objects.create(user=personas.editor, time_zone="Asia/Tokyo")
    client = login(personas.editor)
    client.cookies[COOKIE] = "Europe/Berlin"
    assert client.post("/account/time-zone/", {"time_zone": ""}).status_code == 302
    assert Preference.objects.get(user=personas.editor).time_zone == ""
    assert "2026-01-15 13:00 CET" in last_rotated(client, rotated_record)


@pytest.mark.parametrize("bad", ["Mars/Olympus_Mons", "Europe/Berlin\x00", "x" * 500])
def test_an_unknown_zone_is_a_field_error_and_changes_nothing(personas, bad):
    client = login(personas.editor)
    response = client.post("/account/time-zone/", {"time_zone": bad})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Preference.objects.exists()


def test_the_time_zone_choice_refuses_get(personas):
    assert login(personas.editor).get("/account/time-zone/").status_code == 405


def test_the_time_zone_choice_needs_a_signed_in_person(client):
    response = client.post("/account/time-zone/", {"time_zone": "UTC"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not Preference.objects.exists()
