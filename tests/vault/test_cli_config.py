"""`pam config list|new|edit|remove` with Keeper Commander's flags, and finding records, folders
and configurations by uid or title/name (vault/cli.py find_one)."""

from __future__ import annotations

import json

import pytest

from rotation.models import RotationSettings
from tests.conftest import make_configuration, make_pam_user
from vault.cli import call_pam
from vault.models import AuditEvent, PamConfiguration

pytestmark = pytest.mark.django_db

NEW = (
    "config", "new", "-env", "aws", "-t", "Prod AWS", "-g", "default", "-sf", "Team",
    "--aws-id", "Prod", "--access-key-id", "AKIAEXAMPLE123", "--access-secret-key", "s3cret-Key",
    "--region-name", "us-east-1", "--region-name", "eu-west-2",
)  # fmt: skip


def _state() -> tuple:
    return (
        list(PamConfiguration.objects.order_by("pk").values()),
        list(AuditEvent.objects.values_list("action", flat=True)),
    )


def _refused(args: tuple, says: str) -> list[str]:
    before = _state()
    code, out, err = call_pam(*args)
    assert (code, out) == (1, ""), err
    lines = err.splitlines()
    assert lines and all(line.startswith("pam: error: ") for line in lines), err
    assert says in err, err
    assert _state() == before
    return lines


# --- pam config new ------------------------------------------------------------------------------


def test_config_new_with_commanders_flags_creates_it_as_the_form_would(personas):
    code, out, err = call_pam(*NEW, "-sc", "0 0 3 ? * MON-FRI")
    assert code == 0, err
    config = PamConfiguration.objects.get(title="Prod AWS")
    assert (config.folder, config.gateway, config.aws_id) == (
        personas.folder,
        personas.gateway,
        "Prod",
    )
    assert config.access_key_id == "AKIAEXAMPLE123"
    assert config.get_secret("access_secret_key") == "s3cret-Key"
    assert config.region_names == ["us-east-1", "eu-west-2"]
    # Commander writes --schedule as a cron in Etc/UTC.
    assert config.default_rotation_schedule == {
        "type": "CRON",
        "cron": "0 0 3 ? * MON-FRI",
        "tz": "Etc/UTC",
    }
    shown = json.loads(out)
    assert shown["uid"] == config.uid and shown["access_secret_key"] == "********"
    assert "s3cret-Key" not in out + err
    event = AuditEvent.objects.get(action="configuration.created")
    assert (event.actor_kind, event.object_uid) == ("cli", config.uid)


def test_config_new_finds_the_folder_and_gateway_by_uid_too(personas):
    args = [a for a in NEW]
    args[args.index("Team")] = personas.folder.uid
    args[args.index("default")] = personas.gateway.uid
    code, _, err = call_pam(*args)
    assert code == 0, err
    assert PamConfiguration.objects.get(title="Prod AWS").folder == personas.folder


def test_config_new_without_schedule_is_on_demand(personas):
    assert call_pam(*NEW)[0] == 0
    config = PamConfiguration.objects.get(title="Prod AWS")
    assert config.default_rotation_schedule == {"type": "ON_DEMAND"}


@pytest.mark.parametrize(
    "drop, says",
    [
        ("-sf", "--shared-folder is required"),
        ("-g", "--gateway is required"),
        ("-t", "--title is required"),
    ],
)
def test_config_new_needs_title_folder_and_gateway(personas, drop, says):
    args = list(NEW)
    at = args.index(drop)
    del args[at : at + 2]
    _refused(tuple(args), says)


@pytest.mark.parametrize(
    "change, says",
    [
        (("-g", "nope"), 'no gateway with uid nope or name "nope"'),
        (("-sf", "Nowhere"), 'no folder with uid Nowhere or name "Nowhere"'),
        (("--access-key-id", "not a key!"), "--access-key-id: An access key ID is letters"),
        (("--region-name", "mars-1"), "--region-name:"),
        (("-sc", "61 * * * *"), "--schedule:"),
        (("-env", "azure"), "--environment azure is not supported"),
        (("--port-mapping", "22"), "--port-mapping is not supported"),
        (("-c", "on"), "-c is not supported"),
        (("-r", "on"), "-r is not supported"),
        (("--azure-id", "x"), "--azure-id is not supported: this vault holds AWS"),
    ],
)
def test_config_new_refuses_bad_or_unsupported_input_and_creates_nothing(personas, change, says):
    _refused((*NEW, *change), says)


