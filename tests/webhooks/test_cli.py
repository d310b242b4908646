"""`pam webhook add|list|remove`."""

from __future__ import annotations

import json

import pytest
from standardwebhooks import Webhook as Verifier

from vault.cli import call_pam
from webhooks.models import Webhook

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.WEBHOOK_URL_ALLOWLIST = ["http://127.0.0.1:*"]


def test_add_prints_uid_and_secret_then_list_and_remove(personas):
    code, out, err = call_pam(
        "webhook", "add", "--url", "http://127.0.0.1:8123/x", "--folder", "Team",
        "--events", "rotation.succeeded,gateway.offline",
    )  # fmt: skip
    assert (code, err) == (0, "")
    added = json.loads(out)
    webhook = Webhook.objects.get(uid=added["uid"])
    assert webhook.folder == personas.folder
    assert webhook.events == ["rotation.succeeded", "gateway.offline"]
    assert added["secret"].startswith("whsec_") and webhook.get_secret("secret") == added["secret"]
    Verifier(added["secret"])
    code, out, _ = call_pam("webhook", "list", "--format", "json")
    [row] = json.loads(out)
    assert row["uid"] == added["uid"] and row["folder"] == personas.folder.uid
    assert "secret" not in row and added["secret"] not in out
    assert call_pam("webhook", "remove", added["uid"])[0] == 0
    assert not Webhook.objects.exists()


def test_add_without_folder_is_global_with_default_events(db):
    code, out, _ = call_pam("webhook", "add", "--url", "http://127.0.0.1:8123/x")
    webhook = Webhook.objects.get(uid=json.loads(out)["uid"])
    assert webhook.folder is None and webhook.events == ["rotation.failed", "rotation.may_be_live"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--url", "http://10.0.0.1/x"], "not an allowed webhook address"),
        (["--url", "http://127.0.0.1:1/", "--events", "rotation.exploded"], "unknown event"),
        (["--url", "http://127.0.0.1:1/", "--events", ""], "at least one event"),
        (["--url", "http://127.0.0.1:1/", "--folder", "Nowhere"], "no folder"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(personas, args, message):
    code, out, err = call_pam("webhook", "add", *args)
    assert code == 1 and out == ""
    assert err.startswith("pam: error: ") and message in err and err.count("\n") == 1
    assert not Webhook.objects.exists()


def test_remove_an_unknown_uid(db):
    code, _, err = call_pam("webhook", "remove", "nope")
    assert code == 1 and "no webhook with uid nope" in err
