"""Reveals are audited and limited per person (REVEAL_RATE_LIMIT): over the limit the vault
answers 429 with a message, reveals nothing, and records the refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.security.conftest import CURRENT_PASSWORD
from vault.models import AuditEvent
from vault.security import parse_rate

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def three_per_minute(settings):
    settings.REVEAL_RATE_LIMIT = "3/1m"


def reveal(client, record, **extra):
    return client.post(f"/records/{record.uid}/reveal/", **extra)


def test_each_reveal_is_audited_with_who_and_what(vault_world):
    reveal(vault_world.client("viewer"), vault_world.record)
    # (The world's possibly-live pending password is shown too, with its own event.)
    event = AuditEvent.objects.get(action="password.revealed", details__what="password")
    assert event.actor == vault_world.personas.viewer
    assert event.object_uid == vault_world.record.uid
    assert event.details == {"what": "password"}


def test_reveals_up_to_the_limit_succeed(vault_world):
    client = vault_world.client("viewer")
    for _ in range(3):
        assert reveal(client, vault_world.record).status_code == 302  # to the record page


def test_one_more_reveal_is_refused_with_429_and_reveals_nothing(vault_world):
    client = vault_world.client("viewer")
    for _ in range(3):
        reveal(client, vault_world.record)
    response = reveal(client, vault_world.record)
    assert response.status_code == 429
    html = response.content.decode()
    assert "Too many passwords revealed: at most 3 in 1 minute" in html
    assert CURRENT_PASSWORD not in html
    assert int(response["Retry-After"]) >= 1
    assert (
        AuditEvent.objects.filter(action="password.revealed", details__what="password").count() == 3
    )


def test_the_refusal_says_the_wait_in_minutes_not_hundreds_of_seconds(vault_world, settings):
    settings.REVEAL_RATE_LIMIT = "1/10m"
    client = vault_world.client("viewer")
    reveal(client, vault_world.record)
    response = reveal(client, vault_world.record)
    assert response.status_code == 429
    assert "Try again in 10 minutes." in response.content.decode()
    assert 540 <= int(response["Retry-After"]) <= 601


def test_refusal_is_audited(vault_world):
    client = vault_world.client("viewer")
    for _ in range(4):
        reveal(client, vault_world.record)
    event = AuditEvent.objects.get(action="password.reveal_rate_limited")
    assert event.actor == vault_world.personas.viewer
    assert event.details["limit"] == "3/1m"


def test_copy_over_the_limit_gets_429_json(vault_world):
    client = vault_world.client("viewer")
    for _ in range(3):
        reveal(client, vault_world.record)
    response = reveal(client, vault_world.record, HTTP_ACCEPT="application/json")
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited"
    assert "password" not in response.json()


def test_history_reveals_count_towards_the_same_limit(vault_world):
    client = vault_world.client("editor")
    url = f"/records/{vault_world.record.uid}/versions/{vault_world.version.uid}/reveal/"
    for _ in range(3):
        assert client.post(url).status_code == 302
    assert reveal(client, vault_world.record).status_code == 429


def test_the_limit_is_per_person(vault_world):
    viewer = vault_world.client("viewer")
    for _ in range(3):
        reveal(viewer, vault_world.record)
    assert reveal(vault_world.client("editor"), vault_world.record).status_code == 302


def test_reveals_older_than_the_window_do_not_count(vault_world):
    client = vault_world.client("viewer")
    for _ in range(3):
        reveal(client, vault_world.record)
    AuditEvent.objects.filter(action="password.revealed").update(
        created_at=timezone.now() - timedelta(minutes=2)
    )
    assert reveal(client, vault_world.record).status_code == 302


@pytest.mark.parametrize(
    "text,expected",
    [("20/10m", (20, 600)), ("5/h", (5, 3600)), ("100/30s", (100, 30)), (" 3 / 2h ", (3, 7200))],
)
def test_rate_text(text, expected):
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["", "20", "20/10", "0/1m", "20/0m", "x/1m", "20/10d"])
def test_bad_rate_text_is_refused(text):
    with pytest.raises(ValueError):
        parse_rate(text)
