"""`pam project import`: Keeper Commander's project import files, one per block of Commander's
pam_import README and a whole project, on a fresh database; what is not imported is listed by
JSON path; bad input is one line per problem and changes nothing; a second run changes
nothing and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse

from rotation import engine
from rotation.models import RotationSettings
from tests.conftest import login_verified, make_user
from vault import services
from vault.cli import call_pam
from vault.import_keeper import CONFIGURATION_KEYS, ENVIRONMENT_KEYS
from vault.models import (
    USE_INSTANCE_ROLE,
    Application,
    ApplicationFolder,
    AuditEvent,
    FolderMember,
    Gateway,
    PamConfiguration,
    PamUser,
    PasswordVersion,
    SharedFolder,
)

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data" / "keeper"
RESOURCE = (
    "the vault holds only AWS IAM users; resources (machines, databases, directories, remote "
    "browsers) and their connections, tunnels, rotation and settings are not imported"
)
RESOURCE_USER = (
    "a user of a resource: it is rotated through that resource, which the vault does not hold"
)
NO_CONFIGURATION = (
    "(not given) Commander would make a local network configuration; the vault rotates only "
    "AWS IAM users, so no configuration is made"
)


@pytest.fixture(autouse=True)
def people(db):
    return make_user("alice", email="alice@example.com"), make_user("bob")


def counts() -> dict:
    models = [
        SharedFolder,
        FolderMember,
        Gateway,
        Application,
        ApplicationFolder,
        PamConfiguration,
        PamUser,
        PasswordVersion,
        RotationSettings,
        AuditEvent,
    ]
    return {m.__name__: m.objects.count() for m in models}


def run(path, *args) -> tuple[int, dict | None, str]:
    code, out, err = call_pam("project", "import", "--filename", str(path), *args)
    return code, json.loads(out) if out else None, err


def write(tmp_path, doc, name="project.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def skipped(report) -> dict[str, str]:
    return {s["path"]: s["reason"] for s in report["not_imported"]}


# --- one file per documented block ------------------------------------------------------------

BLOCKS = {
    # file: (project, PAM User titles imported, {JSON path: reason, or None for "any"})
    "overview.json": (
        "Overview",
        ["PAM User - ops-admin"],
        {
            "pam_data.resources[0]": f"pamDatabase: {RESOURCE}",
            "pam_data.resources[1]": f"pamDirectory: {RESOURCE}",
            "pam_data.resources[2]": f"pamMachine: {RESOURCE}",
            "pam_data.resources[3]": f"pamRemoteBrowser: {RESOURCE}",
            "pam_data.users[1]": "a login record: the vault holds only PAM Users that are AWS "
            "IAM users",
        },
    ),
    "shared_folders.json": (
        "Shared",
        [],
        {
            "shared_folder_users.permissions[0]": 'no vault user is named "Platform Team" (a '
            "Keeper team, or a person without a vault login): not made a member",
            "shared_folder_resources.permissions[0]": "a team (by uid): the vault shares "
            "folders with people, not teams",
            "pam_configuration": NO_CONFIGURATION,
        },
    ),
    "configuration_aws.json": (
        "Cloud",
        [],
        {
            "pam_configuration.connections": "the vault has no connections (remote sessions)",
            "pam_configuration.port_mapping[0]": "port mappings are for discovery and "
            "connections, which the vault does not do",
        },
    ),
    **{
        f"configuration_{env}.json": (
            project,
            [],
            {
                "pam_configuration": f'environment "{env}": the vault rotates only AWS IAM '
                "users (environment aws), so no configuration is made"
            },
        )
        for env, project in (
            ("local", "OnPrem"),
            ("azure", "Azure"),
            ("domain", "Domain"),
            ("gcp", "Gcp"),
            ("oci", "Oci"),
        )
    },
    **{
        f"resource_{name}.json": (
            project,
            [],
            {
                "pam_configuration": NO_CONFIGURATION,
                "pam_data.resources[0]": f'{kind} "{title}": {RESOURCE}',
                "pam_data.resources[0].users[0]": RESOURCE_USER,
                "pam_data.resources[0].users[1]": RESOURCE_USER,
            },
        )
        for name, project, kind, title in (
            ("machine_rdp", "Rdp", "pamMachine", "RDP Host"),
            ("machine_ssh", "Ssh", "pamMachine", "SSH Host"),
            ("machine_vnc", "Vnc", "pamMachine", "VNC Host"),
            ("machine_telnet", "Telnet", "pamMachine", "Telnet Host"),
            ("machine_kubernetes", "K8s", "pamMachine", "K8S Cluster"),
            ("directory", "Dir", "pamDirectory", "Directory"),
        )
    },
    "resource_database.json": (
        "Db",
        [],
        {
            "pam_configuration": NO_CONFIGURATION,
            "pam_data.resources[0]": f'pamDatabase "MySQL": {RESOURCE}',
            "pam_data.resources[0].users[0]": RESOURCE_USER,
            "pam_data.resources[0].users[1]": RESOURCE_USER,
            "pam_data.resources[1]": f'pamDatabase "Mongo": {RESOURCE}',
            "pam_data.resources[1].users[0]": RESOURCE_USER,
        },
    ),
    "resource_remote_browser.json": (
        "Rbi",
        [],
        {
            "pam_configuration": NO_CONFIGURATION,
            "pam_data.resources[0]": f'pamRemoteBrowser "Intranet": {RESOURCE}',
            "pam_data.users[0]": 'a login record "rbi-login": the vault holds only PAM Users '
            "that are AWS IAM users",
        },
    ),
    "users_login.json": (
        "Logins",
        [],
        {
            "pam_configuration": NO_CONFIGURATION,
            "pam_data.users[0]": 'a login record "Web login": the vault holds only PAM Users '
            "that are AWS IAM users",
        },
    ),
    "users_pam_user.json": (
        "Users",
        ["IAM user (iam_user rotation)", "IAM user (scripts_only rotation)"],
        {
            "pam_data.users[0]": 'pamUser "Linux user (general rotation)" is not an AWS IAM '
            "user (its distinguished_name is not an IAM user ARN, and its rotation is "
            '"general"): the vault holds only AWS IAM users',
            "pam_data.users[2].rotation_settings": 'rotation "scripts_only": the vault rotates '
            "AWS IAM users through their PAM Configuration (iam_user) only",
        },
    ),
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_each_documented_block_imports_on_a_fresh_database_and_again_changes_nothing(name):
    project, titles, expected_skips = BLOCKS[name]
    code, report, err = run(DATA / name)
    assert code == 0, err
    assert report["project"] == project
    # The project's two folders, its application sharing both, and its gateway, always.
    users_folder = SharedFolder.objects.get(name=f"{project} - Users")
    resources_folder = SharedFolder.objects.get(name=f"{project} - Resources")
    application = Application.objects.get(
        name=load(name).get("pam_configuration", {}).get("ksm_app_name", f"{project} Application")
    )
    assert set(application.folders.all()) == {users_folder, resources_folder}
    gateway_name = load(name).get("pam_configuration", {}).get("gateway_name", f"{project} Gateway")
    assert Gateway.objects.get(name=gateway_name).application == application
    assert sorted(PamUser.objects.values_list("title", flat=True)) == sorted(titles)
    assert skipped(report) == expected_skips
    assert report["changed"] is True

    before = counts()
    code, again, err = run(DATA / name)
    assert code == 0
    assert again["changes"] == [] and again["changed"] is False
    assert "pam: nothing to change: the vault already holds this project" in err
    assert counts() == before


def test_the_aws_configuration_block_makes_the_configuration_with_its_secret_and_schedule():
    code, report, _ = run(DATA / "configuration_aws.json")
    assert code == 0
    config = PamConfiguration.objects.select_related("folder", "gateway").get()
    assert config.title == "Cloud AWS PAM Configuration"
    assert config.folder.name == "Cloud - Users"  # Commander puts it in the Users folder
    assert config.gateway.name == "Cloud Gateway"
    assert config.gateway.application.name == "Cloud KSM App"
    assert config.environment == "aws" and config.aws_id == "cloud-aws-id"
    assert config.access_key_id == "AKIAIOSFODNN7EXAMPLE"
    assert config.get_secret("access_secret_key") == "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert "EXAMPLEKEY" not in config.access_secret_key_enc
    assert config.region_names == ["us-east-1", "us-west-2"]
    assert config.default_rotation_schedule == {
        "type": "CRON",
        "cron": "0 30 18 * * ?",
        "tz": "America/Chicago",
    }
    assert "EXAMPLEKEY" not in json.dumps(report)


def test_shared_folder_permissions_become_members_as_commander_grants_them(people):
    alice, bob = people
    code, report, _ = run(DATA / "shared_folders.json")
    assert code == 0
    users = SharedFolder.objects.get(name="Shared - Users")
    resources = SharedFolder.objects.get(name="Shared - Resources")
    # Folder flags given: can_edit true, can_share false; members' own manage_* flags.
    member = FolderMember.objects.get(folder=users, user=alice)
    assert member.permission_names() == ["can_edit", "manage_records", "manage_users"]
    member = FolderMember.objects.get(folder=users, user=bob)  # "manage_records": "true"
    assert member.permission_names() == ["can_edit", "manage_records"]
    # No folder flags at all: Commander's defaults, every one true.
    member = FolderMember.objects.get(folder=resources, user=bob)
    assert member.permission_names() == ["can_edit", "can_share", "manage_records", "manage_users"]
    assert FolderMember.objects.count() == 3
    assert any("shared_folder_users.manage_users" in note for note in report["notes"])


def test_folder_name_overrides_the_default_name(tmp_path):
    doc = {"project": "P", "shared_folder_users": {"folder_name": "Cloud Admins"}}
    code, _, _ = run(write(tmp_path, doc))
    assert code == 0
    assert set(SharedFolder.objects.values_list("name", flat=True)) == {
        "Cloud Admins",
        "P - Resources",
    }


def test_users_block_imports_iam_users_with_their_rotation_settings():
    code, report, _ = run(DATA / "users_pam_user.json")
    assert code == 0
    record = PamUser.objects.get(title="IAM user (iam_user rotation)")
    assert record.folder.name == "Users - Users"
    assert record.login == "ci-runner"
    assert record.distinguished_name == "arn:aws:iam::111122223333:user/ci-runner"
    assert record.get_secret("password") == "Iam-Pass-0001"
    rs = RotationSettings.objects.get(pam_user=record)
    assert rs.configuration.title == "Users Configuration"  # made from the project's name
    assert rs.schedule == {"type": "CRON", "cron": "0 30 18 * * ?", "tz": "UTC"}
    assert (rs.length, rs.min_upper, rs.enabled) == (28, 4, True)
    # scripts_only: held (an IAM user), not rotated.
    noop = PamUser.objects.get(title="IAM user (scripts_only rotation)")
    assert not RotationSettings.objects.filter(pam_user=noop).exists()


# --- a whole project ---------------------------------------------------------------------------


def test_a_whole_project(people):
    alice, bob = people
    code, report, err = run(DATA / "project.json")
    assert code == 0, err
    assert report["project"] == "Project1" and report["dry_run"] is False
    users = SharedFolder.objects.get(name="Project1 - Users")
    resources = SharedFolder.objects.get(name="Project1 - Resources")
    assert FolderMember.objects.get(folder=users, user=alice).permission_names() == [
        "can_edit",
        "manage_records",
        "manage_users",
    ]
    assert FolderMember.objects.get(folder=users, user=bob).permission_names() == ["can_edit"]
    assert FolderMember.objects.get(folder=resources, user=alice).permission_names() == [
        "can_edit",
        "can_share",
        "manage_records",
        "manage_users",
    ]
    gateway = Gateway.objects.get(name="Project1 Gateway")  # a display name, accepted
    assert gateway.application.name == "Project1 Application"
    assert {(s.folder.name, s.editable) for s in ApplicationFolder.objects.all()} == {
        ("Project1 - Users", True),
        ("Project1 - Resources", True),
    }
    config = PamConfiguration.objects.get()
    assert config.title == "Project1 AWS PAM Configuration" and config.gateway == gateway

    titles = sorted(PamUser.objects.values_list("title", flat=True))
    assert titles == [
        "AWS user: auditor",
        "AWS user: break-glass",
        "AWS user: deploy-bot",
        "AWS user: legacy",
        "PAM User - report-reader",  # no title: Commander's "PAM User - <login>"
    ]
    settings = {
        rs.pam_user.login: rs
        for rs in RotationSettings.objects.select_related("pam_user", "configuration")
    }
    assert sorted(settings) == ["auditor", "break-glass", "deploy-bot", "legacy", "report-reader"]
    assert settings["deploy-bot"].schedule == {"type": "ON_DEMAND"}
    assert settings["deploy-bot"].enabled is True
    # A rotation profile by name.
    nightly = settings["report-reader"]
    assert nightly.schedule == {"type": "CRON", "cron": "0 0 2 * * ?", "tz": "UTC"}
    assert nightly.length == 30 and nightly.enabled is True
    # "enabled": "default" and no schedule on a new record: enabled, the configuration's
    # default schedule.
    assert settings["auditor"].enabled is True
    assert settings["auditor"].use_configuration_schedule is True
    assert settings["auditor"].effective_schedule == config.default_rotation_schedule
    assert settings["legacy"].enabled is False and settings["legacy"].next_run_at is None
    # managed: false keeps its rotation settings, and is never rotated; notes are kept.
    managed = dict(PamUser.objects.values_list("login", "managed"))
    assert managed == {
        "auditor": True,
        "break-glass": False,
        "deploy-bot": True,
        "legacy": True,
        "report-reader": True,
    }
    assert settings["break-glass"].enabled is True
    assert PamUser.objects.get(login="deploy-bot").notes == "CI deploys"
    assert set(PamUser.objects.exclude(login="deploy-bot").values_list("notes", flat=True)) == {""}

    assert skipped(report) == {
        "shared_folder_users.permissions[2]": 'no vault user is named "Ops Team" (a Keeper '
        "team, or a person without a vault login): not made a member",
        "pam_configuration.connections": "the vault has no connections (remote sessions)",
        "pam_configuration.tunneling": "the vault has no tunnels",
        "pam_data.resources[0]": f'pamMachine "Bastion": {RESOURCE}',
        "pam_data.resources[0].users[0]": RESOURCE_USER,
        "pam_data.users[5]": 'a login record "Console bookmark": the vault holds only PAM '
        "Users that are AWS IAM users",
    }
    assert (
        report["users"]["PAM User - report-reader"]
        == PamUser.objects.get(login="report-reader").uid
    )
    assert "pam: 6 item(s) not imported: see not_imported" in err
    for secret in ("Deploy-Bot-Pass-01", "EXAMPLEKEY"):
        assert secret not in json.dumps(report)
        assert not AuditEvent.objects.filter(details__icontains=secret).exists()


def test_dry_run_prints_the_whole_plan_and_writes_nothing(tmp_path):
    before = counts()
    code, plan, err = run(DATA / "project.json", "--dry-run", "--output", str(tmp_path / "p.json"))
    assert code == 0
    assert counts() == before
    assert plan["dry_run"] is True and plan["changed"] is True
    assert "pam: dry run: 20 change(s) planned; nothing was written" in err
    assert plan["folders"] == {"Project1 - Users": None, "Project1 - Resources": None}
    assert json.loads((tmp_path / "p.json").read_text()) == plan

    code, done, _ = run(DATA / "project.json")
    assert done["changes"] == plan["changes"]
    assert done["not_imported"] == plan["not_imported"]
    code, again, _ = run(DATA / "project.json", "-d")
    assert again["changes"] == []


def test_output_writes_the_result(tmp_path):
    code, report, _ = run(DATA / "project.json", "--output", str(tmp_path / "result.json"))
    assert code == 0
    assert json.loads((tmp_path / "result.json").read_text()) == report
    assert (
        report["folders"]["Project1 - Users"]
        == SharedFolder.objects.get(name="Project1 - Users").uid
    )


def test_name_overrides_the_project_in_the_file():
    code, report, _ = run(DATA / "project.json", "--name", "Staging")
    assert code == 0 and report["project"] == "Staging"
    assert SharedFolder.objects.filter(name="Staging - Users").exists()
    # gateway_name and title are given in the file; the application is made from the name.
    assert Application.objects.filter(name="Staging Application").exists()


def test_owner_manages_both_folders_and_administers_the_application(people):
    alice, _ = people
    owner = make_user("carol")
    code, _, _ = call_pam(
        "project", "import", "-f", str(DATA / "configuration_aws.json"), "--owner", "carol"
    )
    assert code == 0
    for folder in SharedFolder.objects.all():
        assert FolderMember.objects.get(folder=folder, user=owner).permission_names() == list(
            FolderMember.PERMISSIONS
        )
    assert owner in Application.objects.get(name="Cloud KSM App").administrators.all()


# --- Commander's meaning of rotation_settings on a second import ------------------------------


def _project_with(user_changes: dict, config_changes: dict | None = None) -> dict:
    doc = load("project.json")
    doc["pam_data"]["users"][0].update(user_changes)
    doc["pam_configuration"].update(config_changes or {})
    return doc


def test_enabled_default_keeps_the_stored_value_and_off_disables(tmp_path):
    run(DATA / "project.json")
    record = PamUser.objects.get(login="deploy-bot")
    rs = RotationSettings.objects.get(pam_user=record)
    rs.enabled = False
    rs.save()
    settings = {"rotation": "iam_user", "enabled": "default"}
    code, report, _ = run(write(tmp_path, _project_with({"rotation_settings": settings})))
    assert code == 0
    rs.refresh_from_db()
    assert rs.enabled is False  # kept
    assert rs.schedule == {"type": "ON_DEMAND"}  # no schedule: kept
    settings["enabled"] = "on"
    code, report, _ = run(write(tmp_path, _project_with({"rotation_settings": settings})))
    rs.refresh_from_db()
    assert rs.enabled is True
    assert [c["action"] for c in report["changes"]] == ["update"]


def test_a_record_no_longer_managed_keeps_its_settings_and_is_never_rotated(tmp_path):
    run(DATA / "project.json")
    rs = RotationSettings.objects.get(pam_user__login="deploy-bot")
    assert rs.enabled
    code, report, _ = run(write(tmp_path, _project_with({"managed": False})))
    assert code == 0
    record = PamUser.objects.get(login="deploy-bot")
    assert record.managed is False
    rs.refresh_from_db()
    assert rs.enabled is True  # kept: the record follows them once it is managed again
    assert report["changes"] == [
        {
            "action": "update",
            "type": "user",
            "name": "AWS user: deploy-bot",
            "folder": "Project1 - Users",
            "fields": ["managed"],
        }
    ]
    event = AuditEvent.objects.filter(action="record.updated").latest("id")
    assert event.details == {"fields": ["managed"], "managed": False}
    with pytest.raises(engine.RotationRequestError, match="not managed by the vault"):
        engine.rotation_request(record=record, trigger="on_demand")
    code, again, _ = run(write(tmp_path, _project_with({"managed": False})))
    assert again["changes"] == []


def test_notes_and_managed_are_carried_and_a_second_import_changes_nothing(tmp_path):
    notes = "Break-glass only.\nCall <ops> first."
    doc = _project_with({"notes": notes, "managed": "no"})
    code, report, err = run(write(tmp_path, doc))
    assert code == 0, err
    record = PamUser.objects.get(login="deploy-bot")
    assert (record.notes, record.managed) == (notes, False)
    assert not any(path.endswith(".notes") for path in skipped(report))
    before = counts()
    code, again, _ = run(write(tmp_path, doc))
    assert again["changes"] == [] and counts() == before


def test_notes_or_managed_left_out_keep_the_stored_values(tmp_path):
    run(write(tmp_path, _project_with({"notes": "Kept", "managed": False})))
    doc = _project_with({})
    del doc["pam_data"]["users"][0]["notes"], doc["pam_data"]["users"][0]["managed"]
    code, report, _ = run(write(tmp_path, doc))
    assert code == 0 and report["changes"] == []
    record = PamUser.objects.get(login="deploy-bot")
    assert (record.notes, record.managed) == ("Kept", False)


def test_notes_that_are_not_text_are_one_line_and_change_nothing(tmp_path):
    before = counts()
    code, _, err = run(write(tmp_path, _project_with({"notes": ["a", "list"]})))
    assert code == 1
    assert err.strip() == "pam: error: pam_data.users[0].notes: must be a string, not a list"
    assert counts() == before


def test_configuration_rotation_off_saves_every_users_settings_disabled(tmp_path):
    code, report, _ = run(write(tmp_path, _project_with({}, {"rotation": "off"})))
    assert code == 0
    assert not RotationSettings.objects.filter(enabled=True).exists()
    assert RotationSettings.objects.count() == 5
    assert any(note.startswith('pam_configuration.rotation: "off"') for note in report["notes"])


def test_instance_role_is_scoped_to_the_projects_iam_users(tmp_path):
    changes = {"aws_access_key_id": USE_INSTANCE_ROLE, "aws_secret_access_key": USE_INSTANCE_ROLE}
    code, report, _ = run(write(tmp_path, _project_with({}, changes)))
    assert code == 0
    config = PamConfiguration.objects.get()
    assert config.access_key_id == USE_INSTANCE_ROLE
    assert config.scope_user_pattern == ("auditor, break-glass, deploy-bot, legacy, report-reader")
    assert not Gateway.objects.get().allow_instance_role  # a superuser still decides


def test_re_import_after_a_rotation_keeps_the_new_password(tmp_path):
    run(DATA / "project.json")
    record = PamUser.objects.get(login="deploy-bot")
    services.pam_user_update(
        record=record,
        title=record.title,
        login=record.login,
        distinguished_name=record.distinguished_name,
        password="Rotated-Since-0001",
        source="rotation",
    )
    code, report, _ = run(DATA / "project.json")
    assert report["changes"] == []
    record.refresh_from_db()
    assert record.get_secret("password") == "Rotated-Since-0001"


# --- gateway names -----------------------------------------------------------------------------


def test_a_gateway_of_another_application_is_not_taken_over(tmp_path):
    Gateway.objects.create(
        name="Project1 Gateway", application=Application.objects.create(name="Team B")
    )
    before = counts()
    code, report, err = run(DATA / "project.json")
    assert code == 1 and report is None
    assert err.splitlines() == [
        'pam: error: pam_configuration.gateway_name: the gateway "Project1 Gateway" belongs to '
        'the application "Team B" (a gateway never changes hands): give '
        'pam_configuration.ksm_app_name "Team B" to use it, or another gateway_name'
    ]
    assert counts() == before


def test_a_gateway_name_made_from_an_unusable_project_name_says_so(tmp_path):
    code, _, err = run(write(tmp_path, {"project": "Équipe"}))
    assert code == 1
    assert err.splitlines() == [
        'pam: error: project: the gateway name "Équipe Gateway" made from it: a gateway name '
        "is ASCII letters, digits, single spaces and - _ . #, beginning and ending with a "
        'letter or digit (e.g. "Project1 Gateway") (or give pam_configuration.gateway_name)'
    ]
    assert not SharedFolder.objects.exists()


def test_a_gateway_name_differing_only_in_case_is_refused(tmp_path):
    Gateway.objects.create(name="project1 gateway")
    code, _, err = run(DATA / "project.json")
    assert code == 1
    assert err.splitlines() == [
        'pam: error: pam_configuration.gateway_name: a gateway named "project1 gateway" '
        "already exists (gateway names are matched exactly; they differ only in case)"
    ]


# --- bad input ---------------------------------------------------------------------------------


def test_bad_input_is_one_line_per_problem_and_changes_nothing(tmp_path):
    doc = {
        "project": 5,
        "colour": "red",
        "shared_folder_users": {
            "can_edit": "maybe",
            "permissions": [{"name": "bob", "role": "admin"}, "carol"],
        },
        "pam_configuration": {
            "environment": "aws",
            "gateway_name": "gw",
            "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
            "aws_region_names": [1],
            "flavour": "vanilla",
        },
        "pam_data": {
            "users": [
                {
                    "type": "pamUser",
                    "login": "ci-runner",
                    "rotation_settings": {"rotation": "iam_user", "enabled": "yes"},
                },
                {
                    "type": "pamUser",
                    "login": "x",
                    "distinguished_name": "arn:aws:iam::111122223333:user/y",
                    "managed": "perhaps",
                    "rotation_settings": {"rotation": "magic", "cadence": 1},
                },
                {"type": "robot"},
                "nope",
            ],
            "machines": [],
        },
    }
    before = counts()
    code, report, err = run(write(tmp_path, doc), "--name", "P")
    assert code == 1 and report is None
    assert err.splitlines() == [
        "pam: error: colour: unknown key (expected: project, shared_folder_users, "
        "shared_folder_resources, pam_configuration, pam_data, tool_version, safe_folders, "
        "options)",
        "pam: error: project: must be a string, not a number",
        'pam: error: shared_folder_users.can_edit: must be true or false, not "maybe"',
        "pam: error: shared_folder_users.permissions[0].role: unknown key (expected: name, uid, "
        "manage_users, manage_records)",
        "pam: error: shared_folder_users.permissions[1]: must be an object",
        "pam: error: pam_configuration.aws_secret_access_key: required unless "
        "aws_access_key_id is USE_INSTANCE_ROLE",
        "pam: error: pam_configuration.aws_region_names[0]: must be a region name, not a number",
        "pam: error: pam_configuration.flavour: unknown key (expected: "
        + ", ".join(CONFIGURATION_KEYS + tuple(k for ks in ENVIRONMENT_KEYS.values() for k in ks))
        + ")",
        "pam: error: pam_data.machines: unknown key (expected: resources, users, "
        "rotation_profiles)",
        'pam: error: pam_data.users[0].rotation_settings.enabled: must be "on", "off" or '
        '"default", not "yes"',
        "pam: error: pam_data.users[0].distinguished_name: required: the IAM user's ARN, "
        "arn:aws:iam::<12-digit account>:user/<name> (the vault rotates it through the AWS "
        "IAM API)",
        'pam: error: pam_data.users[1].managed: must be true or false, not "perhaps"',
        "pam: error: pam_data.users[1].rotation_settings.cadence: unknown key (expected: "
        "rotation, resource, enabled, schedule, password_complexity)",
        "pam: error: pam_data.users[1].rotation_settings.rotation: must be one of general, "
        'iam_user, scripts_only, not "magic"',
        'pam: error: pam_data.users[1].login: ARN user name "y" does not match login "x"',
        'pam: error: pam_data.users[2].type: must be "pamUser" or "login", not "robot"',
        "pam: error: pam_data.users[3]: must be an object",
    ]
    assert counts() == before


def test_an_iam_user_without_its_arn_is_an_error(tmp_path):
    doc = load("users_pam_user.json")
    del doc["pam_data"]["users"][1]["distinguished_name"]
    code, _, err = run(write(tmp_path, doc))
    assert code == 1
    assert err.splitlines() == [
        "pam: error: pam_data.users[1].distinguished_name: required: the IAM user's ARN, "
        "arn:aws:iam::<12-digit account>:user/<name> (the vault rotates it through the AWS "
        "IAM API)"
    ]


def test_rotation_problems_are_reported_under_the_rotation_settings_path(tmp_path):
    doc = load("project.json")
    users = doc["pam_data"]["users"]
    users[0]["rotation_settings"]["schedule"] = {"type": "HOURLY"}
    users[0]["rotation_settings"]["password_complexity"] = "8,5,5,5,5"
    doc["pam_data"]["rotation_profiles"]["nightly"]["password_complexity"] = 30
    before = counts()
    code, _, err = run(write(tmp_path, doc))
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("pam: error: pam_data.users[0].rotation_settings.schedule: ")
    assert lines[1].startswith(
        "pam: error: pam_data.users[0].rotation_settings.password_complexity: "
    )
    assert lines[2] == (
        "pam: error: pam_data.rotation_profiles.nightly.password_complexity: must be a "
        "string, not a number"
    )
    assert counts() == before


def test_duplicate_titles_and_bad_passwords_are_errors(tmp_path):
    doc = load("users_pam_user.json")
    users = doc["pam_data"]["users"]
    users[2]["title"] = users[1]["title"]
    users.append(dict(users[1], title="Another", password="pässword"))
    code, _, err = run(write(tmp_path, doc))
    assert code == 1
    assert err.splitlines() == [
        'pam: error: pam_data.users[2].title: duplicate user title "IAM user (iam_user '
        'rotation)" in folder "Users - Users" (also pam_data.users[1])',
        "pam: error: pam_data.users[3].password: password may contain only printable ASCII "
        "characters",
    ]


def test_a_missing_project_name_and_unreadable_files(tmp_path):
    code, _, err = run(write(tmp_path, {}))
    assert code == 1
    assert err.splitlines() == [
        "pam: error: project: required: the project's name (or give --name)"
    ]
    code, _, err = run(tmp_path / "missing.json")
    assert err.strip() == f"pam: error: cannot read {tmp_path / 'missing.json'}: no such file"
    code, _, err = call_pam("project", "import", "--name", "x")
    assert code == 2 and "--filename" in err


def test_the_native_import_keeps_working_beside_it(tmp_path):
    """`pam import` files are not Commander's: each format has its reader."""
    code, _, err = run(write(tmp_path, {"folders": [{"name": "F"}]}))
    assert code == 1 and err.startswith("pam: error: folders: unknown key")
    code, _, err = call_pam("import", str(DATA / "project.json"))
    assert code == 1 and "pam: error: project: unknown key" in err


