"""Audit events in words (rotation/auditlog.py): one sentence per event from its action, actor,
object and main details; the details as labelled key/values; object types as people call them."""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

from rotation import auditlog
from rotation.auditlog import event_details, event_sentence, object_type_label
from tests.conftest import make_configuration, make_pam_user
from vault.audit import audit_record
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bob(personas):
    return make_pam_user(personas.folder, "bob.deploy", title="AWS user: bob.deploy")


@pytest.fixture
def config(personas):
    return make_configuration(personas.folder, personas.gateway)


@pytest.mark.parametrize(
    "model_name, label",
    [
        ("pamuser", "PAM User"),
        ("pamconfiguration", "PAM Configuration"),
        ("sharedfolder", "Shared folder"),
        ("gateway", "Gateway"),
        ("schedule", "Task schedule"),
        ("application", "Application"),
        ("", ""),
        ("somethingnew", "Somethingnew"),
    ],
)
def test_object_types_are_named_as_people_call_them(model_name, label):
    assert object_type_label(model_name) == label


def _sentence(action, **kw) -> str:
    return event_sentence(audit_record(action, **kw))


def test_reveal(personas, bob):
    sentence = _sentence(
        "password.revealed", actor=personas.editor, obj=bob, details={"what": "password"}
    )
    assert sentence == "editor revealed the password of PAM User “AWS user: bob.deploy”."


def test_reveal_of_an_earlier_password(personas, bob):
    sentence = _sentence(
        "password.revealed",
        actor=personas.editor,
        obj=bob,
        details={"what": "history", "version": "v123"},
    )
    assert sentence == "editor revealed an earlier password of PAM User “AWS user: bob.deploy”."


def test_reveal_of_a_configurations_secret(personas, config):
    sentence = _sentence(
        "password.revealed",
        actor=personas.editor,
        obj=config,
        details={"what": "access_secret_key"},
    )
    assert sentence == (
        "editor revealed the access secret key of PAM Configuration “AWS IAM Configuration”."
    )


def test_rotation_settings_with_an_inherited_schedule(personas, bob):
    sentence = _sentence(
        "rotation_settings.created",
        actor=personas.manager,
        obj=bob,
        details={
            "configuration": "c1",
            "schedule": "configuration default",
            "configuration_default": {"type": "DAILY", "time": "05:00:00", "tz": "UTC"},
            "complexity": "24,2,2,2,2,!",
            "enabled": True,
        },
    )
    assert sentence == (
        "manager set up password rotation of PAM User “AWS user: bob.deploy”: the "
        "configuration’s default schedule (now Daily at 05:00 (UTC)), enabled."
    )


def test_rotation_settings_with_an_own_schedule_turned_off(personas, bob):
    sentence = _sentence(
        "rotation_settings.disabled",
        actor=personas.manager,
        obj=bob,
        details={"schedule": {"type": "ON_DEMAND"}, "enabled": False},
    )
    assert sentence == (
        "manager turned off password rotation of PAM User “AWS user: bob.deploy”: "
        "On demand only, disabled."
    )


def test_scheduled_rotation_that_failed_and_may_be_live(personas, bob):
    sentence = _sentence(
        "rotation.scheduled.fail",
        obj=bob,
        details={"rotation": "r1", "error": "AWS timed out", "may_be_live": True},
    )
    assert sentence == (
        "Scheduled rotation of PAM User “AWS user: bob.deploy” failed: AWS timed out "
        "(the new password may be live in AWS)."
    )


def test_on_demand_rotation_that_succeeded(personas, bob):
    sentence = _sentence(
        "rotation.on_demand.ok",
        actor=personas.editor,
        obj=bob,
        details={"rotation": "r1", "attempts": 1},
    )
    assert sentence == (
        "On-demand rotation of PAM User “AWS user: bob.deploy” by editor succeeded."
    )


def test_member_added(personas):
    sentence = _sentence(
        "member.added",
        actor=personas.manager,
        obj=personas.folder,
        details={"user": "viewer", "permissions": ["can_edit", "manage_users"]},
    )
    assert sentence == (
        "manager added viewer to Shared folder “Team” (edit records, manage members)."
    )