def test_config_new_instance_role_needs_a_scope_as_the_form_says(personas):
    args = (
        "config", "new", "-t", "Role", "-g", "default", "-sf", "Team",
        "--access-key-id", "USE_INSTANCE_ROLE",
    )  # fmt: skip
    _refused(args, "--scope-user-pattern: With USE_INSTANCE_ROLE")


def test_config_new_refuses_a_title_taken_in_the_folder(personas):
    assert call_pam(*NEW)[0] == 0
    _refused(NEW, "--title: Another configuration in this folder already has this title.")


# --- pam config edit / remove --------------------------------------------------------------------


def test_config_edit_by_title_changes_what_is_given_and_keeps_the_secret(personas):
    config = make_configuration(personas.folder, personas.gateway, title="Edit Me")
    code, out, err = call_pam(
        "config", "edit", "edit me", "-t", "Edited", "--region-name", "eu-central-1",
        "-sc", '[{"type": "DAILY", "time": "03:00", "tz": "Europe/Berlin"}]',
    )  # fmt: skip
    assert code == 0, err
    config.refresh_from_db()
    assert (config.title, config.region_names) == ("Edited", ["eu-central-1"])
    assert config.default_rotation_schedule["type"] == "DAILY"
    assert config.get_secret("access_secret_key") == "testing-secret"
    assert config.aws_id == "AWS-Dept"  # not given: kept
    event = AuditEvent.objects.get(action="configuration.updated")
    assert event.actor_kind == "cli"


def test_config_edit_refuses_moving_to_another_folder(personas):
    config = make_configuration(personas.folder, personas.gateway)
    _refused(("config", "edit", config.uid, "-sf", "Elsewhere"), "moving a configuration")


def test_config_edit_refuses_two_default_schedules(personas):
    config = make_configuration(personas.folder, personas.gateway)
    two = '[{"type": "ON_DEMAND"}, {"type": "DAILY", "time": "03:00"}]'
    _refused(("config", "edit", config.uid, "-sc", two), "holds one default schedule")


def test_config_remove_deletes_an_unused_configuration(personas):
    config = make_configuration(personas.folder, personas.gateway, title="Unused")
    code, out, err = call_pam("config", "remove", "Unused")
    assert code == 0, err
    assert not PamConfiguration.objects.filter(pk=config.pk).exists()
    assert json.loads(out) == {"uid": config.uid, "title": "Unused", "removed": True}
    event = AuditEvent.objects.get(action="configuration.deleted")
    assert (event.actor_kind, event.object_uid) == ("cli", config.uid)


def test_config_remove_is_refused_while_a_record_rotates_through_it(personas):
    config = make_configuration(personas.folder, personas.gateway, title="Used")
    record = make_pam_user(personas.folder)
    RotationSettings.objects.create(pam_user=record, configuration=config)
    [line] = _refused(("config", "remove", config.uid), "was not deleted")
    # The configuration page's words (vault/views.py configuration_delete).
    assert line == (
        "pam: error: The configuration “Used” was not deleted: records still use it for "
        "rotation. Point them at another one first."
    )
    assert PamConfiguration.objects.filter(pk=config.pk).exists()


# --- pam config list -----------------------------------------------------------------------------


def test_config_list_json_has_commanders_keys_and_no_secret(personas):
    config = make_configuration(personas.folder, personas.gateway)
    code, out, err = call_pam("config", "list", "--format", "json")
    assert code == 0, err
    [row] = json.loads(out)["configurations"]
    assert row == {
        "uid": config.uid,
        "config_name": config.title,
        "config_type": "pamAwsConfiguration",
        "gateway_uid": personas.gateway.uid,
        "resource_record_uids": [],
        "folder": {"uid": personas.folder.uid, "name": "Team", "type": "shared_folder"},
        "shared_folder": {"name": "Team", "uid": personas.folder.uid},
        "gateway_name": "default",
    }
    assert "testing-secret" not in out


