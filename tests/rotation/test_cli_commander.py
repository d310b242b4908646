"""Keeper Commander's command shape for `pam rotation edit|list|info`, `pam action rotate` and
`pam gateway list` (docs/cli.md): each flag of the mapping table through the CLI, lookups by
title, list-form and repeated --schedulejson, `--complexity ""`, the AWS account's policy, and
stderr free of django-q's log lines."""

from __future__ import annotations

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from rotation import engine
from rotation.models import ConnectionTest, Rotation, RotationSettings
from rotation.passwords import AWS_SYMBOLS
from tests.conftest import make_configuration, make_pam_user
from tests.rotation.test_account_policy import DEMO_POLICY, SHORT, seen_by_a_test
from tests.rotation.test_forms import _form
from tests.vault.test_cli_subprocess import (  # noqa: F401 (fixtures)
    EXAMPLE,
    db_file,
    manage,
    migrated_template,
)
from vault.cli import call_pam
from vault.models import AuditEvent, Gateway, PamUser

pytestmark = pytest.mark.django_db

DAILY = '{"type": "DAILY", "time": "03:00", "tz": "Europe/Berlin"}'
WEEKLY = '{"type": "WEEKLY", "utcTime": "15:44", "weekday": "SUNDAY", "intervalCount": 1}'


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def settings_of(record) -> RotationSettings:
    return RotationSettings.objects.get(pam_user=record)


def _state() -> tuple:
    return (
        list(RotationSettings.objects.order_by("pk").values()),
        list(Rotation.objects.order_by("pk").values()),
        list(AuditEvent.objects.values_list("action", flat=True)),
    )


def _refused(args: tuple, says: str) -> list[str]:
    before = _state()
    code, out, err = call_pam(*args)
    assert code != 0 and out == "", (code, out, err)
    got = err.splitlines()
    assert got and all(line.startswith("pam: error: ") for line in got), err
    assert says in err, err
    assert _state() == before
    return got


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway, title="Team AWS")


@pytest.fixture
def record(personas, config):
    record = make_pam_user(personas.folder, "alice", title="Alice")
    RotationSettings.objects.create(pam_user=record, configuration=config, length=24)
    return record


# --- pam rotation edit: each flag ------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, check",
    [
        (("-sj", DAILY), lambda rs: rs.schedule["type"] == "DAILY"),
        (("--schedulejson", WEEKLY), lambda rs: rs.schedule["type"] == "WEEKLY"),
        (("-sj", f"[{DAILY}]"), lambda rs: rs.schedule["tz"] == "Europe/Berlin"),
        (("-sj", "[]"), lambda rs: rs.schedule == {"type": "ON_DEMAND"}),
        (("-sj", DAILY, "-sj", DAILY), lambda rs: rs.schedule["type"] == "DAILY"),
        (("-sc", "0 3 * * 1-5"), lambda rs: rs.schedule["cron"] == "0 3 * * 1-5"),
        (("-sc", "0 0 3 ? * MON-FRI"), lambda rs: rs.schedule["cron"] == "0 0 3 ? * MON-FRI"),
        (
            ("--schedulecron", "0 3 * * *", "--tz", "Asia/Tokyo"),
            lambda rs: rs.schedule["tz"] == "Asia/Tokyo",
        ),
        (("-od",), lambda rs: rs.schedule == {"type": "ON_DEMAND"}),
        (("--on-demand",), lambda rs: rs.schedule == {"type": "ON_DEMAND"}),
        (("-sf",), lambda rs: rs.use_configuration_schedule),
        (("--schedule-config",), lambda rs: rs.use_configuration_schedule),
        (("-x", "20,3,3,3,3,!@#"), lambda rs: (rs.length, rs.symbols) == (20, "!@#")),
        (("--complexity", "30,4,4,4,4"), lambda rs: (rs.length, rs.symbols) == (30, AWS_SYMBOLS)),
        (("-d",), lambda rs: not rs.enabled),
        (("--disable",), lambda rs: not rs.enabled),
        (("-f", "-d"), lambda rs: not rs.enabled),
        (("--force", "-x", "20,3,3,3,3"), lambda rs: rs.length == 20),
        (("-so", "-sj", DAILY), lambda rs: rs.schedule["type"] == "DAILY" and rs.length == 24),
        (("--schedule-only", "-od"), lambda rs: rs.schedule == {"type": "ON_DEMAND"}),
    ],
)
def test_rotation_edit_takes_commanders_flags(record, flags, check):
    code, out, err = call_pam("rotation", "edit", "-r", record.uid, *flags)
    assert code == 0, err
    assert check(settings_of(record)), settings_of(record).__dict__
    assert lines(out)[0]["record"] == record.uid


