"""No plaintext password or secret key anywhere in the SQLite file (or its WAL) after creating
records, password history, configurations and a rotation's pending password, in real processes
the way an operator would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.vault.test_cli_subprocess import ROOT, manage, pam_env

IMPORTED_PASSWORD = "Imported-Plaintext-Pw-7f3a!"
EDITED_PASSWORD = "Edited-Plaintext-Pw-91c2!"
SECRET_KEY = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETKEY"
SECOND_SECRET_KEY = "Second-Config-Secret-Key-55d0"
PENDING_PASSWORD = "Pending-Plaintext-Pw-0b7e!"
SECRETS = [IMPORTED_PASSWORD, EDITED_PASSWORD, SECRET_KEY, SECOND_SECRET_KEY, PENDING_PASSWORD]

DOCUMENT = {
    "folders": [{"name": "At Rest"}],
    "gateways": [{"name": "default"}],
    "configurations": [
        {
            "title": "Keys",
            "folder": "At Rest",
            "gateway": "default",
            "access_key_id": "AKIAATRESTEXAMPLE",
            "access_secret_key": SECRET_KEY,
            "region_names": ["us-east-1"],
        }
    ],
    "users": [
        {
            "title": "AWS user: AtRestUser",
            "folder": "At Rest",
            "login": "AtRestUser",
            "password": IMPORTED_PASSWORD,
            "distinguished_name": "arn:aws:iam::123456789012:user/AtRestUser",
        }
    ],
}

# Runs in `manage.py shell`: history through the services, a second configuration, and a
# rotation holding a write-ahead pending password.
SCRIPT = f"""
from vault import services
from vault.models import PamConfiguration, PamUser, Gateway
from rotation.models import Rotation

record = PamUser.objects.get(login="AtRestUser")
services.pam_user_update(record=record, title=record.title, login=record.login,
    distinguished_name=record.distinguished_name, password={EDITED_PASSWORD!r})
config = PamConfiguration(folder=record.folder, title="Second", gateway=Gateway.objects.get(),
    access_key_id="AKIASECONDEXAMPLE")
services.configuration_save(config=config, access_secret_key={SECOND_SECRET_KEY!r})
rotation = Rotation.objects.create(pam_user=record, configuration=config, gateway_name="default",
    trigger="cli", status="failed", pending_may_be_live=True)
rotation.set_secret("pending_password", {PENDING_PASSWORD!r})
rotation.save()
"""


def raw_bytes(db_file: Path) -> bytes:
    parts = [
        db_file,
        db_file.with_name(db_file.name + "-wal"),
        db_file.with_name(db_file.name + "-journal"),
    ]
    return b"".join(p.read_bytes() for p in parts if p.exists())


def test_no_plaintext_secret_in_the_sqlite_file(tmp_path):
    db_file = tmp_path / "at-rest.sqlite3"
    assert manage(db_file, "migrate", "--skip-checks", "-v", "0").returncode == 0
    source = tmp_path / "import.json"
    source.write_text(json.dumps(DOCUMENT))
    imported = manage(db_file, "pam", "import", str(source))
    assert imported.returncode == 0, imported.stderr
    shell = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SCRIPT],
        cwd=ROOT,
        env=pam_env(db_file),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shell.returncode == 0, shell.stderr

    # The values really are stored (and readable with the key) ...
    record_uid = json.loads(imported.stdout)["users"]["AWS user: AtRestUser"]
    shown = manage(db_file, "pam", "get", record_uid, "--format", "json", "--unmask")
    assert json.loads(shown.stdout)["password"] == EDITED_PASSWORD
    # ... and the file is the one they were written to: non-secret fields are in it.
    content = raw_bytes(db_file)
    assert b"AtRestUser" in content and b"AKIASECONDEXAMPLE" in content
    # None of the secrets is, in any row, history entry, audit detail or free page.
    for secret in SECRETS:
        assert secret.encode() not in content, f"{secret} found in the SQLite file"