def test_config_list_verbose_adds_the_fields_masked(personas):
    make_configuration(personas.folder, personas.gateway)
    code, out, _ = call_pam("config", "list", "-v", "--format", "json")
    [row] = json.loads(out)["configurations"]
    assert row["fields"] == {
        "awsId": ["AWS-Dept"],
        "accessKeyId": ["testing"],
        "accessSecretKey": ["********"],
        "regionNames": ["us-east-1"],
        "Default Schedule": [{"type": "ON_DEMAND"}],
    }
    assert "testing-secret" not in out


def test_config_list_one_by_title_in_detail(personas):
    config = make_configuration(personas.folder, personas.gateway)
    code, out, _ = call_pam("config", "list", "-c", config.title, "--format", "json")
    detail = json.loads(out)
    assert code == 0
    assert (detail["uid"], detail["name"], detail["gateway_name"]) == (
        config.uid,
        config.title,
        "default",
    )
    assert set(detail) >= {"config_type", "gateway_uid", "resource_record_uids", "fields"}
    code, out, _ = call_pam("config", "list", "-c", config.uid)
    assert code == 0 and config.uid in out and "testing-secret" not in out


def test_config_list_table_has_a_row_per_configuration(personas):
    make_configuration(personas.folder, personas.gateway, title="One")
    make_configuration(personas.other_folder, personas.gateway, title="Two")
    code, out, _ = call_pam("config", "list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and lines[0].startswith("UID")


# --- finding objects by uid, title or name -------------------------------------------------------


def test_an_ambiguous_configuration_title_lists_the_matches(personas):
    first = make_configuration(personas.folder, personas.gateway, title="Shared Name")
    second = make_configuration(personas.other_folder, personas.gateway, title="Shared Name")
    lines = _refused(("config", "remove", "shared name"), "matches more than one")
    assert lines[1:] == [
        f"pam: error: {first.uid}  Shared Name",
        f"pam: error: {second.uid}  Shared Name",
    ]


def test_folder_slash_title_picks_one_of_two_same_titles(personas):
    make_configuration(personas.folder, personas.gateway, title="Shared Name")
    wanted = make_configuration(personas.other_folder, personas.gateway, title="Shared Name")
    code, out, err = call_pam("config", "list", "-c", "Elsewhere/Shared Name", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["uid"] == wanted.uid


def test_get_and_list_find_by_title_and_name(personas, record):
    code, out, err = call_pam("get", record.title, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["uid"] == record.uid
    code, out, _ = call_pam("list", "--folder", "Team", "--format", "json")
    assert [r["uid"] for r in json.loads(out)] == [record.uid]


def test_an_exact_title_wins_over_one_that_differs_in_case(personas):
    exact = make_pam_user(personas.folder, "a", title="Bob")
    make_pam_user(personas.other_folder, "b", title="BOB")
    code, out, _ = call_pam("get", "Bob", "--format", "json")
    assert json.loads(out)["uid"] == exact.uid
    lines = _refused(("get", "bob"), "matches more than one record or configuration")
    assert len(lines) == 3


def test_a_name_with_a_nul_character_is_not_found(personas):
    _refused(("get", "bad\x00name"), "give the uid or title")


def test_the_secret_key_can_come_from_stdin_instead_of_the_command_line(personas, monkeypatch):
    """`--access-secret-key -` reads it from stdin: a secret on the command line is visible to
    every user of the host (ps) and stays in shell history."""
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin-Key\n"))
    args = [a if a != "s3cret-Key" else "-" for a in NEW]
    code, out, err = call_pam(*args)
    assert code == 0, err
    config = PamConfiguration.objects.get(title="Prod AWS")
    assert config.get_secret("access_secret_key") == "from-stdin-Key"


def test_an_empty_secret_key_on_stdin_is_refused(personas, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    args = [a if a != "s3cret-Key" else "-" for a in NEW]
    code, _, err = call_pam(*args)
    assert code == 1 and "stdin" in err
    assert not PamConfiguration.objects.exists()
