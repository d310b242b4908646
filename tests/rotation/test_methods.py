"""Rotation methods on one engine: the registry, the step interface, the console-password
method's failure classification, and the engine acting on what a method reports."""

from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest

from rotation import aws, dispatch, engine, methods
from rotation.methods.base import (
    Ambiguous,
    Apply,
    Refused,
    RotationMethod,
    StepFailed,
    Transient,
    WriteAhead,
)
from rotation.methods.iam_user import IAM_USER, make_password, set_password
from rotation.models import Rotation, RotationSettings
from rotation.passwords import ComplexityError
from tests.conftest import make_pam_user


@pytest.fixture(autouse=True)
def no_queue():
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


# --- registry and interface ---------------------------------------------------------------------


def test_every_method_a_setting_can_name_is_registered():
    for name, _label in RotationSettings.METHODS:
        assert methods.method_named(name).name == name
    assert methods.method_named("iam_user") is IAM_USER


def test_an_unknown_method_is_named_in_the_error():
    with pytest.raises(LookupError, match="'ssh_key'"):
        methods.method_named("ssh_key")


def test_the_console_password_writes_ahead_then_sets():
    assert [step.name for step in IAM_USER.steps] == ["write ahead", "set"]
    assert isinstance(IAM_USER.write_ahead, WriteAhead)
    assert [step.name for step in IAM_USER.applying] == ["set"]


@pytest.mark.parametrize(
    "steps",
    [
        (),
        (Apply("set", lambda rotation, secret: None),),
        (
            Apply("set", lambda rotation, secret: None),
            WriteAhead("write ahead", lambda rotation: "x"),
        ),
        (WriteAhead("one", lambda rotation: "x"), WriteAhead("two", lambda rotation: "y")),
    ],
)
def test_a_method_writes_ahead_once_and_first(steps):
    with pytest.raises(ValueError, match="one WriteAhead step, first"):
        RotationMethod(name="broken", label="Broken", steps=steps)


# --- the console-password method classifies aws.py's errors ----------------------------------


def _rotation() -> SimpleNamespace:
    record = SimpleNamespace(
        login="TestUser", distinguished_name="arn:aws:iam::123456789012:user/TestUser"
    )
    config = SimpleNamespace(scope_path_prefix="", title="AWS")
    return SimpleNamespace(pam_user=record, configuration=config)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (aws.AwsRefused("denied", "AccessDenied"), Refused),
        (aws.AwsTransient("throttled", "Throttling"), Transient),
        (aws.AwsTransient("closed", "ConnectionClosed", may_have_applied=True), Ambiguous),
    ],
)
def test_set_reports_aws_errors_as_the_engines_failure_kinds(error, kind):
    with (
        mock.patch("rotation.aws.check_account"),
        mock.patch("rotation.aws.set_console_password", side_effect=error),
        pytest.raises(StepFailed) as caught,
    ):
        set_password(_rotation(), "New-Passw0rd!")
    assert type(caught.value) is kind
    assert caught.value.message == error.message
    assert caught.value.may_have_applied is error.may_have_applied


def test_an_impossible_complexity_is_refused_before_anything_is_sent():
    with (
        mock.patch("rotation.aws.account_password_policy", return_value=None),
        mock.patch("rotation.methods.iam_user.settings_complexity"),
        mock.patch(
            "rotation.methods.iam_user.generate_password",
            side_effect=ComplexityError("too short for its minimums"),
        ),
        pytest.raises(Refused, match="too short for its minimums"),
    ):
        make_password(
            SimpleNamespace(configuration=None, pam_user=SimpleNamespace(rotation_settings=None))
        )


# --- the engine acts on what the method reports ------------------------------------------------


def _method_with(act) -> RotationMethod:
    return RotationMethod(
        name="iam_user",
        label="Fake",
        steps=(WriteAhead("write ahead", lambda rotation: "Fake-Secret-1"), Apply("set", act)),
    )


