"""The write-ahead rotation, driven step by step against the AWS emulator."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from rotation import aws, engine
from rotation.models import Rotation
from vault.models import AuditEvent, PasswordVersion

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue():
    """These tests drive the services themselves; nothing goes to django-q2."""
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


def request(record, trigger="on_demand", user=None):
    return engine.rotation_request(record=record, trigger=trigger, requested_by=user)


def test_request_creates_a_queued_rotation_and_enqueues_it_on_commit(
    world, no_queue, django_capture_on_commit_callbacks
):
    record = world.user()
    with django_capture_on_commit_callbacks(execute=True):
        rotation = request(record)
    assert rotation.status == Rotation.QUEUED
    no_queue.assert_called_once()
    assert no_queue.call_args.args == ("rotation.tasks.run_rotation", rotation.pk)
    assert no_queue.call_args.kwargs["cluster"] == "default"


def test_second_request_while_one_is_active_is_told_it_is_in_progress(world):
    record = world.user()
    first = request(record)
    with pytest.raises(engine.RotationInProgress) as caught:
        request(record, trigger="scheduled")
    assert caught.value.rotation == first
    assert Rotation.objects.filter(pam_user=record).count() == 1


def test_request_without_settings_says_to_set_up_rotation(personas):
    from tests.conftest import make_pam_user

    record = make_pam_user(personas.folder, "NoSettings")
    with pytest.raises(engine.RotationRequestError, match="not set up"):
        request(record)


def test_request_for_disabled_settings_is_refused(world):
    record = world.user(enabled=False)
    with pytest.raises(engine.RotationRequestError, match="disabled"):
        request(record)


def test_successful_rotation_stores_the_password_aws_holds(world, personas):
    record = world.user()
    rotation = request(record, user=personas.editor)
    assert engine.rotation_run(rotation_id=rotation.pk) == Rotation.SUCCEEDED
    record.refresh_from_db()
    rotation.refresh_from_db()
    assert rotation.status == Rotation.SUCCEEDED
    assert not rotation.has_secret("pending_password")
    new_password = record.get_secret("password")
    assert new_password != "Initial-Passw0rd!"
    assert world.aws_password("TestUser") == new_password
    latest = PasswordVersion.objects.filter(pam_user=record).first()
    assert latest.source == "rotation" and latest.get_secret("password") == new_password
    assert record.rotation_settings.last_status == "succeeded"
    assert record.rotation_settings.last_rotated_at is not None
    assert AuditEvent.objects.filter(action="rotation.on_demand.ok", object_uid=record.uid).exists()


def test_generated_password_meets_the_record_complexity(world):
    record = world.user(length=30, min_upper=6, min_lower=6, min_digits=6, min_symbols=6)
    engine.rotation_run(rotation_id=request(record).pk)
    record.refresh_from_db()
    password = record.get_secret("password")
    assert len(password) == 30
    assert sum(c.isupper() for c in password) >= 6
    assert sum(c.isdigit() for c in password) >= 6


def test_account_password_policy_raises_the_length(world):
    world.emulator.iam().update_account_password_policy(
        MinimumPasswordLength=40, RequireSymbols=True
    )
    record = world.user(length=16)
    engine.rotation_run(rotation_id=request(record).pk)
    record.refresh_from_db()
    assert len(record.get_secret("password")) == 40


def test_user_without_console_access_fails_with_the_console_message(world):
    record = world.user(console=False)
    rotation = request(record)
    assert engine.rotation_run(rotation_id=rotation.pk) == Rotation.FAILED
    rotation.refresh_from_db()
    assert "console" in rotation.error.lower()
    assert "temporary password" in rotation.error
    assert not rotation.has_secret("pending_password")
    record.refresh_from_db()
    assert record.get_secret("password") == "Initial-Passw0rd!"
    assert AuditEvent.objects.filter(action="rotation.on_demand.fail").exists()


def test_wrong_account_fails_naming_both_account_ids(world, personas):
    from rotation.models import RotationSettings
    from tests.conftest import make_pam_user

    world.emulator.create_user("Elsewhere")
    record = make_pam_user(
        personas.folder,
        "Elsewhere",
        distinguished_name="arn:aws:iam::111111111111:user/Elsewhere",
    )
    RotationSettings.objects.create(pam_user=record, configuration=world.config)
    rotation = request(record)
    engine.rotation_run(rotation_id=rotation.pk)
    rotation.refresh_from_db()
    assert rotation.status == Rotation.FAILED
    assert "111111111111" in rotation.error and "123456789012" in rotation.error


def test_claim_is_given_to_one_worker_only(world):
    rotation = request(world.user())
    assert engine.rotation_claim_with_pending(rotation_id=rotation.pk) is not None
    assert engine.rotation_claim_with_pending(rotation_id=rotation.pk) is None
    assert engine.rotation_run(rotation_id=rotation.pk) == "skipped"


def _expire_lease(rotation):
    Rotation.objects.filter(pk=rotation.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_worker_killed_after_write_ahead_retries_with_the_same_pending_password(world):
    record = world.user()
    rotation = engine.rotation_claim_with_pending(rotation_id=request(record).pk)
    pending = engine.rotation_write_ahead(rotation=rotation)
    # ...the worker dies here, before calling AWS.
    _expire_lease(rotation)
    assert engine.rotation_recover() == 1
    rotation.refresh_from_db()
    assert rotation.status == Rotation.QUEUED
    assert rotation.pending_may_be_live
    assert rotation.get_secret("pending_password") == pending
    assert engine.rotation_run(rotation_id=rotation.pk) == Rotation.SUCCEEDED
    record.refresh_from_db()
    assert record.get_secret("password") == pending == world.aws_password("TestUser")


def test_worker_killed_after_the_aws_call_keeps_the_password_aws_holds(world):
    record = world.user()
    rotation = engine.rotation_claim_with_pending(rotation_id=request(record).pk)
    pending = engine.rotation_write_ahead(rotation=rotation)
    aws.set_console_password(world.config, login="TestUser", password=pending)
    # ...the worker dies here, before the final commit: AWS holds `pending`.
    _expire_lease(rotation)
    engine.rotation_recover()
    assert engine.rotation_run(rotation_id=rotation.pk) == Rotation.SUCCEEDED
    record.refresh_from_db()
    assert record.get_secret("password") == pending == world.aws_password("TestUser")


def test_ambiguous_failures_until_the_cap_keep_the_pending_password_as_may_be_live(world, settings):
    settings.ROTATION_MAX_ATTEMPTS = 2
    record = world.user()
    rotation = request(record)
    ambiguous = aws.AwsTransient("connection closed", "ConnectionClosed", may_have_applied=True)
    with mock.patch("rotation.aws.set_console_password", side_effect=ambiguous) as call:
        assert engine.rotation_run(rotation_id=rotation.pk) == Rotation.FAILED
    assert call.call_count == 2
    rotation.refresh_from_db()
    assert rotation.holds_possibly_live_password
    assert "gave up after 2 attempts" in rotation.error
    passwords = {c.kwargs["password"] for c in call.call_args_list}
    assert passwords == {rotation.get_secret("pending_password")}
    assert list(engine.possibly_live_rotations(record)) == [rotation]


def test_refused_after_an_ambiguous_attempt_still_keeps_the_pending_password(world):
    record = world.user()
    rotation = request(record)
    answers = [
        aws.AwsTransient("timeout", "ReadTimeout", may_have_applied=True),
        aws.AwsRefused("access denied to iam:UpdateLoginProfile", "AccessDenied"),
    ]
    with mock.patch("rotation.aws.set_console_password", side_effect=answers):
        assert engine.rotation_run(rotation_id=rotation.pk) == Rotation.FAILED
    rotation.refresh_from_db()
    assert rotation.holds_possibly_live_password


def test_transient_failure_that_proves_nothing_changed_discards_pending_at_the_cap(world, settings):
    settings.ROTATION_MAX_ATTEMPTS = 2
    rotation = request(world.user())
    throttled = aws.AwsTransient("throttled", "Throttling", may_have_applied=False)
    with mock.patch("rotation.aws.set_console_password", side_effect=throttled):
        engine.rotation_run(rotation_id=rotation.pk)
    rotation.refresh_from_db()
    assert rotation.status == Rotation.FAILED
    assert not rotation.has_secret("pending_password")


def test_transient_failure_then_success_succeeds(world):
    record = world.user()
    rotation = request(record)
    real = aws.set_console_password
    answers = iter([aws.AwsTransient("5xx", "ServiceFailure", may_have_applied=True)])

    def flaky(config, *, login, password):
        for error in answers:
            raise error
        real(config, login=login, password=password)

    with mock.patch("rotation.aws.set_console_password", side_effect=flaky):
        assert engine.rotation_run(rotation_id=rotation.pk) == Rotation.SUCCEEDED
    record.refresh_from_db()
    assert record.get_secret("password") == world.aws_password("TestUser")


def test_resolving_with_the_pending_password_makes_it_current(world, personas):
    record = world.user()
    rotation = request(record)
    ambiguous = aws.AwsRefused("denied", "AccessDenied")
    Rotation.objects.filter(pk=rotation.pk).update(pending_may_be_live=True)
    with mock.patch("rotation.aws.set_console_password", side_effect=ambiguous):
        engine.rotation_run(rotation_id=rotation.pk)
    rotation.refresh_from_db()
    pending = rotation.get_secret("pending_password")
    engine.rotation_resolve(rotation=rotation, use_pending=True, actor=personas.editor)
    record.refresh_from_db()
    rotation.refresh_from_db()
    assert record.get_secret("password") == pending
    assert not rotation.holds_possibly_live_password
    assert AuditEvent.objects.filter(action="rotation.resolved").exists()


def test_a_later_successful_rotation_supersedes_a_possibly_live_password(world):
    record = world.user()
    first = request(record)
    Rotation.objects.filter(pk=first.pk).update(pending_may_be_live=True)
    with mock.patch("rotation.aws.set_console_password", side_effect=aws.AwsRefused("x", "y")):
        engine.rotation_run(rotation_id=first.pk)
    engine.rotation_run(rotation_id=request(record).pk)
    first.refresh_from_db()
    assert first.resolved_at is not None and not first.holds_possibly_live_password


def test_recovery_gives_up_after_the_attempt_cap_and_keeps_the_pending_password(world, settings):
    settings.ROTATION_MAX_ATTEMPTS = 1
    rotation = engine.rotation_claim_with_pending(rotation_id=request(world.user()).pk)
    engine.rotation_write_ahead(rotation=rotation)
    _expire_lease(rotation)
    engine.rotation_recover()
    rotation.refresh_from_db()
    assert rotation.status == Rotation.FAILED
    assert rotation.holds_possibly_live_password


def test_unexpired_running_rotation_is_not_recovered(world):
    rotation = engine.rotation_claim_with_pending(rotation_id=request(world.user()).pk)
    assert engine.rotation_recover() == 0
    rotation.refresh_from_db()
    assert rotation.status == Rotation.RUNNING