def test_rotation_edit_enable_flags(record):
    RotationSettings.objects.filter(pam_user=record).update(enabled=False)
    for flag in ("-e", "--enable"):
        RotationSettings.objects.filter(pam_user=record).update(enabled=False)
        assert call_pam("rotation", "edit", "--record", record.uid, flag)[0] == 0
        assert settings_of(record).enabled


@pytest.mark.parametrize("flag", ["-c", "--config", "-iac", "--iam-aad-config"])
def test_rotation_edit_finds_the_configuration_by_title(personas, flag):
    other = make_configuration(personas.folder, personas.gateway, title="Second AWS")
    record = make_pam_user(personas.folder, "bob", title="Bob")
    code, _, err = call_pam("rotation", "edit", "-r", "Bob", flag, "second aws")
    assert code == 0, err
    assert settings_of(record).configuration == other


def test_rotation_edit_rotation_profile_iam_user_is_what_every_record_is(personas, config):
    record = make_pam_user(personas.folder, "carol", title="Carol")
    code, _, err = call_pam("rotation", "edit", "-r", "Carol", "-c", config.uid, "-rp", "iam_user")
    assert code == 0, err
    assert settings_of(record).configuration == config


def test_rotation_edit_folder_by_name(personas, config, record):
    second = make_pam_user(personas.folder, "dave", title="Dave")
    code, out, err = call_pam("rotation", "edit", "-fd", "Team", "-c", "Team AWS", "-sj", DAILY)
    assert code == 0, err
    assert {settings_of(r).schedule["type"] for r in (record, second)} == {"DAILY"}
    assert len(lines(out)) == 2


@pytest.mark.parametrize(
    "flags, says",
    [
        (("-rp", "general"), "--rotation-profile general is not supported"),
        (("-g", "default"), "-g is not supported: the gateway is the configuration's"),
        (("--resource", "X"), "--resource is not supported"),
        (("-a", "X"), "-a is not supported"),
        (("--saas-config-uid", "X"), "--saas-config-uid is not supported"),
        (("-sj", DAILY, "-sj", WEEKLY), "2 different schedules given"),
        (("-sj", f"[{DAILY}, {WEEKLY}]"), "2 different schedules given"),
        (("-sc", "0 3 * * *", "-sc", "0 4 * * *"), "give one --schedulecron"),
        (("-sj", '[{"type": "HOURLY"}]'), "schedule: Unknown schedule type"),
        (("-sj", "[1"), "schedule: The schedule is not valid JSON"),
        (("-x", "6,9,9,9,9"), "complexity:"),
        (("-so", "-x", "20,3,3,3,3"), "--schedule-only changes the schedule only"),
        (("-c", "nope"), 'no PAM Configuration with uid nope or title "nope"'),
    ],
)
def test_rotation_edit_refuses_and_changes_nothing(record, flags, says):
    _refused(("rotation", "edit", "-r", record.uid, *flags), says)


def test_rotation_edit_schedule_only_needs_existing_settings(personas, config):
    record = make_pam_user(personas.folder, "erin", title="Erin")
    _refused(("rotation", "edit", "-r", "Erin", "-so", "-od"), "no rotation settings yet")
    assert not RotationSettings.objects.filter(pam_user=record).exists()


def test_rotation_edit_schedule_only_on_a_folder_skips_records_without_enabled_settings(
    personas, record
):
    bare = make_pam_user(personas.folder, "frank", title="Frank")
    code, out, err = call_pam("rotation", "edit", "-fd", "Team", "-so", "-sj", DAILY)
    assert code == 0, err
    assert [row["record"] for row in lines(out)] == [record.uid]
    assert not RotationSettings.objects.filter(pam_user=bare).exists()