def _run_with(act, record) -> Rotation:
    rotation = engine.rotation_request(record=record, trigger="on_demand")
    with mock.patch.dict(methods.METHODS, {"iam_user": _method_with(act)}):
        engine.rotation_run(rotation_id=rotation.pk)
    rotation.refresh_from_db()
    return rotation


def test_the_engine_commits_the_write_ahead_before_a_step_acts(world):
    record = world.user()
    seen = []

    def act(rotation, secret):
        seen.append(Rotation.objects.get(pk=rotation.pk).get_secret("pending_password"))

    rotation = _run_with(act, record)

    assert seen == ["Fake-Secret-1"]
    assert rotation.status == Rotation.SUCCEEDED
    record.refresh_from_db()
    assert record.get_secret("password") == "Fake-Secret-1"


def test_the_engine_retries_an_ambiguous_step_with_the_same_secret_and_keeps_it(world, settings):
    settings.ROTATION_MAX_ATTEMPTS = 2
    secrets = []

    def act(rotation, secret):
        secrets.append(secret)
        raise Ambiguous("no answer")

    rotation = _run_with(act, world.user())

    assert secrets == ["Fake-Secret-1", "Fake-Secret-1"]
    assert rotation.status == Rotation.FAILED
    assert rotation.holds_possibly_live_password
    assert rotation.error == "no answer (gave up after 2 attempts)"


def test_the_engine_fails_a_refused_step_at_once_and_discards_the_secret(world):
    calls = []

    def act(rotation, secret):
        calls.append(secret)
        raise Refused("no such user")

    rotation = _run_with(act, world.user())

    assert len(calls) == 1
    assert rotation.status == Rotation.FAILED and rotation.error == "no such user"
    assert not rotation.has_secret("pending_password")


# --- one answer to "may this rotation be requested" ------------------------------------------


def test_a_batch_request_gives_the_same_reasons_as_a_single_one(world, personas):
    disabled = world.user("disabled", enabled=False)
    unset = make_pam_user(personas.folder, "no-settings")
    unshared = world.user("unshared")
    personas.application.folders.clear()

    _active, problems = engine.rotation_request_many(
        records=[disabled, unset, unshared], trigger="cli"
    )

    for record in (disabled, unset, unshared):
        with pytest.raises(engine.RotationRequestError) as single:
            engine.rotation_check_requestable(record=record)
        assert problems[record.uid] == str(single.value)


# --- how many drains a gateway gets -------------------------------------------------------------


def test_a_deep_queue_is_claimed_in_larger_batches_and_its_tail_in_the_smallest():
    # Larger only while each worker would still have DRAIN_TURNS_AHEAD such batches after it.
    assert dispatch.DRAIN_TURNS_AHEAD == 2 and dispatch.DRAIN_BATCH_SIZES == (20, 50, 100)
    assert dispatch.drain_batch_size(0, workers=2) == 20
    assert dispatch.drain_batch_size(199, workers=2) == 20
    assert dispatch.drain_batch_size(200, workers=2) == 50
    assert dispatch.drain_batch_size(399, workers=2) == 50
    assert dispatch.drain_batch_size(400, workers=2) == 100
    assert dispatch.drain_batch_size(10**6, workers=2) == 100
    assert dispatch.drain_batch_size(100, workers=1) == 50
    assert dispatch.drain_batch_size(1000, workers=0) == 100  # no worker count: as one


def test_counting_the_queue_can_stop_where_the_largest_batch_is_reached():
    cap = dispatch.drain_batch_count_cap(workers=3)
    assert dispatch.drain_batch_size(cap, workers=3) == max(dispatch.DRAIN_BATCH_SIZES)


def test_one_drain_per_batch_a_drain_claims_up_to_the_workers():
    batch = dispatch.DRAIN_BATCH
    assert dispatch.drain_task_count(1, workers=4) == 1
    assert dispatch.drain_task_count(batch, workers=4) == 1
    assert dispatch.drain_task_count(batch + 1, workers=4) == 2
    assert dispatch.drain_task_count(100 * batch, workers=4) == 4
