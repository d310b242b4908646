"""`pam export`: every secret in an import file, created 0600, audited; exported, emptied and
imported again, the vault is the same (1,000 records with their password history)."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest

from rotation.models import RotationSettings
from tests.conftest import make_user
from vault.cli import call_pam
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

SCHEDULES = [
    {"type": "ON_DEMAND"},
    {"type": "DAILY", "time": "03:00:00", "tz": "Europe/Berlin", "intervalCount": 2},
    {"type": "CRON", "cron": "0 30 18 * * ?", "tz": "America/Chicago"},
    {"type": "WEEKLY", "time": "15:44:00", "tz": "UTC", "intervalCount": 1, "weekday": "SUNDAY"},
]
COMPLEXITIES = [
    (32, 5, 5, 5, 5, "!@#$%^&*()_+-=[]{}|'"),
    (20, 2, 2, 2, 2, "!#"),
    (64, 0, 8, 8, 0, ""),
]
SOURCES = ["import", "manual", "rotation", "resolution"]


def config(folder, gateway, title, **kw) -> PamConfiguration:
    secret = kw.pop("secret", "")
    row = PamConfiguration(folder=folder, title=title, gateway=gateway, **kw)
    row.save()
    row.set_secret("access_secret_key", secret)
    row.save()
    return row


def build_vault(records: int) -> None:
    """Three folders, two applications (one share read-only), two gateways (one with a display
    name), three configurations (two with the same title in different folders), `records` PAM
    Users with up to three history entries each and, for most, rotation settings."""
    folders = [SharedFolder.objects.create(name=n) for n in ("Alpha", "Beta", "Gamma - Users")]
    app = Application.objects.create(name="Rotation App")
    other = Application.objects.create(name="Project1 Application")
    ApplicationFolder.objects.create(application=app, folder=folders[0], editable=True)
    ApplicationFolder.objects.create(application=app, folder=folders[1], editable=False)
    ApplicationFolder.objects.create(application=other, folder=folders[2], editable=True)
    gateways = [
        Gateway.objects.create(name="default", application=app),
        Gateway.objects.create(name="Project1 Gateway", application=other),
    ]
    configs = [
        config(
            folders[0],
            gateways[0],
            "AWS IAM Configuration",
            aws_id="dept-a",
            access_key_id="AKIAIOSFODNN7EXAMPLE",
            secret="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region_names=["us-east-1", "eu-west-1"],
            default_rotation_schedule=SCHEDULES[1],
        ),
        config(
            folders[1],
            gateways[0],
            "AWS IAM Configuration",
            access_key_id=USE_INSTANCE_ROLE,
            secret=USE_INSTANCE_ROLE,
            region_names=["us-west-2"],
            endpoint_url="https://iam.amazonaws.com",
            default_rotation_schedule={"type": "ON_DEMAND"},
            scope_path_prefix="/rotated/",
            scope_user_pattern="svc-*, ci-runner",
        ),
        config(
            folders[2],
            gateways[1],
            "Gamma Configuration",
            access_key_id="AKIAI44QH8DHBEXAMPLE",
            secret="je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
            region_names=["us-east-1"],
            default_rotation_schedule=SCHEDULES[2],
        ),
    ]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    users, versions, settings = [], [], []
    for i in range(records):
        folder = folders[i % 3]
        record = PamUser(
            folder=folder,
            title=f"AWS user: user{i:04d}",
            login=f"user{i:04d}",
            distinguished_name=f"arn:aws:iam::123456789012:user/team{i % 7}/user{i:04d}",
            # Keeper's notes (plain text, several lines, markup kept as text) and managed
            # flag: an unmanaged record keeps its rotation settings, and is never rotated.
            notes="" if i % 4 == 0 else f"Owner: team{i % 7}\n<b>ticket</b> #{i} — ünïcode",
            managed=i % 9 != 8,
        )
        history = [f"Pass-{i:04d}-{n}!" for n in range(i % 4)]  # 0 to 3 entries
        record.set_secret("password", history[-1] if history else "")
        users.append(record)
        for n, password in enumerate(history):
            version = PasswordVersion(
                pam_user=record,
                source=SOURCES[(i + n) % 4],
                reason="" if n % 2 else f"reason {n}",
                created_at=start + timedelta(days=i, hours=n, microseconds=i),
            )
            version.set_secret("password", password)
            versions.append(version)
    PamUser.objects.bulk_create(users)
    for version in versions:
        version.pam_user_id = version.pam_user.pk
    PasswordVersion.objects.bulk_create(versions)
    for i, record in enumerate(users):
        if i % 5 == 4:
            continue  # no rotation settings
        length, upper, lower, digits, symbols, charset = COMPLEXITIES[i % 3]
        settings.append(
            RotationSettings(
                pam_user=record,
                configuration=configs[i % 3],
                schedule=SCHEDULES[i % 4],
                use_configuration_schedule=i % 6 == 0,
                length=length,
                min_upper=upper,
                min_lower=lower,
                min_digits=digits,
                min_symbols=symbols,
                symbols=charset,
                enabled=i % 7 != 0,
            )
        )
    RotationSettings.objects.bulk_create(settings)


def snapshot() -> dict:
    """Everything the native format carries, by name (uids and timestamps of rows differ)."""
    records = {}
    history: dict[int, list] = {}
    for v in PasswordVersion.objects.order_by("pam_user_id", "created_at", "id"):
        history.setdefault(v.pam_user_id, []).append(
            (v.get_secret("password"), v.created_at, v.source, v.reason)
        )
    for r in PamUser.objects.select_related("folder"):
        records[(r.folder.name, r.title)] = (
            r.login,
            r.distinguished_name,
            r.get_secret("password"),
            history.get(r.pk, []),
            r.notes,
            r.managed,
        )
    rotation = {}
    for rs in RotationSettings.objects.select_related("pam_user__folder", "configuration__folder"):
        rotation[(rs.pam_user.folder.name, rs.pam_user.title)] = (
            rs.configuration.folder.name,
            rs.configuration.title,
            None if rs.use_configuration_schedule else rs.schedule,
            rs.use_configuration_schedule,
            rs.complexity_text,
            rs.enabled,
        )
    configs = {
        (c.folder.name, c.title): (
            c.environment,
            c.gateway.name,
            c.aws_id,
            c.access_key_id,
            c.get_secret("access_secret_key"),
            c.region_names,
            c.endpoint_url,
            c.default_rotation_schedule,
            c.scope_path_prefix,
            c.scope_user_pattern,
        )
        for c in PamConfiguration.objects.select_related("folder", "gateway")
    }
    applications = {
        a.name: (
            sorted(
                (s.folder.name, s.editable) for s in ApplicationFolder.objects.filter(application=a)
            ),
            sorted(a.gateways.values_list("name", flat=True)),
        )
        for a in Application.objects.all()
    }
    return {
        "folders": sorted(SharedFolder.objects.values_list("name", flat=True)),
        "gateways": sorted(Gateway.objects.values_list("name", flat=True)),
        "applications": applications,
        "configurations": configs,
        "records": records,
        "rotation": rotation,
    }


def empty_the_vault() -> None:
    PamUser.objects.all().delete()  # history and rotation settings with them
    PamConfiguration.objects.all().delete()
    Gateway.objects.all().delete()
    Application.objects.all().delete()
    SharedFolder.objects.all().delete()
    for model in (PamUser, PasswordVersion, RotationSettings, PamConfiguration, SharedFolder):
        assert not model.objects.exists()


def test_round_trip_of_1000_records_with_their_history(tmp_path):
    build_vault(1000)
    before = snapshot()
    assert len(before["records"]) == 1000
    assert sum(len(r[3]) for r in before["records"].values()) == 1500
    assert len(before["rotation"]) == 800
    assert sum(1 for r in before["records"].values() if not r[5]) == 111  # unmanaged
    assert sum(1 for r in before["records"].values() if r[4]) == 750  # with notes
    path = tmp_path / "backup.json"

    code, out, err = call_pam("export", "--output", str(path))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["records"] == 1000 and summary["configurations"] == 3

    empty_the_vault()
    code, out, err = call_pam("import", str(path))
    assert code == 0, err
    after = snapshot()
    for key in before:
        assert after[key] == before[key], key

    # A second import changes nothing.
    events = AuditEvent.objects.count()
    code, _, _ = call_pam("import", str(path))
    assert code == 0
    assert AuditEvent.objects.count() == events
    assert snapshot() == before


def test_export_of_one_folder_brings_the_configurations_its_records_rotate_through(tmp_path):
    build_vault(30)
    beta = SharedFolder.objects.get(name="Beta")
    # A Beta record rotating through Alpha's configuration of the same title.
    record = PamUser.objects.filter(folder=beta).first()
    RotationSettings.objects.update_or_create(
        pam_user=record,
        defaults={"configuration": PamConfiguration.objects.get(folder__name="Alpha")},
    )
    path = tmp_path / "beta.json"
    code, out, err = call_pam("export", "--folder", "Beta", "--output", str(path))
    assert code == 0, err
    document = json.loads(path.read_text())
    assert [f["name"] for f in document["folders"]] == ["Alpha", "Beta"]
    assert {u["folder"] for u in document["users"]} == {"Beta"}
    assert sorted((c["folder"], c["title"]) for c in document["configurations"]) == [
        ("Alpha", "AWS IAM Configuration"),
        ("Beta", "AWS IAM Configuration"),
    ]
    assert json.loads(out)["records"] == 10
    code, _, _ = call_pam("export", "--folder", beta.uid, "--output", str(tmp_path / "b2.json"))
    assert code == 0
    assert json.loads((tmp_path / "b2.json").read_text()) == document

    before = {k: v for k, v in snapshot()["records"].items() if k[0] == "Beta"}
    empty_the_vault()
    assert call_pam("import", str(path))[0] == 0
    assert snapshot()["records"] == before


def test_the_file_is_0600_and_never_replaced_without_force(tmp_path):
    build_vault(3)
    path = tmp_path / "backup.json"
    old_umask = os.umask(0)  # whatever the umask, the file is the owner's alone
    try:
        assert call_pam("export", "--output", str(path))[0] == 0
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()

    path.write_text("keep me")
    path.chmod(0o644)
    code, out, err = call_pam("export", "--output", str(path))
    assert code == 1 and out == ""
    assert err == (
        f"pam: error: --output: {path} already exists; give --force to replace it, "
        "or another file\n"
    )
    assert path.read_text() == "keep me"

    code, _, _ = call_pam("export", "--output", str(path), "--force")
    assert code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == first
    assert [p.name for p in tmp_path.iterdir()] == ["backup.json"]  # no temporary file left


def test_a_link_in_the_way_is_not_followed(tmp_path):
    build_vault(1)
    target = tmp_path / "elsewhere"
    target.write_text("untouched")
    link = tmp_path / "backup.json"
    link.symlink_to(target)
    code, _, err = call_pam("export", "--output", str(link))
    assert code == 1 and "already exists" in err
    assert target.read_text() == "untouched"


def test_bad_targets_are_one_line(tmp_path):
    code, _, err = call_pam("export", "--output", str(tmp_path / "no" / "such" / "f.json"))
    assert code == 1
    assert err == f"pam: error: --output: the directory {tmp_path / 'no' / 'such'} does not exist\n"
    code, _, err = call_pam("export", "--output", str(tmp_path / "f.json"), "--folder", "Nope")
    assert code == 1
    assert err == 'pam: error: --folder: no folder with uid or name "Nope" (see `pam list`)\n'
    assert not (tmp_path / "f.json").exists()
    code, _, err = call_pam("export")
    assert code == 2 and "--output" in err


def test_export_is_audited_without_secrets(tmp_path):
    build_vault(9)
    path = tmp_path / "alpha.json"
    assert call_pam("export", "--folder", "Alpha", "--output", str(path))[0] == 0
    event = AuditEvent.objects.get(action="vault.exported")
    assert event.actor_kind == "cli"
    assert event.folder.name == "Alpha"
    assert event.details["folders"] == ["Alpha"]
    assert event.details["records"] == 3
    assert event.details["configurations"] == 1
    assert event.details["format"] == "native"
    assert event.details["file"] == str(path.absolute())
    assert event.details["os_user"]
    text = json.dumps(event.details)
    document = path.read_text()
    for record in PamUser.objects.filter(folder__name="Alpha"):
        secret = record.get_secret("password")
        if secret:
            assert secret in document and secret not in text
    assert "EXAMPLEKEY" in document and "EXAMPLEKEY" not in text

    assert call_pam("export", "--output", str(tmp_path / "all.json"))[0] == 0
    event = AuditEvent.objects.filter(action="vault.exported").first()
    assert event.details["folders"] == "all" and event.details["records"] == 9


def test_a_failed_export_writes_no_file_and_no_audit_event(tmp_path, monkeypatch):
    from vault import exporter

    build_vault(2)

    def refuse(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(exporter, "_put_in_place", refuse)
    code, _, err = call_pam("export", "--output", str(tmp_path / "x.json"))
    assert code == 1 and "disk full" in err
    assert list(tmp_path.iterdir()) == []
    assert not AuditEvent.objects.filter(action="vault.exported").exists()


# --- the keeper format --------------------------------------------------------------------------


def test_keeper_format_round_trips_through_pam_project_import(tmp_path):
    build_vault(12)
    alice = make_user("alice")
    gamma = SharedFolder.objects.get(name="Gamma - Users")
    FolderMember.objects.create(folder=gamma, user=alice, can_edit=True, manage_users=True)
    before = snapshot()
    path = tmp_path / "project.json"
    code, out, err = call_pam(
        "export", "--folder", "Gamma - Users", "--format", "keeper", "--output", str(path)
    )
    assert code == 0, err
    assert "pam: note: password history is not part of Keeper's format" in err
    document = json.loads(path.read_text())
    assert document["project"] == "Gamma"
    assert document["pam_configuration"]["gateway_name"] == "Project1 Gateway"
    assert document["pam_configuration"]["ksm_app_name"] == "Project1 Application"
    assert document["shared_folder_users"]["permissions"] == [
        {"name": "alice", "manage_users": True, "manage_records": False}
    ]

    empty_the_vault()
    code, out, err = call_pam("project", "import", "--filename", str(path))
    assert code == 0, err
    report = json.loads(out)
    assert report["not_imported"] == []
    after = snapshot()
    # Keeper's format has no password history: everything else of each record comes back.
    gamma_records = {
        k: (*v[:3], *v[4:]) for k, v in before["records"].items() if k[0] == "Gamma - Users"
    }
    assert {k: (*v[:3], *v[4:]) for k, v in after["records"].items()} == gamma_records
    assert {v[4] for v in gamma_records.values()} == {True, False}
    assert any(v[3] for v in gamma_records.values())
    assert after["configurations"] == {
        k: v for k, v in before["configurations"].items() if k[0] == "Gamma - Users"
    }
    assert after["rotation"] == {
        k: v for k, v in before["rotation"].items() if k[0] == "Gamma - Users"
    }
    assert FolderMember.objects.get(
        folder__name="Gamma - Users", user=alice
    ).permission_names() == [
        "can_edit",
        "manage_users",
    ]


def test_keeper_format_needs_one_project(tmp_path):
    build_vault(6)
    code, _, err = call_pam("export", "--format", "keeper", "--output", str(tmp_path / "k.json"))
    assert code == 1
    assert err == (
        "pam: error: --format keeper writes one project, whose PAM Users are in one folder; "
        "these are in 3 (Alpha, Beta, Gamma - Users): give --folder\n"
    )
    assert not (tmp_path / "k.json").exists()
