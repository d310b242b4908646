"""A PAM User's access key in `pam import` (`access_key_id` and `access_secret_key`, both or
neither; written encrypted with a history entry of kind access_key) and in `pam export`, which
writes them back with the access-key history and the rotation method, so a backup round-trips."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from rotation.models import RotationSettings
from tests.vault.test_importer import EXAMPLE, row_counts
from vault import importer, services
from vault.cli import call_pam
from vault.models import AuditEvent, PamUser, PasswordVersion

pytestmark = pytest.mark.django_db

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
NEW_KEY_ID = "AKIAI44QH8DHBEXAMPLE"
NEW_SECRET = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"


def doc(**user) -> dict:
    """The example document; `user` overrides its one user's keys (None drops a key)."""
    data = copy.deepcopy(EXAMPLE)
    entry = data["users"][0]
    entry.update(user)
    data["users"][0] = {k: v for k, v in entry.items() if v is not None}
    return data


def errors_of(data) -> list[str]:
    with pytest.raises(importer.ImportProblems) as caught:
        importer.import_document(data)
    return caught.value.problems


def _record() -> PamUser:
    return PamUser.objects.get(title="AWS user: TestUser")


def _key_versions(record) -> list[PasswordVersion]:
    return list(record.versions.filter(kind="access_key"))


def test_a_user_with_an_access_key_is_written_encrypted_with_history():
    importer.import_document(doc(access_key_id=KEY_ID, access_secret_key=SECRET))
    record = _record()
    assert record.access_key_id == KEY_ID
    assert record.get_secret("access_secret_key") == SECRET
    assert SECRET not in record.access_secret_key_enc
    [version] = _key_versions(record)
    assert (version.access_key_id, version.source) == (KEY_ID, "import")
    assert version.get_secret("password") == SECRET
    assert SECRET not in json.dumps([e.details for e in AuditEvent.objects.all()])


@pytest.mark.parametrize(
    ("user", "problem"),
    [
        (
            {"access_key_id": KEY_ID},
            "users[0].access_secret_key: required with access_key_id (give both, or neither)",
        ),
        (
            {"access_secret_key": SECRET},
            "users[0].access_key_id: required with access_secret_key (give both, or neither)",
        ),
        ({"access_key_id": "USE_INSTANCE_ROLE", "access_secret_key": SECRET}, "not an access key"),
        ({"access_key_id": "akia0000", "access_secret_key": SECRET}, "not an access key"),
        ({"access_key_id": 12, "access_secret_key": SECRET}, "must be a string, not a number"),
        ({"access_key_id": KEY_ID, "access_secret_key": ""}, "must not be empty"),
        ({"access_key_id": KEY_ID, "access_secret_key": "é" * 3}, "printable ASCII"),
        ({"access_key_id": KEY_ID, "access_secret_key": "x" * 129}, "at most 128"),
    ],
)
def test_a_bad_access_key_is_a_clear_error_and_nothing_is_written(user, problem):
    before = row_counts()
    problems = errors_of(doc(**user))
    assert any(problem in p for p in problems), problems
    assert all(p.startswith("users[0].") for p in problems)
    assert row_counts() == before


def test_reimporting_the_same_key_changes_nothing():
    data = doc(access_key_id=KEY_ID, access_secret_key=SECRET)
    importer.import_document(data)
    before = row_counts()
    importer.import_document(data)
    assert row_counts() == before


def test_a_new_key_replaces_the_stored_one_with_history():
    importer.import_document(doc(access_key_id=KEY_ID, access_secret_key=SECRET))
    importer.import_document(doc(access_key_id=NEW_KEY_ID, access_secret_key=NEW_SECRET))
    record = _record()
    assert record.access_key_id == NEW_KEY_ID
    assert [v.access_key_id for v in _key_versions(record)] == [NEW_KEY_ID, KEY_ID]
    event = AuditEvent.objects.filter(action="record.updated").latest("id")
    assert event.details["fields"] == ["access_key"]


def test_a_key_rotated_away_since_the_file_was_made_is_not_put_back():
    data = doc(access_key_id=KEY_ID, access_secret_key=SECRET)
    importer.import_document(data)
    record = _record()
    # A rotation made a new key since (the engine writes it through this service).
    services.pam_user_set_access_key(
        record=record, access_key_id=NEW_KEY_ID, secret=NEW_SECRET, source="rotation"
    )
    record.save()
    importer.import_document(data)
    record.refresh_from_db()
    assert record.access_key_id == NEW_KEY_ID
    assert record.get_secret("access_secret_key") == NEW_SECRET


def test_leaving_the_key_out_keeps_the_stored_one():
    importer.import_document(doc(access_key_id=KEY_ID, access_secret_key=SECRET))
    importer.import_document(doc())
    assert _record().get_secret("access_secret_key") == SECRET


