"""`python manage.py pam ...` as an operator runs it: a real process against a real SQLite file.
Bad input ends with one `pam: error:` line and a non-zero exit, never a traceback."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

EXAMPLE = {
    "folders": [{"name": "AWS IAM Users"}],
    "gateways": [{"name": "default"}],
    "configurations": [
        {
            "title": "AWS IAM Configuration",
            "environment": "aws",
            "folder": "AWS IAM Users",
            "gateway": "default",
            "aws_id": "AWS-Dept",
            "access_key_id": "USE_INSTANCE_ROLE",
            "access_secret_key": "USE_INSTANCE_ROLE",
            "region_names": ["us-east-1"],
            "endpoint_url": "http://127.0.0.1:5055",
            "default_rotation_schedule": {"type": "ON_DEMAND"},
            # USE_INSTANCE_ROLE requires a target scope (docs/import.md).
            "scope_user_pattern": "TestUser",
        }
    ],
    "users": [
        {
            "title": "AWS user: TestUser",
            "folder": "AWS IAM Users",
            "login": "TestUser",
            "password": "Subprocess-Passw0rd!",
            "distinguished_name": "arn:aws:iam::123456789012:user/TestUser",
        }
    ],
}


def pam_env(db_file: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="vault.settings_test",
        DATABASE_URL=f"sqlite:///{db_file}",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def manage(db_file: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=pam_env(db_file),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory) -> Path:
    db_file = tmp_path_factory.mktemp("template") / "vault.sqlite3"
    result = manage(db_file, "migrate", "--skip-checks", "-v", "0")
    assert result.returncode == 0, result.stderr
    return db_file


@pytest.fixture
def db_file(migrated_template, tmp_path) -> Path:
    target = tmp_path / "vault.sqlite3"
    shutil.copy(migrated_template, target)
    return target


def assert_one_error_line(result: subprocess.CompletedProcess, code: int = 1) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pam: error: ")
    return lines[0]


def test_import_then_reimport_prints_the_same_uids(db_file, tmp_path):
    path = tmp_path / "import.json"
    path.write_text(json.dumps(EXAMPLE))
    first = manage(db_file, "pam", "import", str(path))
    assert first.returncode == 0, first.stderr
    second = manage(db_file, "pam", "import", str(path))
    assert json.loads(second.stdout) == json.loads(first.stdout)
    listed = json.loads(manage(db_file, "pam", "list", "--format", "json").stdout)
    assert {r["type"] for r in listed} == {"pamUser", "pamAwsConfiguration"}
    assert "Subprocess-Passw0rd!" not in first.stdout + second.stdout


def test_get_unknown_uid(db_file):
    line = assert_one_error_line(manage(db_file, "pam", "get", "no-such-uid"))
    assert line == (
        'pam: error: no record or configuration with uid no-such-uid or title "no-such-uid" '
        "(see `pam list`)"
    )


def test_import_missing_file(db_file, tmp_path):
    line = assert_one_error_line(manage(db_file, "pam", "import", str(tmp_path / "nope.json")))
    assert line.endswith("no such file")


def test_import_invalid_json(db_file, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"folders": [')
    line = assert_one_error_line(manage(db_file, "pam", "import", str(path)))
    assert "invalid JSON" in line


def test_import_wrong_types(db_file, tmp_path):
    path = tmp_path / "types.json"
    path.write_text(json.dumps({"users": "TestUser"}))
    line = assert_one_error_line(manage(db_file, "pam", "import", str(path)))
    assert line == "pam: error: users: must be a list"


def test_import_unknown_owner(db_file, tmp_path):
    path = tmp_path / "import.json"
    path.write_text(json.dumps(EXAMPLE))
    line = assert_one_error_line(manage(db_file, "pam", "import", str(path), "--owner", "ghost"))
    assert line == 'pam: error: --owner: no user "ghost"'


def test_usage_error_exits_2_with_one_line(db_file):
    line = assert_one_error_line(manage(db_file, "pam", "get"), code=2)
    assert "the following arguments are required: UID" in line


def test_unknown_subcommand_lists_the_commands(db_file):
    line = assert_one_error_line(manage(db_file, "pam", "frobnicate"), code=2)
    assert "invalid choice: 'frobnicate' (choose from 'import', 'list', 'get'" in line


def test_unmigrated_database_is_one_line_not_a_traceback(tmp_path):
    assert_one_error_line(manage(tmp_path / "empty.sqlite3", "pam", "list"))


def test_get_unmask_of_a_tampered_password_is_one_line_naming_the_record(db_file, tmp_path):
    path = tmp_path / "import.json"
    # Just the folder and the PAM User: the password is what this test is about.
    path.write_text(json.dumps({k: v for k, v in EXAMPLE.items() if k != "configurations"}))
    imported = manage(db_file, "pam", "import", str(path))
    assert imported.returncode == 0, imported.stderr
    uid = next(
        r["uid"]
        for r in json.loads(manage(db_file, "pam", "list", "--format", "json").stdout)
        if r["type"] == "pamUser"
    )
    with sqlite3.connect(db_file) as db:
        (blob,) = db.execute(
            "SELECT password_enc FROM vault_pamuser WHERE uid = ?", (uid,)
        ).fetchone()
        version, kid, body = blob.split(":", 2)
        payload = bytearray(base64.urlsafe_b64decode(body))
        payload[-1] ^= 1  # one flipped bit: AES-GCM refuses the whole value
        tampered = f"{version}:{kid}:{base64.urlsafe_b64encode(bytes(payload)).decode()}"
        db.execute("UPDATE vault_pamuser SET password_enc = ? WHERE uid = ?", (tampered, uid))

    result = manage(db_file, "pam", "get", uid, "--unmask")
    line = assert_one_error_line(result)
    assert line.startswith(f"pam: error: record {uid}: the stored password cannot be decrypted")
    assert "Subprocess-Passw0rd!" not in result.stdout + result.stderr
    with sqlite3.connect(db_file) as db:
        actions = [a for (a,) in db.execute("SELECT action FROM vault_auditevent")]
    assert "password.reveal_failed" in actions and "password.revealed" not in actions


def test_import_with_a_lone_surrogate_names_the_json_path_and_imports_nothing(db_file, tmp_path):
    document = {k: v for k, v in EXAMPLE.items() if k != "configurations"}
    document["users"] = [{**EXAMPLE["users"][0], "title": "AWS user: \ud800"}]
    path = tmp_path / "surrogate.json"
    path.write_text(json.dumps(document))  # ensure_ascii: the file holds the escape \ud800
    assert "\\ud800" in path.read_text()
    line = assert_one_error_line(manage(db_file, "pam", "import", str(path)))
    assert line == (
        "pam: error: users[0].title: is not valid Unicode text "
        "(\\ud800 is half of a surrogate pair)"
    )
    listed = manage(db_file, "pam", "list", "--format", "json")
    assert json.loads(listed.stdout) == []
