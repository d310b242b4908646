"""The record form and rotation: editing a password warns that it changes the vault only and
offers to rotate instead; the Generate button asks rotation/generator.py for a password with
the record's rotation complexity (raised to the account policy when known), or the default."""

from __future__ import annotations

import re
import string

import pytest

from rotation.connection import policy_text
from rotation.models import ConnectionTest, Rotation
from rotation.passwords import AWS_SYMBOLS, AccountPolicy, Complexity
from tests.conftest import login, make_configuration
from tests.rotation.conftest import make_settings
from vault.models import AuditEvent, PamUser

pytestmark = pytest.mark.django_db


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


def edit_page(client, record) -> str:
    response = client.get(f"/records/{record.uid}/edit/")
    assert response.status_code == 200
    return response.content.decode()


def warning(html: str) -> str:
    match = re.search(
        r'<div class="msg msg-warning" id="password-vault-only">(.*?)</div>', html, re.S
    )
    assert match, "no vault-only warning on the edit form"
    return match.group(1)


# --- the vault-only warning and Rotate instead ---------------------------------------------------


def test_edit_form_warns_and_offers_rotate_instead(personas, record, config):
    make_settings(record, config)
    text = warning(edit_page(login(personas.editor), record))
    assert "changes the vault only, not AWS" in text
    assert f'action="/records/{record.uid}/rotate/"' in text
    assert "Rotate instead" in text


def test_rotate_instead_requests_a_rotation(personas, record, config):
    make_settings(record, config)
    client = login(personas.editor)
    html = warning(edit_page(client, record))
    action = re.search(r'<form method="post" action="([^"]+)"[^>]*id="rotate-instead-form"', html)
    response = client.post(action[1])
    assert response.status_code == 302
    assert response["Location"] == f"/records/{record.uid}/"
    assert Rotation.objects.filter(pam_user=record, trigger="on_demand").count() == 1


def test_without_rotation_settings_the_warning_points_to_settings(personas, record):
    text = warning(edit_page(login(personas.editor), record))
    assert "changes the vault only, not AWS" in text
    assert "Rotate instead" not in text
    assert f'href="/records/{record.uid}/rotation/"' in text


def test_disabled_rotation_offers_no_rotate_button(personas, record, config):
    make_settings(record, config, enabled=False)
    text = warning(edit_page(login(personas.editor), record))
    assert "Rotate instead" not in text
    assert "once rotation is enabled" in text


def test_the_new_record_form_has_no_warning(personas):
    response = login(personas.editor).get(f"/folders/{personas.folder.uid}/records/new/")
    assert response.status_code == 200
    assert 'id="password-vault-only"' not in response.content.decode()


# --- the password generator ----------------------------------------------------------------------


def classes(password: str) -> dict[str, int]:
    return {
        "upper": sum(c in string.ascii_uppercase for c in password),
        "lower": sum(c in string.ascii_lowercase for c in password),
        "digits": sum(c in string.digits for c in password),
        "symbols": sum(c in AWS_SYMBOLS for c in password),
    }


def generate(client, url: str):
    return client.post(url, HTTP_ACCEPT="application/json")


def test_generator_uses_the_records_rotation_complexity(personas, record, config):
    make_settings(record, config, length=40, min_upper=7, min_lower=6, min_digits=8, min_symbols=9)
    client = login(personas.editor)
    assert f'data-generate-url="/records/{record.uid}/generate-password/"' in edit_page(
        client, record
    )
    response = generate(client, f"/records/{record.uid}/generate-password/")
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    data = response.json()
    password = data["password"]
    assert len(password) == 40
    counts = classes(password)
    assert counts["upper"] >= 7 and counts["lower"] >= 6
    assert counts["digits"] >= 8 and counts["symbols"] >= 9
    assert "rotation complexity" in data["message"]
    # A suggestion only: nothing stored, nothing audited.
    assert PamUser.objects.get(pk=record.pk).get_secret("password") == "Old-Passw0rd!"
    assert not AuditEvent.objects.filter(object_uid=record.uid).exists()


def test_generator_raises_to_the_known_account_policy(personas, record, config):
    make_settings(record, config, length=12, min_upper=1, min_lower=1, min_digits=1, min_symbols=1)
    ConnectionTest.objects.create(
        configuration=config,
        gateway_name="default",
        status=ConnectionTest.SUCCEEDED,
        policy=policy_text(AccountPolicy(minimum_length=30)),
    )
    response = generate(login(personas.editor), f"/records/{record.uid}/generate-password/")
    assert len(response.json()["password"]) == 30
    assert "password policy" in response.json()["message"]


def test_generator_without_settings_uses_the_default(personas, record):
    response = generate(login(personas.editor), f"/records/{record.uid}/generate-password/")
    assert len(response.json()["password"]) == Complexity().length


def test_new_record_form_generates_with_the_default(personas):
    client = login(personas.editor)
    html = client.get(f"/folders/{personas.folder.uid}/records/new/").content.decode()
    url = f"/folders/{personas.folder.uid}/generate-password/"
    assert f'data-generate-url="{url}"' in html
    response = generate(client, url)
    assert response.status_code == 200
    assert len(response.json()["password"]) == Complexity().length


def test_generator_needs_post_and_the_forms_permission(personas, record):
    assert (
        login(personas.editor).get(f"/records/{record.uid}/generate-password/").status_code == 405
    )
    assert (
        generate(login(personas.viewer), f"/records/{record.uid}/generate-password/").status_code
        == 403
    )
    assert (
        generate(login(personas.outsider), f"/records/{record.uid}/generate-password/").status_code
        == 404
    )
    assert (
        generate(
            login(personas.viewer), f"/folders/{personas.folder.uid}/generate-password/"
        ).status_code
        == 403
    )


def test_generator_needs_the_csrf_token(personas, record):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.editor)
    assert generate(client, f"/records/{record.uid}/generate-password/").status_code == 403
