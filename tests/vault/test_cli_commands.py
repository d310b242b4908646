"""`pam list`, `pam get`, `pam genkey`, `pam rekey`, and how `pam` finds and runs subcommands."""

from __future__ import annotations

import argparse
import base64
import json
import types

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from tests.conftest import make_configuration, make_pam_user
from vault import cli, crypto, services
from vault.cli import CliError, call_pam
from vault.management.commands import pam as pam_command
from vault.models import AuditEvent, PamConfiguration, PamUser, PasswordVersion, SharedFolder

pytestmark = pytest.mark.django_db


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


# --- pam list ----------------------------------------------------------------------------------


def test_list_json_has_records_and_configurations_without_secrets(personas, record, config):
    code, out, err = call_pam("list", "--format", "json")
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert rows == [
        {
            "uid": config.uid,
            "type": "pamAwsConfiguration",
            "title": config.title,
            "folder": personas.folder.uid,
            "login": "",
            "distinguished_name": "",
        },
        {
            "uid": record.uid,
            "type": "pamUser",
            "title": record.title,
            "folder": personas.folder.uid,
            "login": "TestUser",
            "distinguished_name": record.distinguished_name,
        },
    ]
    assert "Old-Passw0rd!" not in out and "testing-secret" not in out


def test_list_table_has_a_heading_and_one_line_per_row(record, config):
    code, out, _ = call_pam("list")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["TYPE", "UID", "TITLE", "FOLDER", "LOGIN"]
    assert len(lines) == 3
    assert record.uid in out and "Old-Passw0rd!" not in out


def test_list_folder_filters(personas, record):
    other = make_pam_user(personas.other_folder, "Elsewhere")
    code, out, _ = call_pam("list", "--folder", personas.other_folder.uid, "--format", "json")
    assert code == 0
    assert [r["uid"] for r in json.loads(out)] == [other.uid]


def test_list_unknown_folder_is_one_error_line(personas):
    code, out, err = call_pam("list", "--folder", "nope")
    assert code == 1 and out == ""
    assert err == 'pam: error: no folder with uid nope or name "nope" (see `pam list`)\n'


# --- pam get -----------------------------------------------------------------------------------


def test_get_masks_the_password(personas, record):
    code, out, _ = call_pam("get", record.uid, "--format", "json")
    assert code == 0
    assert json.loads(out) == {
        "uid": record.uid,
        "type": "pamUser",
        "title": record.title,
        "folder": personas.folder.uid,
        "login": "TestUser",
        "distinguished_name": record.distinguished_name,
        "password": "********",
        "access_key_id": "",
        "secret_access_key": "",
        "notes": "",
        "managed": True,
    }
    assert not AuditEvent.objects.filter(action="password.revealed").exists()


def test_get_shows_notes_and_whether_the_vault_manages_the_record(record):
    PamUser.objects.filter(pk=record.pk).update(notes="Owner: platform team", managed=False)
    _, out, _ = call_pam("get", record.uid, "--format", "json")
    assert (json.loads(out)["notes"], json.loads(out)["managed"]) == ("Owner: platform team", False)


def test_get_unmask_shows_the_password_and_audits_as_cli(record):
    code, out, _ = call_pam("get", record.uid, "--format", "json", "--unmask")
    assert code == 0
    assert json.loads(out)["password"] == "Old-Passw0rd!"
    event = AuditEvent.objects.get(action="password.revealed")
    assert (event.actor_kind, event.object_uid) == ("cli", record.uid)
    assert "Old-Passw0rd!" not in json.dumps(event.details)


def test_get_table_format_lists_fields(record):
    code, out, _ = call_pam("get", record.uid)
    assert code == 0
    assert any(line.split() == ["password", "********"] for line in out.splitlines())


def test_get_record_without_password_shows_empty(personas):
    bare = make_pam_user(personas.folder, "Bare")
    _, out, _ = call_pam("get", bare.uid, "--format", "json")
    assert json.loads(out)["password"] == ""


