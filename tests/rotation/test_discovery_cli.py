"""`pam action discover start|status|import`: one JSON object per command, errors as one
`pam: error:` line on stderr with a non-zero exit, the same services and audit as the pages."""

from __future__ import annotations

import json
from unittest import mock

import pytest

from rotation import tasks
from rotation.models import DiscoveredUser, DiscoveryJob
from tests.emulator import ACCOUNT_ID
from tests.iam_paging import iam_paging
from vault.cli import call_pam
from vault.models import AuditEvent, PamUser

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def gateway_runs_at_once():
    """The enqueued task runs at once, as the gateway would (after the request commits)."""

    def run(func, *args, **kwargs):
        assert func == "rotation.tasks.run_discovery"
        tasks.run_discovery(*args)

    with (
        iam_paging(),
        mock.patch("rotation.aws._sleep"),
        mock.patch("rotation.dispatch.async_task", side_effect=run) as async_task,
    ):
        yield async_task


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pam: error: "), err
    return lines[0]


def test_start_prints_the_job(world):
    code, out, err = call_pam("action", "discover", "start", "--config", world.config.uid)
    assert code == 0, err
    data = json.loads(out)
    job = DiscoveryJob.objects.get()
    assert data["job"] == job.uid and data["status"] == "queued" and data["users_found"] == 0
    assert AuditEvent.objects.get(action="discovery.started").actor_kind == "cli"


def test_start_wait_waits_for_the_gateway(world):
    world.emulator.create_user("alice")
    world.emulator.create_user("bob")
    # The test's transaction never commits: hand the job over at once instead of on commit.
    with mock.patch("django.db.transaction.on_commit", side_effect=lambda func, **kw: func()):
        code, out, err = call_pam(
            "action", "discover", "start", "--config", world.config.title, "--wait", "10"
        )
    assert code == 0, err
    data = json.loads(out)
    assert {"job", "status", "users_found"} <= set(data)
    assert data["status"] == "succeeded" and data["users_found"] == 2


def test_start_wait_that_runs_out_exits_non_zero(world, gateway_runs_at_once):
    gateway_runs_at_once.side_effect = None  # the gateway never takes it
    code, out, err = call_pam(
        "action", "discover", "start", "--config", world.config.uid, "--wait", "0.3"
    )
    assert code == 1 and json.loads(out)["status"] == "queued"
    assert "still running" in err


def test_start_while_one_is_active_is_an_error(world):
    call_pam("action", "discover", "start", "--config", world.config.uid)
    code, out, err = call_pam("action", "discover", "start", "--config", world.config.uid)
    assert code != 0 and out == ""
    assert "already queued" in one_error_line(err)
    assert DiscoveryJob.objects.count() == 1


@pytest.mark.parametrize(
    "args, words",
    [
        (["start", "--config", "nope"], "no PAM Configuration"),
        (["status"], "give --job UID or --config"),
        (["status", "--job", "nope"], "no discovery with uid nope"),
        (["import", "--config", "CFG", "--folder", "Team", "--all", "--filter", "x"], "KEY=VALUE"),
        (["import", "--config", "CFG", "--folder", "Team", "--all"], "no discovery yet"),
        (
            ["import", "--config", "CFG", "--folder", "Team", "--user", "a", "--filter", "name=a"],
            "--filter applies to --all only",
        ),
    ],
)
def test_bad_input_is_one_line_on_stderr(world, args, words):
    args = [world.config.uid if a == "CFG" else a for a in args]
    code, out, err = call_pam("action", "discover", *args)
    assert code != 0 and out == ""
    assert words in one_error_line(err)


def test_status_of_the_latest_or_a_given_job(world, django_capture_on_commit_callbacks):
    world.emulator.create_user("alice")
    with django_capture_on_commit_callbacks(execute=True):
        call_pam("action", "discover", "start", "--config", world.config.uid)
    job = DiscoveryJob.objects.get()
    for args in (["--config", world.config.title], ["--job", job.uid]):
        code, out, err = call_pam("action", "discover", "status", *args)
        assert code == 0, err
        data = json.loads(out)
        assert (data["job"], data["status"], data["users_found"]) == (job.uid, "succeeded", 1)


def test_import_users_and_all_with_a_filter(world, personas, django_capture_on_commit_callbacks):
    for name in ("alice", "bob", "svc-x"):
        world.emulator.create_user(name, password=None if name == "svc-x" else "Initial-Pa55!")
    with django_capture_on_commit_callbacks(execute=True):
        call_pam("action", "discover", "start", "--config", world.config.uid)
    code, out, err = call_pam(
        "action", "discover", "import", "--config", world.config.uid,
        "--folder", "Team", "--user", "alice",
    )  # fmt: skip
    assert code == 0, err
    users = json.loads(out)["users"]
    assert list(users) == ["alice"]
    assert PamUser.objects.get(uid=users["alice"]).distinguished_name == (
        f"arn:aws:iam::{ACCOUNT_ID}:user/alice"
    )
    code, out, err = call_pam(
        "action", "discover", "import", "--config", world.config.uid, "--folder",
        personas.folder.uid, "--all", "--filter", "console=yes",
    )  # fmt: skip
    assert code == 0, err
    again = json.loads(out)["users"]
    assert again == {"alice": users["alice"], "bob": again["bob"]}  # alice: the same record
    assert PamUser.objects.count() == 2
    assert DiscoveredUser.objects.filter(record__isnull=True).get().user_name == "svc-x"
    [summary] = AuditEvent.objects.filter(action="discovery.imported", details__created=1)[:1]
    assert summary.actor_kind == "cli"