def test_the_admin_console_changes_a_gateway_with_a_display_name():
    """Its name is not a slug, which the model field would refuse on every save: the admin
    console keeps it read-only, and a superuser can still allow the host's credentials."""
    run(DATA / "project.json")
    gateway = Gateway.objects.get(name="Project1 Gateway")
    root = make_user("root", is_superuser=True, is_staff=True)
    client = login_verified(root)
    url = reverse("admin:vault_gateway_change", args=[gateway.pk])
    response = client.get(url)
    assert response.status_code == 200
    assert b'name="name"' not in response.content
    response = client.post(
        url, {"application": gateway.application.pk, "allow_instance_role": "on"}
    )
    assert response.status_code == 302
    gateway.refresh_from_db()
    assert gateway.allow_instance_role and gateway.name == "Project1 Gateway"


def test_the_owner_keeps_every_permission_when_the_file_names_them_too(people):
    alice, _ = people
    for _ in range(2):
        code, report, _ = call_pam(
            "project", "import", "-f", str(DATA / "project.json"), "--owner", "bob"
        )
        assert code == 0
    assert json.loads(report)["changes"] == []
    users = SharedFolder.objects.get(name="Project1 - Users")
    assert FolderMember.objects.get(folder=users, user__username="bob").permission_names() == list(
        FolderMember.PERMISSIONS
    )


def test_a_member_who_would_leave_the_folder_without_a_manager_is_an_error(tmp_path, people):
    alice, _ = people
    run(DATA / "project.json")
    doc = load("project.json")
    doc["shared_folder_users"]["permissions"][0]["manage_users"] = False
    before = counts()
    code, _, err = run(write(tmp_path, doc))
    assert code == 1
    assert err.splitlines() == [
        "pam: error: shared_folder_users.permissions[0]: A folder must keep at least one member "
        "who can manage members; give that permission to someone else first."
    ]
    assert counts() == before
