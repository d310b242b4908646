"""`pam rotation ...`, `pam action rotate`, `pam gateway list`, and rotation in `pam import`."""

from __future__ import annotations

import json
from unittest import mock

import pytest

from rotation import engine
from rotation.models import Rotation, RotationSettings
from tests.conftest import make_pam_user
from vault.cli import call_pam
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_rotation_list_json_has_the_documented_keys(world):
    record = world.user()
    code, out, _ = call_pam("rotation", "list", "--format", "json")
    assert code == 0
    [row] = json.loads(out)
    assert row["record"] == record.uid
    assert set(row) == {
        "record",
        "title",
        "login",
        "configuration",
        "schedule",
        "enabled",
        "last_rotated",
        "last_status",
        "next_run",
    }


def test_rotation_edit_sets_a_keeper_schedule_and_complexity(world):
    record = world.user()
    schedule = '{"type":"WEEKLY","utcTime":"15:44","weekday":"SUNDAY","intervalCount":1}'
    code, out, err = call_pam(
        "rotation",
        "edit",
        "--record",
        record.uid,
        "--schedulejson",
        schedule,
        "--complexity",
        "20,3,3,3,3,!@#",
    )
    assert code == 0, err
    rs = RotationSettings.objects.get(pam_user=record)
    assert rs.schedule["type"] == "WEEKLY" and rs.next_run_at is not None
    assert (rs.length, rs.symbols) == (20, "!@#")
    assert AuditEvent.objects.filter(action="rotation_settings.updated").exists()


def test_rotation_edit_creates_settings_for_a_folder_with_config(world, personas):
    make_pam_user(personas.folder, "Second")
    code, out, err = call_pam(
        "rotation",
        "edit",
        "--folder",
        personas.folder.uid,
        "--config",
        world.config.uid,
        "--schedulecron",
        "0 3 * * 1-5",
        "--enable",
    )
    assert code == 0, err
    assert RotationSettings.objects.filter(pam_user__folder=personas.folder).count() == 1
    assert len(lines(out)) == 1


def test_rotation_edit_with_a_bad_schedule_changes_nothing(world):
    record = world.user()
    code, out, err = call_pam(
        "rotation", "edit", "--record", record.uid, "--schedulejson", '{"type":"HOURLY"}'
    )
    assert code == 1
    assert err.startswith("pam: error: schedule:") and "Traceback" not in err
    assert RotationSettings.objects.get(pam_user=record).schedule == {"type": "ON_DEMAND"}


def test_rotation_edit_with_a_bad_complexity_is_one_line(world):
    record = world.user()
    code, _, err = call_pam("rotation", "edit", "--record", record.uid, "--complexity", "6,9,9,9,9")
    assert code == 1 and len(err.strip().splitlines()) == 1


def test_rotation_edit_unknown_record_is_an_error(db):
    code, _, err = call_pam("rotation", "edit", "--record", "nope", "--on-demand")
    assert code == 1 and "no PAM User" in err


@pytest.mark.django_db(transaction=True)
def test_action_rotate_wait_reports_success_per_record(world):
    record = world.user()

    def run_inline(func, rotation_id, **kwargs):
        engine.rotation_run(rotation_id=rotation_id)

    with mock.patch("rotation.dispatch.async_task", side_effect=run_inline):
        code, out, err = call_pam("action", "rotate", "--record", record.uid, "--wait", "10")
    assert code == 0, err
    assert lines(out) == [{"record": record.uid, "status": "succeeded", "error": None}]
    record.refresh_from_db()
    assert record.get_secret("password") == world.aws_password(record.login)


@pytest.mark.django_db(transaction=True)
def test_action_rotate_wait_exits_1_when_a_rotation_fails(world):
    record = world.user(console=False)

    def run_inline(func, rotation_id, **kwargs):
        engine.rotation_run(rotation_id=rotation_id)

    with mock.patch("rotation.dispatch.async_task", side_effect=run_inline):
        code, out, _ = call_pam("action", "rotate", "--record", record.uid, "--wait", "10")
    assert code == 1
    [result] = lines(out)
    assert result["status"] == "failed" and "console" in result["error"].lower()


def test_action_rotate_wait_times_out_with_exit_1(world):
    record = world.user()
    with mock.patch("rotation.dispatch.async_task"):
        code, out, _ = call_pam("action", "rotate", "--record", record.uid, "--wait", "0.3")
    assert code == 1
    assert lines(out)[0]["status"] == "timeout"