def test_gateway_event_without_a_person(personas):
    assert _sentence("gateway.online", actor_kind="system", obj=personas.gateway) == (
        "Gateway “default” came online."
    )


def test_cli_actor(personas, bob):
    sentence = _sentence("record.created", actor_kind="cli", obj=bob)
    assert sentence == "The CLI created PAM User “AWS user: bob.deploy”."


def test_locked_out(personas):
    sentence = _sentence(
        "login.locked_out",
        actor_kind="system",
        details={"username": "mallory", "ip_address": "10.0.0.9"},
    )
    assert sentence == "Sign-in as “mallory” was locked out after repeated failures from 10.0.0.9."


def test_an_action_without_words_still_reads_as_a_line(personas, bob):
    sentence = _sentence("something.new", actor=personas.editor, obj=bob)
    assert sentence == "editor: something.new, PAM User “AWS user: bob.deploy”."


def test_the_sentence_of_a_deleted_actor_says_so(personas, bob):
    event = audit_record("record.created", actor=personas.viewer, obj=bob)
    personas.viewer.delete()
    event = AuditEvent.objects.get(pk=event.pk)
    assert event_sentence(event) == "A deleted user created PAM User “AWS user: bob.deploy”."


def test_details_are_labelled_key_values(personas, bob):
    event = audit_record(
        "rotation.scheduled.fail",
        obj=bob,
        details={"rotation": "r1", "error": "AWS timed out", "may_be_live": True},
    )
    assert event_details(event) == [
        ("Error", "AWS timed out"),
        ("May be live", "yes"),
        ("Rotation", "r1"),
    ]


def test_details_show_schedules_in_words_and_lists_joined(personas, bob):
    event = audit_record(
        "rotation_settings.updated",
        obj=bob,
        details={
            "schedule": {"type": "CRON", "cron": "0 3 * * *", "tz": "UTC"},
            "fields": ["title", "login"],
        },
    )
    assert event_details(event) == [
        ("Fields", "title, login"),
        ("Schedule", "Cron 0 3 * * * (UTC)"),
    ]


# Every app of the project (tests/test_architecture.py's LAYERS).
APPS = ("vault", "rotation", "events", "notifications", "webhooks", "metrics", "secretsapi")


AUDIT_CALLS = ("audit_record", "audit_event", "audit_rotation", "_rotation_events", "_audit")


def _written_actions() -> set[str]:
    """The first argument of every audit call in the apps' code (audit_record, audit_event,
    audit_rotation, _rotation_events, and an app's own `_audit` wrapper); an f-string's placeholders become "*" (e.g.
    "rotation.*.ok"), and both sides of a conditional count."""
    actions = set()

    def add(first) -> None:
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            actions.add(first.value)
        elif isinstance(first, ast.JoinedStr):
            actions.add(
                "".join(
                    part.value if isinstance(part, ast.Constant) else "*" for part in first.values
                )
            )
        elif isinstance(first, ast.IfExp):
            add(first.body)
            add(first.orelse)
        elif isinstance(first, ast.Name):
            assigned = [
                n.value
                for n in ast.walk(tree)
                if isinstance(n, ast.Assign)
                and any(getattr(t, "id", None) == first.id for t in n.targets)
            ]
            for value in assigned:
                add(value)

    for path in ROOT.glob("*/**/*.py"):
        if path.parts[len(ROOT.parts)] not in APPS:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            name = getattr(getattr(node, "func", None), "id", None)
            if isinstance(node, ast.Call) and name in AUDIT_CALLS:
                add(node.args[0] if node.args else None)
    return actions


def test_every_action_the_code_writes_has_words():
    """No event the vault writes falls back to the bare action name."""
    written = _written_actions()
    assert {"password.revealed", "rotation.*.ok", "member.added"} <= written
    missing = [
        action
        for action in sorted(written)
        if not any(fnmatch.fnmatchcase(known, action) for known in auditlog.SENTENCES)
    ]
    assert missing == []