def test_get_configuration_masks_the_secret_key(personas, config):
    code, out, _ = call_pam("get", config.uid, "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert data["type"] == "pamAwsConfiguration"
    assert data["access_secret_key"] == "********"
    assert (data["gateway"], data["folder"]) == ("default", personas.folder.uid)
    assert "testing-secret" not in out


def test_get_configuration_unmask_shows_the_secret_and_audits(config):
    _, out, _ = call_pam("get", config.uid, "--format", "json", "--unmask")
    assert json.loads(out)["access_secret_key"] == "testing-secret"
    event = AuditEvent.objects.get(action="password.revealed")
    assert (event.actor_kind, event.details) == ("cli", {"what": "access_secret_key"})


def test_get_unknown_uid_is_one_error_line(personas):
    code, out, err = call_pam("get", "does-not-exist")
    assert (code, out) == (1, "")
    assert err == (
        'pam: error: no record or configuration with uid does-not-exist or title "does-not-exist" '
        "(see `pam list`)\n"
    )


def test_get_runs_record_extras(record, monkeypatch):
    seen = []

    def extra(rec, unmask):
        seen.append((rec.uid, unmask))
        return {"pending_password": "********"}

    monkeypatch.setattr(cli, "RECORD_EXTRAS", [extra])
    _, out, _ = call_pam("get", record.uid, "--format", "json")
    assert json.loads(out)["pending_password"] == "********"
    assert seen == [(record.uid, False)]


def test_undecryptable_secret_is_one_error_line(record):
    PamUser.objects.filter(pk=record.pk).update(password_enc="v1:0000:AAAA")
    code, _, err = call_pam("get", record.uid, "--unmask")
    assert code == 1
    assert err.startswith(f"pam: error: record {record.uid}: the stored password cannot be")
    assert "key 0000, which is not in VAULT_ENCRYPTION_KEYS" in err
    assert len(err.splitlines()) == 1


# --- invisible and control characters in output ----------------------------------------------

# Characters that reorder or hide text in a terminal: a right-to-left override, a right-to-left
# mark, a zero-width space, a byte-order mark, an escape (starts terminal sequences), a
# next-line control, and a Unicode tag character (outside the 16-bit range).
HIDDEN = "\u202e\u200f\u200b\ufeff\x1b\x85\U000e0041"
SPOOFED_TITLE = f"invoice{HIDDEN}fdp.exe"


@pytest.fixture
def spoofed(personas):
    return make_pam_user(personas.folder, "Spoofed", title=SPOOFED_TITLE)


def _assert_nothing_hidden(out: str) -> None:
    assert not any(ch in out for ch in HIDDEN), ascii(out)


def test_list_json_escapes_invisible_characters_and_keeps_the_value(spoofed):
    code, out, _ = call_pam("list", "--format", "json")
    assert code == 0
    _assert_nothing_hidden(out)
    assert "\\u202e" in out
    assert [r["title"] for r in json.loads(out)] == [SPOOFED_TITLE]


def test_get_json_escapes_invisible_characters_and_keeps_the_value(spoofed):
    code, out, _ = call_pam("get", spoofed.uid, "--format", "json")
    assert code == 0
    _assert_nothing_hidden(out)
    assert json.loads(out)["title"] == SPOOFED_TITLE


def test_list_table_escapes_invisible_characters(spoofed):
    code, out, _ = call_pam("list")
    assert code == 0
    _assert_nothing_hidden(out)
    assert "invoice\\u202e\\u200f\\u200b\\ufeff\\x1b\\x85\\U000e0041fdp.exe" in out


def test_get_table_escapes_invisible_characters_inside_structured_values(personas):
    schedule = {"type": "ON_DEMAND", "note": f"a{HIDDEN}b"}
    config = make_configuration(personas.folder, personas.gateway)
    PamConfiguration.objects.filter(pk=config.pk).update(default_rotation_schedule=schedule)
    code, out, _ = call_pam("get", config.uid)
    assert code == 0
    _assert_nothing_hidden(out)
    assert "\\u202e" in out


# --- pam genkey / rekey ------------------------------------------------------------------------


def test_genkey_last_line_is_a_key_the_setting_accepts():
    code, out, _ = call_pam("genkey")
    key = out.splitlines()[-1]
    assert code == 0
    assert len(base64.urlsafe_b64decode(key)) == 32
    with override_settings(VAULT_ENCRYPTION_KEYS=[key]):
        aad = b"x"
        assert crypto.decrypt(crypto.encrypt("ok", aad=aad), aad=aad) == "ok"


def test_genkey_prints_a_new_key_each_time():
    assert call_pam("genkey")[1].splitlines()[-1] != call_pam("genkey")[1].splitlines()[-1]


def test_secret_models_include_every_secrets_mixin_model():
    labels = {m._meta.label for m in cli.secret_models()}
    assert {"vault.PamUser", "vault.PasswordVersion", "vault.PamConfiguration"} <= labels
    assert "rotation.Rotation" in labels


def test_rekey_moves_every_secret_to_the_first_key_and_loses_nothing(personas):
    key_a, key_b = crypto.generate_key(), crypto.generate_key()
    with override_settings(VAULT_ENCRYPTION_KEYS=[key_a]):
        record = services.pam_user_create(
            folder=personas.folder,
            title="R",
            login="R",
            distinguished_name="arn:aws:iam::123456789012:user/R",
            password="Rekey-Passw0rd!",
        )
        config = make_configuration(personas.folder, personas.gateway)
        empty = make_pam_user(personas.folder, "Empty")
    with override_settings(VAULT_ENCRYPTION_KEYS=[key_b, key_a]):
        code, out, _ = call_pam("rekey")
        assert code == 0
        assert "re-encrypted 3 secret value(s)" in out  # password, its version, secret key
        assert call_pam("rekey")[1].startswith("re-encrypted 0 ")
    with override_settings(VAULT_ENCRYPTION_KEYS=[key_b]):
        assert PamUser.objects.get(pk=record.pk).get_secret("password") == "Rekey-Passw0rd!"
        version = PasswordVersion.objects.get(pam_user=record)
        assert version.get_secret("password") == "Rekey-Passw0rd!"
        stored = PamConfiguration.objects.get(pk=config.pk)
        assert stored.get_secret("access_secret_key") == "testing-secret"
        assert PamUser.objects.get(pk=empty.pk).password_enc == ""


def test_rekey_with_an_unknown_key_changes_nothing(personas):
    key_a, key_b = crypto.generate_key(), crypto.generate_key()
    with override_settings(VAULT_ENCRYPTION_KEYS=[key_a]):
        first = make_pam_user(personas.folder, "First", password="P1-Passw0rd!")
    with override_settings(VAULT_ENCRYPTION_KEYS=[key_b]):
        make_pam_user(personas.folder, "Second", password="P2-Passw0rd!")
    before = PamUser.objects.get(pk=first.pk).password_enc
    with override_settings(VAULT_ENCRYPTION_KEYS=[crypto.generate_key(), key_b]):
        code, _, err = call_pam("rekey")
    assert code == 1
    assert "nothing was changed" in err and len(err.splitlines()) == 1
    assert PamUser.objects.get(pk=first.pk).password_enc == before


# --- subcommand discovery and error handling ---------------------------------------------------


def fake_app_module(handler):
    def register(subparsers):
        parser = subparsers.add_parser("fake", help="a test subcommand")
        group = parser.add_subparsers(dest="fake_command", required=True)
        run = group.add_parser("run")
        run.add_argument("--count", type=int, default=1)
        run.set_defaults(func=handler)

    return types.SimpleNamespace(register=register)


@pytest.fixture
def with_fake_app(monkeypatch):
    def install(handler):
        modules = [cli, fake_app_module(handler)]
        monkeypatch.setattr(pam_command, "iter_app_cli_modules", lambda: iter(modules))

    return install


def test_subcommands_of_every_app_cli_module_are_registered(with_fake_app):
    calls = []

    def handler(options, out):
        calls.append(options.count)
        out.json_line({"ok": True})

    with_fake_app(handler)
    code, out, _ = call_pam("fake", "run", "--count", "3")
    assert (code, out, calls) == (0, '{"ok": true}\n', [3])
    assert call_pam("list")[0] == 0  # the vault's own commands are still there


def test_discovery_finds_the_vault_cli_module():
    assert cli in list(cli.iter_app_cli_modules())


def test_handler_exit_status_is_the_command_exit_status(with_fake_app):
    with_fake_app(lambda options, out: 3)
    assert call_pam("fake", "run")[0] == 3


@pytest.mark.parametrize(
    "error, code, lines",
    [
        (CliError("first", "second", code=4), 4, ["pam: error: first", "pam: error: second"]),
        (ValidationError("not valid"), 1, ["pam: error: not valid"]),
        (crypto.CryptoError("cannot decrypt"), 1, ["pam: error: cannot decrypt"]),
        (
            RuntimeError("boom"),
            1,
            ["pam: error: RuntimeError: boom (rerun with --traceback for details)"],
        ),
    ],
)
def test_errors_become_lines_on_stderr(with_fake_app, error, code, lines):
    def handler(options, out):
        raise error

    with_fake_app(handler)
    result = call_pam("fake", "run")
    assert (result[0], result[2].splitlines()) == (code, lines)


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "the following arguments are required: COMMAND"),
        (("nope",), "invalid choice: 'nope'"),
        (("import",), "the following arguments are required: FILE"),
        (("list", "--format", "xml"), "invalid choice: 'xml'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args, message):
    code, out, err = call_pam(*args)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("pam: error: ") and message in err


def test_output_helper_table_aligns_columns():
    lines = []
    out = cli.OutputHelper(types.SimpleNamespace(write=lines.append), None)
    out.table([{"a": "x", "b": True}, {"a": "longer", "b": None}], [("a", "A"), ("b", "B")])
    assert lines == ["A       B", "x       yes", "longer"]


def test_handler_receives_a_namespace(with_fake_app):
    received = []
    with_fake_app(lambda options, out: received.append(options))
    call_pam("fake", "run")
    assert isinstance(received[0], argparse.Namespace)


def test_uids_beginning_with_a_dash_are_values_not_options(personas):
    record = make_pam_user(personas.folder, "Dashed")
    PamUser.objects.filter(pk=record.pk).update(uid="-" + "a" * 21)
    SharedFolder.objects.filter(pk=personas.folder.pk).update(uid="-" + "b" * 21)
    code, out, err = call_pam("get", "-" + "a" * 21, "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out)["uid"] == "-" + "a" * 21
    code, out, _ = call_pam("list", "--folder", "-" + "b" * 21, "--format", "json")
    assert code == 0
    assert [r["title"] for r in json.loads(out)] == ["AWS user: Dashed"]
