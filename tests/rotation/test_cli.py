"""`pam rotation ...`, `pam action rotate`, `pam gateway list`, and rotation in `pam import`."""

from __future__ import annotations

import json
from unittest import mock

import pytest

from rotation import engine
from rotation.models import Rotation, RotationSettings
from tests.conftest import make_configuration, make_pam_user
from tests.rotation import candidate_states as states
from tests.rotation.conftest import make_settings
from vault.cli import call_pam
from vault.models import AuditEvent, PamUser, PasswordVersion

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
        "method",
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
    [row] = json.loads(out)["gateways"]
    assert row["gateway_name"] == "default" and row["status"] == "OFFLINE"


def test_get_shows_a_possibly_live_password_masked_unless_unmasked(world):
    record = world.user()
    rotation = engine.rotation_request(record=record, trigger="cli")
    rotation = engine.rotation_claim_with_pending(rotation_id=rotation.pk)
    pending = engine.rotation_write_ahead(rotation=rotation)
    Rotation.objects.filter(pk=rotation.pk).update(status=Rotation.FAILED, pending_may_be_live=True)
    code, out, _ = call_pam("get", record.uid, "--format", "json")
    [candidate] = json.loads(out)["candidates"]
    assert candidate["password"] == "********"
    code, out, _ = call_pam("get", record.uid, "--format", "json", "--unmask")
    [candidate] = json.loads(out)["candidates"]
    assert (candidate["rotation"], candidate["password"]) == (rotation.uid, pending)


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


# --- pam get: every candidate; pam rotation resolve --------------------------------------------


@pytest.fixture
def rotatable(personas):
    record = make_pam_user(personas.folder, "Cand", password="Current-Passw0rd!")
    make_settings(record, make_configuration(personas.folder, personas.gateway))
    return record


