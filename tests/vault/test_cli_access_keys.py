"""`pam get UID --format json [--unmask]`: a PAM User's access key (`access_key_id`,
`secret_access_key` masked as the password is) and, from the rotation app, the key a rotation
holds (`pending_access_key_id`)."""

from __future__ import annotations

import json

import pytest

from rotation.models import Rotation
from tests.conftest import make_configuration
from vault import services
from vault.cli import MASK, call_pam
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PENDING_ID = "AKIAPENDINGKEY000001"


@pytest.fixture
def keyed(personas):
    return services.pam_user_create(
        folder=personas.folder,
        title="AWS user: Alice",
        login="Alice",
        distinguished_name="arn:aws:iam::123456789012:user/Alice",
        password="Old-Passw0rd!",
        access_key=(KEY_ID, SECRET),
    )


def _get(record, *flags: str) -> dict:
    code, out, err = call_pam("get", record.uid, "--format", "json", *flags)
    assert code == 0, err
    return json.loads(out)


def test_get_masks_the_secret_access_key_as_the_password(keyed):
    data = _get(keyed)
    assert data["access_key_id"] == KEY_ID
    assert data["secret_access_key"] == MASK == data["password"]
    assert not AuditEvent.objects.filter(action="password.revealed").exists()


def test_get_unmask_shows_the_secret_and_audits_it(keyed):
    data = _get(keyed, "--unmask")
    assert data["secret_access_key"] == SECRET
    events = AuditEvent.objects.filter(action="password.revealed", actor_kind="cli")
    assert {e.details.get("what") for e in events} == {"password", "access_secret_key"}
    key_event = events.get(details__what="access_secret_key")
    assert key_event.details["access_key_id"] == KEY_ID
    assert SECRET not in json.dumps(key_event.details)


def test_a_record_without_an_access_key_has_empty_keys(record):
    data = _get(record, "--unmask")
    assert data["access_key_id"] == "" and data["secret_access_key"] == ""
    assert "pending_access_key_id" not in data


def test_the_table_format_masks_the_secret_too(keyed):
    code, out, _ = call_pam("get", keyed.uid)
    assert code == 0
    assert KEY_ID in out and SECRET not in out


def _rotation(record, personas, **kw) -> Rotation:
    config = make_configuration(personas.folder, personas.gateway)
    return Rotation.objects.create(
        pam_user=record, configuration=config, gateway_name="default", trigger="cli", **kw
    )


def test_pending_access_key_id_while_a_rotation_holds_a_new_key(keyed, personas):
    _rotation(keyed, personas, status=Rotation.RUNNING, pending_access_key_id=PENDING_ID)
    assert _get(keyed)["pending_access_key_id"] == PENDING_ID


def test_pending_access_key_id_of_a_failed_rotation_whose_key_may_be_live(keyed, personas):
    _rotation(
        keyed, personas, status=Rotation.FAILED, pending_access_key_id=PENDING_ID,
        pending_may_be_live=True,
    )  # fmt: skip
    assert _get(keyed)["pending_access_key_id"] == PENDING_ID


@pytest.mark.parametrize(
    "kw",
    [
        {"status": Rotation.SUCCEEDED, "pending_access_key_id": PENDING_ID},
        {"status": Rotation.FAILED, "pending_access_key_id": PENDING_ID},
        {"status": Rotation.RUNNING, "pending_access_key_id": ""},
    ],
)
def test_no_pending_access_key_id_when_no_rotation_holds_one(keyed, personas, kw):
    _rotation(keyed, personas, **kw)
    assert "pending_access_key_id" not in _get(keyed)