def test_action_rotate_dry_run_changes_nothing(world):
    record = world.user()
    code, out, _ = call_pam("action", "rotate", "--record", record.uid, "--dry-run")
    assert code == 0
    assert lines(out) == [{"record": record.uid, "ok": True, "error": None}]
    assert not Rotation.objects.exists()


def test_action_rotate_dry_run_reports_a_wrong_account(world, personas):
    record = make_pam_user(
        personas.folder, "Other", distinguished_name="arn:aws:iam::111111111111:user/Other"
    )
    RotationSettings.objects.create(pam_user=record, configuration=world.config)
    code, out, _ = call_pam("action", "rotate", "--record", record.uid, "--dry-run")
    assert code == 1
    assert "111111111111" in lines(out)[0]["error"]


def test_gateway_list_json(personas):
    code, out, _ = call_pam("gateway", "list", "--format", "json")
    assert code == 0
    [row] = json.loads(out)
    assert row["name"] == "default" and row["online"] is False


def test_get_shows_a_possibly_live_password_masked_unless_unmasked(world):
    record = world.user()
    rotation = engine.rotation_request(record=record, trigger="cli")
    rotation = engine.rotation_claim_with_pending(rotation_id=rotation.pk)
    pending = engine.rotation_write_ahead(rotation=rotation)
    Rotation.objects.filter(pk=rotation.pk).update(status=Rotation.FAILED, pending_may_be_live=True)
    code, out, _ = call_pam("get", record.uid, "--format", "json")
    assert json.loads(out)["pending_password"] == "********"
    code, out, _ = call_pam("get", record.uid, "--format", "json", "--unmask")
    assert json.loads(out)["pending_password"] == pending


def _import_file(tmp_path, rotation: dict) -> str:
    data = {
        "folders": [{"name": "Imported"}],
        "gateways": [{"name": "default"}],
        "configurations": [
            {
                "title": "Cfg",
                "environment": "aws",
                "folder": "Imported",
                "gateway": "default",
                "aws_id": "x",
                "access_key_id": "USE_INSTANCE_ROLE",
                "access_secret_key": "USE_INSTANCE_ROLE",
                "region_names": ["us-east-1"],
                "endpoint_url": "http://127.0.0.1:5055",
                "default_rotation_schedule": {"type": "ON_DEMAND"},
                # USE_INSTANCE_ROLE needs a target scope: the one IAM user below.
                "scope_user_pattern": "U",
            }
        ],
        "users": [
            {
                "title": "U",
                "folder": "Imported",
                "login": "U",
                "password": "",
                "distinguished_name": "arn:aws:iam::123456789012:user/U",
                "rotation": rotation,
            }
        ],
    }
    path = tmp_path / "import.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_import_applies_rotation_settings(db, tmp_path):
    path = _import_file(
        tmp_path,
        {
            "configuration": "Cfg",
            "complexity": "32,5,5,5,5",
            "enabled": True,
            "schedule": {"type": "DAILY", "time": "03:00", "tz": "Europe/Berlin"},
        },
    )
    code, out, err = call_pam("import", path)
    assert code == 0, err
    rs = RotationSettings.objects.get(pam_user__title="U")
    assert rs.schedule["type"] == "DAILY" and rs.configuration.title == "Cfg"
    events = AuditEvent.objects.count()
    assert call_pam("import", path)[0] == 0
    assert AuditEvent.objects.count() == events  # a second import changes nothing


def test_import_reports_rotation_errors_with_their_path_and_writes_nothing(db, tmp_path):
    path = _import_file(
        tmp_path,
        {
            "configuration": "Missing",
            "complexity": "x",
            "schedule": {"type": "HOURLY"},
        },
    )
    code, _, err = call_pam("import", path)
    assert code == 1
    assert "users[0].rotation.configuration:" in err
    assert "users[0].rotation.complexity:" in err
    assert "users[0].rotation.schedule:" in err
    assert not RotationSettings.objects.exists()


def test_action_rotate_dry_run_reports_missing_console_access(world):
    record = world.user(console=False)
    code, out, _ = call_pam("action", "rotate", "--record", record.uid, "--dry-run")
    assert code == 1
    assert "console" in lines(out)[0]["error"].lower()
    assert not Rotation.objects.exists()
