"""`pam app list|share` and `pam app credential create|list|revoke`: the JSON scripts rely on,
the audit (actor "cli"), and bad input as one line on stderr with a non-zero exit."""

from __future__ import annotations

import json

import pytest

from secretsapi.models import ClientCredential
from vault.cli import call_pam
from vault.models import Application, ApplicationFolder, AuditEvent

pytestmark = pytest.mark.django_db


def test_create_prints_one_json_object_with_key_secret_and_endpoint(personas, settings):
    settings.VAULT_BASE_URL = "https://vault.example.com"
    code, out, err = call_pam(
        "app", "credential", "create", "--app", "Rotation App", "--name", "billing",
        "--expires", "30", "--allowed-network", "10.0.0.0/8", "--allowed-network", "192.0.2.1",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    made = json.loads(out)
    assert made["endpoint_url"] == "https://vault.example.com/aws/secretsmanager/"
    credential = ClientCredential.objects.get(access_key_id=made["access_key_id"])
    assert credential.get_secret("secret_access_key") == made["secret_access_key"]
    assert credential.application == personas.application and credential.name == "billing"
    assert credential.allowed_networks == ["10.0.0.0/8", "192.0.2.1/32"]
    assert made["allowed_networks"] == credential.allowed_networks
    assert made["expires_at"] == credential.expires_at.isoformat()
    event = AuditEvent.objects.get(action="credential.created")
    assert event.actor_kind == "cli" and event.actor is None


def test_create_finds_the_application_by_uid_too(personas):
    code, out, _ = call_pam("app", "credential", "create", "--app", personas.application.uid)
    assert code == 0
    credential = ClientCredential.objects.get(access_key_id=json.loads(out)["access_key_id"])
    assert credential.expires_at is None and credential.allowed_networks == []


def test_list_never_shows_secrets_and_revoke_is_at_once_and_idempotent(personas):
    _, out, _ = call_pam("app", "credential", "create", "--app", "Rotation App")
    made = json.loads(out)
    code, out, _ = call_pam(
        "app", "credential", "list", "--app", "Rotation App", "--format", "json"
    )
    [row] = json.loads(out)
    assert row["access_key_id"] == made["access_key_id"] and row["state"] == "active"
    assert made["secret_access_key"] not in out
    code, out, err = call_pam("app", "credential", "revoke", made["access_key_id"])
    assert code == 0 and made["access_key_id"] in out and err == ""
    assert ClientCredential.objects.get().revoked_at is not None
    code, out, err = call_pam("app", "credential", "revoke", made["access_key_id"])
    assert code == 0 and out == "" and "already revoked" in err
    assert AuditEvent.objects.filter(action="credential.revoked", actor_kind="cli").count() == 1
    _, out, _ = call_pam("app", "credential", "list", "--app", "Rotation App")
    assert made["access_key_id"] in out and "revoked" in out


@pytest.mark.parametrize(
    "args,message",
    [
        (["credential", "create", "--app", "Nowhere"], 'no application with uid Nowhere or name "Nowhere"'),
        (["credential", "create", "--app", "Rotation App", "--allowed-network", "10.0.0.0/99"], "is not a network"),
        (["credential", "create", "--app", "Rotation App", "--expires", "0"], "out of range"),
        (["credential", "create", "--app", "Rotation App", "--expires", "soon"], "not a number of days"),
        (["credential", "list", "--app", "Nowhere"], "no application"),
        (["credential", "revoke", "PVAKNOSUCHKEY"], "no client credential with access key id"),
        (["share", "--app", "Rotation App", "--folder", "Nowhere"], "no folder"),
        (["share", "--app", "Nowhere", "--folder", "Team"], "no application"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_on_stderr_and_changes_nothing(personas, args, message):
    shares = list(ApplicationFolder.objects.values_list("pk", "editable"))
    code, out, err = call_pam("app", *args)
    assert code == 1 and out == ""
    assert err.startswith("pam: error: ") and message in err and err.count("\n") == 1
    assert not ClientCredential.objects.exists()
    assert list(ApplicationFolder.objects.values_list("pk", "editable")) == shares
    assert not AuditEvent.objects.exists()


def test_a_name_matching_two_applications_asks_for_a_uid(personas):
    Application.objects.create(name="rotation app")  # names are unique, case matters
    code, _, err = call_pam("app", "credential", "create", "--app", "ROTATION APP")
    assert code == 1 and "more than one application" in err


def test_usage_errors_exit_2(personas):
    code, _, err = call_pam("app", "credential", "create")
    assert code == 2 and "--app" in err


def test_share_is_read_only_unless_editable_and_audited_as_cli(personas):
    other = Application.objects.create(name="Reader")
    code, out, err = call_pam("app", "share", "--app", "Reader", "--folder", "Elsewhere")
    assert (code, err) == (0, "") and "read-only" in out
    share = ApplicationFolder.objects.get(application=other, folder=personas.other_folder)
    assert share.editable is False
    code, out, _ = call_pam(
        "app", "share", "--app", other.uid, "--folder", personas.other_folder.uid, "--editable"
    )
    share.refresh_from_db()
    assert code == 0 and share.editable is True
    events = AuditEvent.objects.filter(action="folder.shared", folder=personas.other_folder)
    assert events.count() == 2 and {e.actor_kind for e in events} == {"cli"}
    assert events.first().details["application"] == "Reader"


def test_app_list_names_folders_and_administrators(personas):
    personas.application.administrators.add(personas.editor)
    code, out, _ = call_pam("app", "list", "--format", "json")
    [row] = json.loads(out)
    assert row["name"] == "Rotation App" and row["administrators"] == ["editor"]
    assert row["folders"] == [{"uid": personas.folder.uid, "name": "Team", "editable": True}]
    code, out, _ = call_pam("app", "list")
    assert code == 0 and "Rotation App" in out and "Team" in out
