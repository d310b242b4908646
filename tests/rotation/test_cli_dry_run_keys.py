"""`pam action rotate --dry-run` for the access-key method: the permissions it will need,
asked of AWS without changing anything, and the one it cannot ask."""

from __future__ import annotations

import json

import pytest

from rotation.models import Rotation
from tests.conftest import make_pam_user
from tests.rotation.conftest import make_settings
from tests.rotation.test_aws import _keyed_config, key_emulator  # noqa: F401 - fixture
from vault.cli import call_pam

pytestmark = pytest.mark.django_db


def test_a_dry_run_of_a_key_rotation_lists_each_permission_and_changes_nothing(world):
    record = world.user("KeyUser", console=False, method="iam_access_key")
    keys_before = world.emulator.iam().list_access_keys(UserName="KeyUser")["AccessKeyMetadata"]
    code, out, _ = call_pam("action", "rotate", "--record", record.uid, "--dry-run")
    assert code == 0
    answer = json.loads(out)
    assert answer["ok"] is True and answer["error"] is None
    assert answer["permissions"] == {
        "iam:ListAccessKeys": "ok",
        "iam:UpdateAccessKey": "ok",
        "iam:DeleteAccessKey": "ok",
        "sts:GetCallerIdentity": "ok",
    }
    assert answer["unchecked"] == ["iam:CreateAccessKey"]
    assert not Rotation.objects.exists()
    after = world.emulator.iam().list_access_keys(UserName="KeyUser")["AccessKeyMetadata"]
    assert after == keys_before


def test_a_dry_run_of_a_key_rotation_names_the_missing_permission(personas, key_emulator):  # noqa: F811
    config = _keyed_config(personas, key_emulator.endpoint, *key_emulator.keys["list-only"])
    record = make_pam_user(personas.folder, "KeyUser")
    make_settings(record, config, method="iam_access_key")
    code, out, _ = call_pam("action", "rotate", "--record", record.uid, "--dry-run")
    assert code == 1
    answer = json.loads(out)
    assert answer["ok"] is False
    assert answer["permissions"]["iam:UpdateAccessKey"] == "missing"
    assert answer["permissions"]["iam:ListAccessKeys"] == "ok"
    assert "iam:DeleteAccessKey" in answer["error"]