def test_complexity_empty_clears_to_the_default(record):
    assert settings_of(record).length == 24
    code, _, err = call_pam("rotation", "edit", "-r", record.uid, "--complexity", "")
    assert code == 0, err
    rs = settings_of(record)
    assert (rs.length, rs.min_upper, rs.min_lower, rs.min_digits, rs.min_symbols) == (
        32,
        5,
        5,
        5,
        5,
    )
    assert rs.symbols == AWS_SYMBOLS


def test_complexity_below_the_accounts_policy_is_refused_as_the_form_refuses_it(
    personas, config, record
):
    seen_by_a_test(config, DEMO_POLICY)
    form = _form(personas, record, config, **SHORT)
    [form_says] = form.errors["length"]
    [line] = _refused(("rotation", "edit", "-r", record.uid, "-x", "12,2,2,2,2"), form_says)
    assert line == f"pam: error: {record.uid}: complexity: {form_says}"
    assert call_pam("rotation", "edit", "-r", record.uid, "-x", "20,2,2,2,2")[0] == 0


def test_moving_to_a_configuration_whose_policy_the_complexity_misses_is_refused(
    personas, config, record
):
    RotationSettings.objects.filter(pam_user=record).update(length=12, min_upper=2)
    strict = make_configuration(personas.folder, personas.gateway, title="Strict")
    seen_by_a_test(strict, DEMO_POLICY)
    _refused(("rotation", "edit", "-r", record.uid, "-c", "Strict"), "requires at least 20")


def test_a_failed_connection_test_says_nothing_about_the_policy(config, record):
    when = timezone.now() - timedelta(seconds=5)
    ConnectionTest.objects.create(
        configuration=config,
        gateway_name="default",
        status=ConnectionTest.FAILED,
        created_at=when,
    )
    assert call_pam("rotation", "edit", "-r", record.uid, "-x", "12,2,2,2,2")[0] == 0


# --- lookups -----------------------------------------------------------------------------------


def test_an_ambiguous_record_title_lists_each_match(personas, config):
    first = make_pam_user(personas.folder, "g1", title="Shared")
    second = make_pam_user(personas.other_folder, "g2", title="Shared")
    got = _refused(("rotation", "info", "-r", "Shared"), '"Shared" matches more than one PAM User')
    assert got[1:] == [
        f"pam: error: {first.uid}  Shared",
        f"pam: error: {second.uid}  Shared",
    ]
    code, out, _ = call_pam("rotation", "info", "-r", "Elsewhere/Shared", "--format", "json")
    assert code == 0 and json.loads(out)["record_uid"] == second.uid


def test_an_unknown_record_or_folder_is_one_error_line(personas):
    [line] = _refused(("action", "rotate", "-r", "Nobody"), "no PAM User")
    assert line == 'pam: error: no PAM User with uid Nobody or title "Nobody" (see `pam list`)'
    _refused(("action", "rotate", "-f", "Nowhere"), 'no folder with uid Nowhere or name "Nowhere"')


def test_a_configuration_is_not_found_as_a_record(personas, config):
    _refused(("rotation", "info", "-r", "Team AWS"), "no PAM User")


# --- pam rotation info / list --------------------------------------------------------------------


def test_rotation_info_json_has_commanders_keys(personas, config, record):
    code, out, err = call_pam("rotation", "info", "--record-uid", "Alice", "--format", "json")
    assert code == 0, err
    info = json.loads(out)
    assert {k: info[k] for k in list(info)[:14]} == {
        "status": "RRS_CONTROLLER_DOWN",  # the gateway has never been seen
        "ready_to_rotate": False,
        "pam_config_uid": config.uid,
        "node_id": None,
        "gateway_name": "default",
        "gateway_uid": personas.gateway.uid,
        "admin_resource_uid": None,
        "password_complexity": f"24,5,5,5,5,{AWS_SYMBOLS}",
        "password_complexity_detail": {
            "length": 24,
            "caps": 5,
            "lowercase": 5,
            "digits": 5,
            "special": 5,
            "specialChars": AWS_SYMBOLS,
        },
        "schedule_type": "manual",
        "schedule_data": None,
        "use_default_rotation_schedule": False,
        "disabled": False,
        "script_name": None,
    }
    assert info["record_uid"] == record.uid


