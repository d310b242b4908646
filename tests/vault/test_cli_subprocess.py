"""`python manage.py pam ...` as an operator runs it: a real process against a real SQLite file.
Bad input ends with one `pam: error:` line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
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
    assert line == 'pam: error: no record or configuration with uid "no-such-uid"'


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
