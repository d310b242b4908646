"""`pam rotation edit --method iam_user|iam_access_key` with the access key's grace periods
(--key-deactivate-after, --key-delete-after), and the method in `pam rotation info|list`."""

from __future__ import annotations

import json

import pytest

from rotation.models import RotationSettings
from tests.conftest import make_configuration
from tests.rotation.conftest import make_settings
from vault.cli import call_pam
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


def _edit(record, *flags: str) -> tuple[int, str, str]:
    return call_pam("rotation", "edit", "--record", record.uid, *flags)


def _snapshot(record) -> tuple:
    return (
        list(RotationSettings.objects.filter(pam_user=record).values()),
        list(AuditEvent.objects.values_list("action", flat=True)),
    )


def test_edit_sets_the_access_key_method_and_grace_periods(record, config):
    code, out, err = _edit(
        record,
        "--config", config.uid,
        "--method", "iam_access_key",
        "--key-deactivate-after", "0",
        "--key-delete-after", "48",
    )  # fmt: skip
    assert code == 0, err
    line = json.loads(out)
    assert line["method"] == "iam_access_key"
    assert line["key_deactivate_after_hours"] == 0
    assert line["key_delete_after_hours"] == 48
    rs = RotationSettings.objects.get(pam_user=record)
    assert (rs.method, rs.key_deactivate_after_hours, rs.key_delete_after_hours) == (
        "iam_access_key",
        0,
        48,
    )
    event = AuditEvent.objects.get(action="rotation_settings.created")
    assert event.actor_kind == "cli"
    assert event.details["method"] == "iam_access_key"
    assert event.details["key_delete_after_hours"] == 48


def test_new_settings_without_a_method_are_the_console_password(record, config):
    code, out, err = _edit(record, "--config", config.uid)
    assert code == 0, err
    assert json.loads(out)["method"] == "iam_user"
    assert "key_deactivate_after_hours" not in json.loads(out)


def test_edit_without_method_flags_keeps_the_method_and_grace(record, config):
    make_settings(
        record, config, method="iam_access_key", key_deactivate_after_hours=5,
        key_delete_after_hours=6,
    )  # fmt: skip
    code, _, err = _edit(record, "--disable")
    assert code == 0, err
    rs = RotationSettings.objects.get(pam_user=record)
    assert (rs.method, rs.key_deactivate_after_hours, rs.key_delete_after_hours) == (
        "iam_access_key",
        5,
        6,
    )
    assert not rs.enabled


def test_method_iam_user_switches_back_to_the_password(record, config):
    make_settings(record, config, method="iam_access_key")
    code, out, err = _edit(record, "--method", "iam_user")
    assert code == 0, err
    assert RotationSettings.objects.get(pam_user=record).method == "iam_user"


def test_rotation_profile_iam_user_is_the_password_method(record, config):
    make_settings(record, config, method="iam_access_key")
    code, _, err = _edit(record, "--rotation-profile", "iam_user")
    assert code == 0, err
    assert RotationSettings.objects.get(pam_user=record).method == "iam_user"


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (("--key-deactivate-after", "-1"), "--key-deactivate-after '-1': must be from 0 to 8760"),
        (("--key-delete-after", "8761"), "--key-delete-after '8761': must be from 0 to 8760"),
        (("--key-delete-after", "two"), "--key-delete-after 'two': must be a whole number"),
        (("--key-deactivate-after", "1.5"), "must be a whole number of hours"),
        (
            ("--rotation-profile", "iam_user", "--method", "iam_access_key"),
            "--rotation-profile iam_user and --method iam_access_key disagree",
        ),
        (("--schedule-only", "--method", "iam_access_key"), "drop --method"),
        (("--schedule-only", "--key-delete-after", "3"), "drop --key-delete-after"),
    ],
)
def test_bad_method_flags_are_one_line_and_change_nothing(record, config, flags, words):
    make_settings(record, config)
    before = _snapshot(record)
    code, out, err = _edit(record, *flags)
    assert code != 0
    assert out == ""
    assert words in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("pam: error:")
    assert _snapshot(record) == before


def test_an_unknown_method_is_refused(record, config):
    before = _snapshot(record)
    code, _, err = _edit(record, "--config", config.uid, "--method", "saas")
    assert code != 0 and "invalid choice" in err
    assert _snapshot(record) == before


def test_the_access_key_method_is_not_held_to_the_account_password_policy(record, config):
    from rotation.passwords import AccountPolicy
    from tests.rotation.test_account_policy import seen_by_a_test

    seen_by_a_test(config, AccountPolicy(minimum_length=40))
    code, _, err = _edit(record, "--config", config.uid, "--complexity", "12,2,2,2,2")
    assert code != 0 and "complexity" in err
    code, _, err = _edit(
        record, "--config", config.uid, "--method", "iam_access_key", "--complexity", "12,2,2,2,2"
    )
    assert code == 0, err


def test_info_and_list_show_the_method(record, config):
    make_settings(
        record, config, method="iam_access_key", key_deactivate_after_hours=1,
        key_delete_after_hours=2,
    )  # fmt: skip
    code, out, err = call_pam("rotation", "info", "--record", record.uid, "--format", "json")
    assert code == 0, err
    info = json.loads(out)
    assert info["method"] == "iam_access_key"
    assert (info["key_deactivate_after_hours"], info["key_delete_after_hours"]) == (1, 2)
    code, out, err = call_pam("rotation", "list", "--format", "json")
    assert code == 0, err
    [row] = json.loads(out)
    assert row["method"] == "iam_access_key"
    code, out, _ = call_pam("rotation", "list")
    assert "METHOD" in out and "iam_access_key" in out


def test_info_of_the_password_method_has_no_grace_periods(record, config):
    make_settings(record, config)
    code, out, _ = call_pam("rotation", "info", "--record", record.uid, "--format", "json")
    info = json.loads(out)
    assert info["method"] == "iam_user"
    assert "key_deactivate_after_hours" not in info