def test_rotation_info_of_an_online_scheduled_record(personas, config, record):
    Gateway.objects.filter(pk=personas.gateway.pk).update(
        last_seen_at=timezone.now(), reported_online=True
    )
    assert call_pam("rotation", "edit", "-r", "Alice", "-sj", DAILY)[0] == 0
    code, out, _ = call_pam("rotation", "info", "-r", record.uid, "--format", "json")
    info = json.loads(out)
    assert (info["status"], info["ready_to_rotate"], info["schedule_type"]) == (
        "RRS_ONLINE",
        True,
        "scheduled",
    )
    assert info["schedule_data"] == [settings_of(record).schedule]
    # What info prints, -sj takes back.
    assert (
        call_pam("rotation", "edit", "-r", "Alice", "-sj", json.dumps(info["schedule_data"]))[0]
        == 0
    )


def test_rotation_info_of_an_unmanaged_record_is_not_ready(personas, config, record):
    Gateway.objects.filter(pk=personas.gateway.pk).update(
        last_seen_at=timezone.now(), reported_online=True
    )
    assert call_pam("rotation", "edit", "-r", "Alice", "-sj", DAILY)[0] == 0
    PamUser.objects.filter(pk=record.pk).update(managed=False)
    _, out, _ = call_pam("rotation", "info", "-r", record.uid, "--format", "json")
    info = json.loads(out)
    assert (info["ready_to_rotate"], info["managed"]) == (False, False)


def test_rotation_info_without_settings_says_no_rotation(personas):
    make_pam_user(personas.folder, "henry", title="Henry")
    code, out, _ = call_pam("rotation", "info", "-r", "Henry", "--format", "json")
    info = json.loads(out)
    assert code == 0
    assert (info["status"], info["ready_to_rotate"]) == ("RRS_NO_ROTATION", False)


def test_rotation_info_table_is_one_line_per_field(record):
    code, out, _ = call_pam("rotation", "info", "-r", "Alice")
    assert code == 0
    assert any(line.split()[:2] == ["status", "RRS_CONTROLLER_DOWN"] for line in out.splitlines())


def test_rotation_list_verbose_adds_gateway_and_configuration(personas, config, record):
    code, out, _ = call_pam("rotation", "list", "-v", "--format", "json")
    [row] = json.loads(out)
    assert (row["gateway"], row["gateway_uid"], row["configuration_title"]) == (
        "default",
        personas.gateway.uid,
        "Team AWS",
    )
    code, out, _ = call_pam("rotation", "list", "--verbose")
    assert "GATEWAY UID" in out.splitlines()[0]


# --- pam action rotate ---------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["-r", "--record-uid", "--record"])
def test_action_rotate_finds_the_record_by_title(record, flag):
    with mock.patch("rotation.dispatch.async_task"):
        code, out, err = call_pam("action", "rotate", flag, "Alice")
    assert code == 0, err
    [row] = lines(out)
    assert (row["record"], row["status"]) == (record.uid, "queued")


@pytest.mark.parametrize("flag", ["-f", "--folder", "-fd"])
def test_action_rotate_a_folder_by_name(personas, record, flag):
    with mock.patch("rotation.dispatch.async_task"):
        code, out, err = call_pam("action", "rotate", flag, "Team")
    assert code == 0, err
    assert [row["record"] for row in lines(out)] == [record.uid]


@pytest.mark.parametrize("flag", ["-n", "--dry-run"])
def test_action_rotate_dry_run_short_flag(world, flag):
    record = world.user()
    code, out, _ = call_pam("action", "rotate", "-r", record.title, flag)
    assert code == 0
    assert lines(out) == [{"record": record.uid, "ok": True, "error": None}]
    assert not Rotation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_action_rotate_wait_with_commanders_record_flag(world):
    record = world.user()

    def run_inline(func, rotation_id, **kwargs):
        engine.rotation_run(rotation_id=rotation_id)

    with mock.patch("rotation.dispatch.async_task", side_effect=run_inline):
        code, out, err = call_pam("action", "rotate", "-r", record.title, "--wait", "10")
    assert code == 0, err
    assert lines(out) == [{"record": record.uid, "status": "succeeded", "error": None}]
    assert PamUser.objects.get(pk=record.pk).get_secret("password") == world.aws_password(
        record.login
    )


@pytest.mark.parametrize(
    "flag", ["--self-destruct", "--email-config", "--send-email", "--email-message"]
)
def test_action_rotate_refuses_what_sends_passwords_out(record, flag):
    _refused(("action", "rotate", "-r", record.uid, flag, "x"), f"{flag} is not supported")


