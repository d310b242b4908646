"""`make run`'s banner names the demo application, the folders it reads and the command that
makes it a credential; the command as printed works."""

from __future__ import annotations

import json
import shlex

import pytest

from rotation.management.commands.runlocal import Command
from secretsapi.models import ClientCredential
from vault.cli import call_pam

pytestmark = pytest.mark.django_db


def test_the_banner_names_the_application_and_a_working_command(personas):
    lines = Command()._demo_application_lines(8000)
    text = "\n".join(lines)
    assert "“Rotation App” reads “Team”" in text
    assert "http://127.0.0.1:8000/aws/secretsmanager/" in text
    command = shlex.split(lines[-1].split("API key:", 1)[1])
    assert command[:4] == [".venv/bin/python", "manage.py", "pam", "app"]
    code, out, err = call_pam(*command[3:])
    assert (code, err) == (0, "")
    assert ClientCredential.objects.filter(access_key_id=json.loads(out)["access_key_id"]).exists()


def test_on_another_port_the_command_sets_the_base_url(personas):
    lines = Command()._demo_application_lines(8123)
    assert "VAULT_BASE_URL=http://127.0.0.1:8123 .venv/bin/python" in lines[-1]
    assert "http://127.0.0.1:8123/aws/secretsmanager/" in lines[0]


def test_no_application_no_lines(db):
    assert Command()._demo_application_lines(8000) == []