def test_history_entries_may_be_access_keys():
    history = [
        {"password": "Old-Passw0rd!", "set_at": "2024-05-01T12:00:00+00:00", "source": "manual"},
        {
            "password": SECRET,
            "set_at": "2024-06-01T12:00:00+00:00",
            "source": "rotation",
            "kind": "access_key",
            "access_key_id": KEY_ID,
        },
    ]
    importer.import_document(
        doc(access_key_id=KEY_ID, access_secret_key=SECRET, password_history=history)
    )
    record = _record()
    [version] = _key_versions(record)
    assert version.created_at == datetime(2024, 6, 1, 12, tzinfo=UTC)
    assert version.access_key_id == KEY_ID and version.source == "rotation"
    # The current key is the history's: no second entry for it.
    assert record.versions.count() == 2


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"kind": "ssh"}, "users[0].password_history[0].kind: must be one of password, access_key"),
        ({"kind": "access_key"}, "access_key_id: required when kind is access_key"),
        ({"access_key_id": KEY_ID}, "access_key_id: only with kind access_key"),
        ({"kind": "access_key", "access_key_id": "nope"}, "not an access key ID"),
    ],
)
def test_a_bad_history_kind_is_a_clear_error(entry, problem):
    before = row_counts()
    history = [{"password": SECRET, "set_at": "2024-06-01T12:00:00+00:00", **entry}]
    problems = errors_of(doc(password_history=history))
    assert any(problem in p for p in problems), problems
    assert row_counts() == before


# --- the rotation method in users[].rotation ---------------------------------------------------


def test_the_rotation_method_and_grace_periods_are_imported():
    rotation = {
        "configuration": "AWS IAM Configuration",
        "method": "iam_access_key",
        "key_deactivate_after_hours": 0,
        "key_delete_after_hours": 72,
    }
    importer.import_document(doc(rotation=rotation))
    rs = RotationSettings.objects.get(pam_user=_record())
    assert (rs.method, rs.key_deactivate_after_hours, rs.key_delete_after_hours) == (
        "iam_access_key",
        0,
        72,
    )


@pytest.mark.parametrize(
    ("rotation", "problem"),
    [
        ({"method": "scripts_only"}, "users[0].rotation.method: must be one of"),
        ({"key_deactivate_after_hours": -1}, "key_deactivate_after_hours: must be from 0 to"),
        ({"key_delete_after_hours": "24"}, "key_delete_after_hours: must be a whole number"),
        ({"key_delete_after_hours": 9000}, "key_delete_after_hours: must be from 0 to 8760"),
    ],
)
def test_a_bad_rotation_method_is_a_clear_error(rotation, problem):
    before = row_counts()
    problems = errors_of(doc(rotation={"configuration": "AWS IAM Configuration", **rotation}))
    assert any(problem in p for p in problems), problems
    assert row_counts() == before


# --- pam export --------------------------------------------------------------------------------


def _snapshot() -> dict:
    records = {}
    for record in PamUser.objects.all():
        records[record.title] = (
            record.access_key_id,
            record.get_secret("access_secret_key"),
            record.get_secret("password"),
            sorted(
                (v.created_at, v.kind, v.access_key_id, v.source, v.get_secret("password"))
                for v in record.versions.all()
            ),
        )
    settings = list(
        RotationSettings.objects.values_list(
            "pam_user__title", "method", "key_deactivate_after_hours", "key_delete_after_hours"
        )
    )
    return {"records": records, "settings": settings}


def test_export_round_trips_access_keys_their_history_and_the_method(tmp_path):
    rotation = {
        "configuration": "AWS IAM Configuration",
        "method": "iam_access_key",
        "key_deactivate_after_hours": 3,
        "key_delete_after_hours": 4,
    }
    importer.import_document(
        doc(
            password="Old-Passw0rd!",
            access_key_id=KEY_ID,
            access_secret_key=SECRET,
            rotation=rotation,
        )
    )
    record = _record()
    services.pam_user_update(
        record=record, title=record.title, login=record.login,
        distinguished_name=record.distinguished_name, access_key=(NEW_KEY_ID, NEW_SECRET),
    )  # fmt: skip
    before = _snapshot()
    path = tmp_path / "backup.json"
    code, _, err = call_pam("export", "--output", str(path))
    assert code == 0, err
    written = json.loads(path.read_text())["users"][0]
    assert (written["access_key_id"], written["access_secret_key"]) == (NEW_KEY_ID, NEW_SECRET)
    assert written["rotation"]["method"] == "iam_access_key"
    assert {e.get("kind", "password") for e in written["password_history"]} == {
        "password",
        "access_key",
    }

    PamUser.objects.all().delete()
    code, _, err = call_pam("import", str(path))
    assert code == 0, err
    assert _snapshot() == before


def test_a_record_without_an_access_key_exports_no_key(tmp_path):
    importer.import_document(doc(password="Old-Passw0rd!"))
    path = tmp_path / "backup.json"
    assert call_pam("export", "--output", str(path))[0] == 0
    written = json.loads(path.read_text())["users"][0]
    assert "access_key_id" not in written and "access_secret_key" not in written


def test_keeper_export_says_it_leaves_the_access_key_out(tmp_path):
    importer.import_document(doc(access_key_id=KEY_ID, access_secret_key=SECRET))
    folder = _record().folder
    path = tmp_path / "keeper.json"
    code, _, err = call_pam(
        "export", "--folder", folder.uid, "--output", str(path), "--format", "keeper"
    )
    assert code == 0, err
    assert "its access key is not part of Keeper's format" in err
    assert SECRET not in path.read_text()