def test_action_cancel_and_resolve_take_r(record):
    _refused(("action", "cancel", "-r", "Alice"), "has no queued rotation to cancel")
    _refused(
        ("rotation", "resolve", "-r", "Alice", "--rotation", "x", "--keep", "current"),
        f"record {record.uid} has no rotation x",
    )


# --- pam gateway list ----------------------------------------------------------------------------


def test_gateway_list_json_has_commanders_shape(personas):
    Gateway.objects.create(name="spare")
    Gateway.objects.filter(pk=personas.gateway.pk).update(
        last_seen_at=timezone.now(), reported_online=True
    )
    code, out, err = call_pam("gateway", "list", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert list(result) == ["gateways"]
    # Commander's order: by status (OFFLINE before ONLINE), then application name.
    offline, online = result["gateways"]
    assert {k: online[k] for k in list(online)[:7]} == {
        "ksm_app_name": "Rotation App",
        "ksm_app_uid": personas.application.uid,
        "ksm_app_accessible": True,
        "gateway_name": "default",
        "gateway_uid": personas.gateway.uid,
        "status": "ONLINE",
        "gateway_version": "",
    }
    assert (offline["gateway_name"], offline["status"], offline["ksm_app_name"]) == (
        "spare",
        "OFFLINE",
        None,
    )


def test_gateway_list_online_only_counts_them(personas):
    Gateway.objects.create(name="spare")
    Gateway.objects.filter(pk=personas.gateway.pk).update(
        last_seen_at=timezone.now(), reported_online=True
    )
    for flag in ("-o", "--online"):
        code, out, _ = call_pam("gateway", "list", flag, "--format", "json")
        result = json.loads(out)
        assert [g["gateway_name"] for g in result["gateways"]] == ["default"]
        assert result["gateway_counts"] == {"online": 1, "offline": 1, "total": 2}
    code, out, _ = call_pam("gateway", "list", "-o")
    assert "Online: 1, Offline: 1, Total: 2" in out


def test_gateway_list_verbose_and_force(personas):
    code, out, err = call_pam("gateway", "list", "-f", "-v", "--format", "json")
    assert code == 0, err
    [row] = json.loads(out)["gateways"]
    assert row["allow_instance_role"] is False
    code, out, _ = call_pam("gateway", "list", "--force", "--verbose")
    assert code == 0 and "CONFIGURATIONS" in out.splitlines()[0]


def test_gateway_list_without_gateways_says_so_as_commander_does(db):
    code, out, _ = call_pam("gateway", "list", "--format", "json")
    assert json.loads(out) == {
        "gateways": [],
        "message": "This Enterprise does not have Gateways yet.",
    }


# --- stderr: no django-q log line ----------------------------------------------------------------


@pytest.mark.parametrize("flag", ["-r", "--record-uid"])
def test_action_rotate_in_a_real_process_writes_nothing_on_stderr(db_file, tmp_path, flag):  # noqa: F811
    document = json.loads(json.dumps(EXAMPLE))
    document["applications"] = [
        {"name": "Rotation App", "folders": ["AWS IAM Users"], "gateways": ["default"]}
    ]
    document["configurations"][0] |= {
        "access_key_id": "AKIAEXAMPLE",
        "access_secret_key": "example-secret",
    }
    path = tmp_path / "import.json"
    path.write_text(json.dumps(document))
    assert manage(db_file, "pam", "import", str(path)).returncode == 0
    edit = manage(db_file, "pam", "rotation", "edit", "-r", "AWS user: TestUser", "-c",
                  "AWS IAM Configuration", "-od")  # fmt: skip
    assert edit.returncode == 0, edit.stderr
    rotated = manage(db_file, "pam", "action", "rotate", flag, "AWS user: TestUser")
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stderr == ""  # django-q2 logs "Enqueued ..." at INFO: not on the CLI
    [row] = lines(rotated.stdout)
    assert row["status"] == "queued"


def test_the_cli_leaves_the_django_q_log_level_as_it_was(record):
    import logging

    logger = logging.getLogger("django-q")
    before = logger.level
    with mock.patch("rotation.dispatch.async_task"):
        assert call_pam("action", "rotate", "-r", record.uid)[0] == 0
    assert logger.level == before