def _candidates(record, *extra: str) -> list[dict]:
    code, out, err = call_pam("get", record.uid, "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out).get("candidates", [])


def _snapshot(record) -> tuple:
    return (
        PamUser.objects.get(pk=record.pk).password_enc,
        list(Rotation.objects.order_by("pk").values()),
        PasswordVersion.objects.count(),
        list(AuditEvent.objects.values_list("action", flat=True)),
    )


def test_get_lists_every_candidate_newest_first_masked(rotatable):
    oldest = states.may_be_live(rotatable, ago=600)
    older = states.may_be_live(rotatable, ago=300)
    running = states.being_set(rotatable, ago=5)
    found = _candidates(rotatable)
    assert [(c["rotation"], c["kind"], c["status"], c["resolvable"]) for c in found] == [
        (running.uid, "being_set", "running", False),
        (older.uid, "may_be_live", "failed", True),
        (oldest.uid, "may_be_live", "failed", True),
    ]
    assert {c["password"] for c in found} == {"********"}
    assert found[0]["since"] == running.created_at.isoformat()
    assert found[0]["note"] == "being set now — AWS may already hold it"
    assert not AuditEvent.objects.filter(action="password.revealed").exists()


def test_get_unmask_reveals_every_candidate_and_audits_each_as_cli(rotatable):
    older = states.may_be_live(rotatable, ago=300, pending="Older-Pending-Passw0rd!")
    running = states.being_set(rotatable, pending="Running-Pending-Passw0rd!")
    found = _candidates(rotatable, "--unmask")
    assert [c["password"] for c in found] == [
        "Running-Pending-Passw0rd!",
        "Older-Pending-Passw0rd!",
    ]
    events = AuditEvent.objects.filter(action="password.revealed", actor_kind="cli")
    assert sorted(e.details.get("rotation", "") for e in events) == sorted(
        ["", older.uid, running.uid]  # the current password, then each candidate
    )


def test_get_table_lists_candidates_without_their_secrets(rotatable):
    rotation = states.being_set(rotatable, pending="Table-Pending-Passw0rd!")
    code, out, _ = call_pam("get", rotatable.uid)
    assert code == 0
    assert rotation.uid in out and "being_set" in out
    assert "Table-Pending-Passw0rd!" not in out


def test_get_without_candidates_has_no_candidates_key(rotatable):
    code, out, _ = call_pam("get", rotatable.uid, "--format", "json")
    assert "candidates" not in json.loads(out)


@pytest.mark.parametrize("keep", ["pending", "current"])
def test_rotation_resolve_settles_a_candidate_as_the_record_page_does(rotatable, keep):
    rotation = states.may_be_live(rotatable, pending="Adopted-Passw0rd!")
    code, out, err = call_pam(
        "rotation", "resolve", "--record", rotatable.uid, "--rotation", rotation.uid, "--keep", keep
    )
    assert (code, err) == (0, "")
    assert lines(out) == [{"record": rotatable.uid, "rotation": rotation.uid, "kept": keep}]
    expected = "Adopted-Passw0rd!" if keep == "pending" else "Current-Passw0rd!"
    assert PamUser.objects.get(pk=rotatable.pk).get_secret("password") == expected
    rotation.refresh_from_db()
    assert rotation.resolved_at is not None and not rotation.has_secret("pending_password")
    event = AuditEvent.objects.get(action="rotation.resolved")
    assert (event.actor_kind, event.details) == ("cli", {"rotation": rotation.uid, "kept": keep})
    if keep == "pending":
        assert PasswordVersion.objects.filter(pam_user=rotatable).first().source == "resolution"
    assert _candidates(rotatable) == []


def test_rotation_resolve_leaves_the_other_candidates(rotatable):
    older = states.may_be_live(rotatable, ago=300)
    newer = states.may_be_live(rotatable, ago=100)
    args = ("--record", rotatable.uid, "--rotation", older.uid, "--keep", "current")
    assert call_pam("rotation", "resolve", *args)[0] == 0
    assert [c["rotation"] for c in _candidates(rotatable)] == [newer.uid]


def _bad_resolve_cases(record, personas):
    """(rotation uid to pass, what the error says) for each way a resolve must be refused."""
    running = states.being_set(record)
    resolved = states.may_be_live(record, ago=400)
    engine.rotation_resolve(rotation=resolved, use_pending=False)
    succeeded = states.plain(record, status=Rotation.SUCCEEDED, ago=500)
    other = make_pam_user(personas.folder, "OtherCand")
    RotationSettings.objects.create(
        pam_user=other, configuration=record.rotation_settings.configuration
    )
    elsewhere = states.may_be_live(other)
    return {
        "running": (
            running.uid,
            f"rotation {running.uid} is running: its password is being set now",
        ),
        "resolved": (resolved.uid, "has nothing left to resolve"),
        "succeeded": (succeeded.uid, "has nothing left to resolve"),
        "another record's": (elsewhere.uid, f"record {record.uid} has no rotation {elsewhere.uid}"),
        "unknown": ("no-such-rotation", f"record {record.uid} has no rotation no-such-rotation"),
    }


def test_rotation_resolve_refuses_what_it_cannot_resolve_and_changes_nothing(rotatable, personas):
    cases = _bad_resolve_cases(rotatable, personas)
    for name, (rotation_uid, says) in cases.items():
        before = _snapshot(rotatable)
        code, out, err = call_pam(
            "rotation",
            "resolve",
            "--record",
            rotatable.uid,
            "--rotation",
            rotation_uid,
            "--keep",
            "pending",
        )
        assert (code, out) == (1, ""), name
        assert len(err.splitlines()) == 1 and err.startswith("pam: error: "), name
        assert says in err, (name, err)
        assert _snapshot(rotatable) == before, name


def test_rotation_resolve_of_an_unknown_record_is_one_error_line(rotatable):
    rotation = states.may_be_live(rotatable)
    before = _snapshot(rotatable)
    code, out, err = call_pam(
        "rotation", "resolve", "--record", "nope", "--rotation", rotation.uid, "--keep", "current"
    )
    assert (code, out, err) == (
        1,
        "",
        'pam: error: no PAM User with uid nope or title "nope" (see `pam list`)\n',
    )
    assert _snapshot(rotatable) == before


@pytest.mark.parametrize(
    "args",
    [
        ("--keep", "both"),
        ("--keep", "PENDING"),
        (),  # --keep is required
    ],
)
def test_rotation_resolve_usage_errors_exit_2_with_one_line(rotatable, args):
    rotation = states.may_be_live(rotatable)
    before = _snapshot(rotatable)
    code, out, err = call_pam(
        "rotation", "resolve", "--record", rotatable.uid, "--rotation", rotation.uid, *args
    )
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and err.startswith("pam: error: ")
    assert _snapshot(rotatable) == before


# --- pam action rotate when the broker refuses after the commit -------------------------------


@pytest.mark.django_db(transaction=True)
def test_action_rotate_says_queued_when_the_broker_refuses_after_commit(rotatable, caplog):
    broker_down = ConnectionError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")
    with mock.patch("rotation.dispatch.async_task", side_effect=broker_down) as enqueue:
        code, out, err = call_pam("action", "rotate", "--record", rotatable.uid)
    enqueue.assert_called_once()
    rotation = Rotation.objects.get(pam_user=rotatable)
    assert code == 0
    assert lines(out) == [{"record": rotatable.uid, "rotation": rotation.uid, "status": "queued"}]
    [warning] = err.splitlines()
    assert warning.startswith("pam: warning: ")
    assert "queued" in warning and "within a minute" in warning and "ConnectionError" in warning
    assert rotation.status == Rotation.QUEUED
    assert "did not take" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_action_rotate_of_a_folder_offers_the_broker_one_message_when_it_refuses(personas):
    config = make_configuration(personas.folder, personas.gateway)
    for n in range(5):
        make_settings(make_pam_user(personas.folder, f"Many{n}"), config)
    with mock.patch("rotation.dispatch.async_task", side_effect=OSError("refused")) as enqueue:
        code, out, err = call_pam("action", "rotate", "--folder", personas.folder.uid)
    assert code == 0
    assert enqueue.call_count == 1  # the others would fail the same way, each after a timeout
    assert {r["status"] for r in lines(out)} == {"queued"}
    assert "5 of these rotations" in err and len(err.splitlines()) == 1
    assert Rotation.objects.filter(status=Rotation.QUEUED).count() == 5
