"""The "IAM User access key" method against the emulator: create, commit, verify, make
current, retire; making room; the lost CreateAccessKey answer; a killed worker."""

from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock

import boto3
import pytest
from django.utils import timezone

from rotation import aws, engine, retirement
from rotation.methods import iam_access_key
from rotation.models import KeyRetirement, Rotation
from vault.models import AuditEvent, PamUser, PasswordVersion

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue():
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


@pytest.fixture(autouse=True)
def no_waiting():
    with mock.patch.object(iam_access_key, "_sleep"):
        yield


def key_user(world, login="KeyUser", with_key=True, **settings):
    record = world.user(login, method="iam_access_key", **settings)
    if with_key:
        key = world.emulator.iam().create_access_key(UserName=login)["AccessKey"]
        record.access_key_id = key["AccessKeyId"]
        record.set_secret("access_secret_key", key["SecretAccessKey"])
        record.save()
    return record


def aws_keys(world, login="KeyUser") -> dict[str, str]:
    listed = world.emulator.iam().list_access_keys(UserName=login)["AccessKeyMetadata"]
    return {k["AccessKeyId"]: k["Status"] for k in listed}


def identity(world, key_id: str, secret: str) -> str:
    sts = boto3.client(
        "sts",
        endpoint_url=world.emulator.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
    return sts.get_caller_identity()["Arn"]


def rotate(record) -> tuple[str, Rotation]:
    rotation = engine.rotation_request(record=record, trigger="on_demand")
    status = engine.rotation_run(rotation_id=rotation.pk)
    rotation.refresh_from_db()
    record.refresh_from_db()
    return status, rotation


def test_a_rotation_makes_a_working_key_current_and_schedules_the_old_ones_retirement(world):
    record = key_user(world)
    old = record.access_key_id
    status, rotation = rotate(record)
    assert status == Rotation.SUCCEEDED, rotation.error
    new = record.access_key_id
    assert new != old
    assert aws_keys(world) == {old: "Active", new: "Active"}
    assert identity(world, new, record.get_secret("access_secret_key")).endswith(":user/KeyUser")
    version = record.versions.first()
    assert (version.kind, version.access_key_id) == (PasswordVersion.ACCESS_KEY, new)
    assert version.get_secret("password") == record.get_secret("access_secret_key")
    retiring = KeyRetirement.objects.get(pam_user=record)
    assert retiring.access_key_id == old
    assert retiring.deactivate_at - rotation.finished_at == timedelta(hours=24)
    assert retiring.delete_at - retiring.deactivate_at == timedelta(hours=168)
    assert rotation.pending_password_enc == "" and rotation.pending_access_key_id == new


def test_the_first_rotation_of_a_user_without_keys_creates_one(world):
    record = key_user(world, with_key=False)
    status, _ = rotate(record)
    assert status == Rotation.SUCCEEDED
    assert list(aws_keys(world)) == [record.access_key_id]
    assert not KeyRetirement.objects.exists()


def test_the_password_is_untouched_by_a_key_rotation(world):
    record = key_user(world)
    before = world.aws_password("KeyUser")
    rotate(record)
    assert world.aws_password("KeyUser") == before
    assert record.get_secret("password") == "Initial-Passw0rd!"


def test_a_retired_previous_key_is_deleted_to_make_room(world):
    record = key_user(world, key_deactivate_after_hours=0)
    first = record.access_key_id
    rotate(record)
    retirement.keys_retire_due(gateway_name="default")
    assert aws_keys(world)[first] == "Inactive"
    second = record.access_key_id
    status, _ = rotate(record)
    assert status == Rotation.SUCCEEDED
    assert set(aws_keys(world)) == {second, record.access_key_id}
    assert KeyRetirement.objects.get(access_key_id=first).deleted_at is not None
    assert AuditEvent.objects.filter(action="rotation.key.deleted").exists()


def test_a_previous_key_still_in_its_grace_period_is_never_deleted(world):
    record = key_user(world)
    first = record.access_key_id
    rotate(record)
    status, rotation = rotate(record)
    assert status == Rotation.FAILED
    assert first in rotation.error and "still active" in rotation.error
    assert first in aws_keys(world) and len(aws_keys(world)) == 2


def test_a_key_the_vault_does_not_hold_is_never_deleted_and_is_named(world):
    record = key_user(world)
    foreign = world.emulator.iam().create_access_key(UserName="KeyUser")["AccessKey"]
    status, rotation = rotate(record)
    assert status == Rotation.FAILED
    assert foreign["AccessKeyId"] in rotation.error
    assert "not held by the vault" in rotation.error
    assert set(aws_keys(world)) == {record.access_key_id, foreign["AccessKeyId"]}
    assert not rotation.pending_may_be_live


def _lose_first_answer():
    """CreateAccessKey applied by AWS, its answer lost, once."""
    real = aws.create_access_key
    calls = []

    def create(config, *, login):
        made = real(config, login=login)
        calls.append(made[0])
        if len(calls) == 1:
            raise aws.AwsTransient("connection closed", "ConnectionClosed", may_have_applied=True)
        return made

    return mock.patch.object(aws, "create_access_key", side_effect=create), calls


def test_a_key_whose_answer_was_lost_is_deleted_before_the_next_attempt_creates_again(world):
    record = key_user(world)
    old = record.access_key_id
    patch, created = _lose_first_answer()
    with patch:
        status, rotation = rotate(record)
    assert status == Rotation.SUCCEEDED, rotation.error
    lost, kept = created
    assert record.access_key_id == kept
    assert set(aws_keys(world)) == {old, kept}
    event = AuditEvent.objects.get(action="rotation.key.orphan_deleted")
    assert event.details["access_key_id"] == lost


def test_a_worker_killed_between_create_and_commit_leaves_no_orphan(world):
    record = key_user(world)
    old = record.access_key_id
    rotation = engine.rotation_request(record=record, trigger="on_demand")
    real = aws.create_access_key

    def create_then_die(config, *, login):
        real(config, login=login)
        raise SystemExit("worker killed")

    with mock.patch.object(aws, "create_access_key", side_effect=create_then_die):
        with pytest.raises(SystemExit):
            engine.rotation_run(rotation_id=rotation.pk)
    assert len(aws_keys(world)) == 2  # the lost key exists in AWS, its secret nowhere
    later = timezone.now() + timedelta(hours=1)
    assert engine.rotation_recover(now=later) == 1
    Rotation.objects.filter(pk=rotation.pk).update(unanswered_until=None)
    assert engine.rotation_run(rotation_id=rotation.pk) == Rotation.SUCCEEDED
    record.refresh_from_db()
    assert set(aws_keys(world)) == {old, record.access_key_id}


def test_a_new_key_is_retried_while_aws_does_not_accept_it_yet(world):
    record = key_user(world)
    real = aws.key_identity
    refusals = [aws.AwsRefused("not yet", "InvalidClientTokenId")] * 2

    def slow(config, *, key_id, secret):
        if refusals:
            raise refusals.pop()
        return real(config, key_id=key_id, secret=secret)

    with mock.patch.object(aws, "key_identity", side_effect=slow):
        status, _ = rotate(record)
    assert status == Rotation.SUCCEEDED
    assert not refusals


def test_a_key_aws_never_accepts_stays_held_as_may_be_live_and_can_be_resolved(world, settings):
    settings.ROTATION_KEY_VERIFY_SECONDS = 0
    settings.ROTATION_MAX_ATTEMPTS = 2
    record = key_user(world)
    old = record.access_key_id
    never = aws.AwsRefused("not accepted", "InvalidClientTokenId")
    with mock.patch.object(aws, "key_identity", side_effect=never):
        status, rotation = rotate(record)
    assert status == Rotation.FAILED
    assert rotation.pending_may_be_live and rotation.pending_access_key_id
    pending = rotation.pending_access_key_id
    assert set(aws_keys(world)) == {old, pending}
    assert record.access_key_id == old
    engine.rotation_resolve(rotation=rotation, use_pending=False)
    retirement.keys_retire_due(gateway_name="default")
    retirement.keys_retire_due(gateway_name="default")
    assert set(aws_keys(world)) == {old}


def test_adopting_a_may_be_live_key_retires_the_current_one(world, settings):
    settings.ROTATION_KEY_VERIFY_SECONDS = 0
    settings.ROTATION_MAX_ATTEMPTS = 1
    record = key_user(world)
    old = record.access_key_id
    never = aws.AwsRefused("not accepted", "InvalidClientTokenId")
    with mock.patch.object(aws, "key_identity", side_effect=never):
        _, rotation = rotate(record)
    engine.rotation_resolve(rotation=rotation, use_pending=True)
    record.refresh_from_db()
    assert record.access_key_id == rotation.pending_access_key_id
    assert KeyRetirement.objects.get(pam_user=record).access_key_id == old


def test_the_retirement_pass_deactivates_then_deletes_when_each_is_due(world):
    record = key_user(world, key_deactivate_after_hours=1, key_delete_after_hours=2)
    old = record.access_key_id
    rotate(record)
    now = timezone.now()
    assert retirement.keys_retire_due(gateway_name="default", now=now)["deactivated"] == 0
    soon = now + timedelta(hours=1, minutes=1)
    assert retirement.keys_retire_due(gateway_name="default", now=soon)["deactivated"] == 1
    assert aws_keys(world)[old] == "Inactive"
    assert retirement.keys_retire_due(gateway_name="default", now=soon)["deleted"] == 0
    later = now + timedelta(hours=3, minutes=1)
    assert retirement.keys_retire_due(gateway_name="default", now=later)["deleted"] == 1
    assert old not in aws_keys(world)
    assert AuditEvent.objects.filter(action="rotation.key.deactivated").count() == 1


def test_a_retirement_of_a_key_deleted_in_aws_meanwhile_is_recorded_as_done(world):
    record = key_user(world, key_deactivate_after_hours=0)
    old = record.access_key_id
    rotate(record)
    world.emulator.iam().delete_access_key(UserName="KeyUser", AccessKeyId=old)
    assert retirement.keys_retire_due(gateway_name="default")["deleted"] == 1
    assert KeyRetirement.objects.get(access_key_id=old).deleted_at is not None


@pytest.fixture
def short_skew(settings):
    settings.ROTATION_KEY_CLOCK_SKEW_SECONDS = 1


def _settled(rotation: Rotation) -> None:
    """No request of the rotation can arrive any more, and the clocks' skew has passed."""
    Rotation.objects.filter(pk=rotation.pk).update(unanswered_until=timezone.now())
    time.sleep(1.1)


def test_a_key_left_by_a_failed_rotations_lost_answer_is_deleted_once_nothing_can_arrive(
    world, settings, short_skew
):
    settings.ROTATION_MAX_ATTEMPTS = 1
    record = key_user(world)
    old = record.access_key_id
    patch, created = _lose_first_answer()
    with patch:
        status, rotation = rotate(record)
    assert status == Rotation.FAILED
    assert set(aws_keys(world)) == {old, created[0]}
    assert rotation.step == "create"
    # Not while a request of it may still arrive, nor within the clocks' skew after that.
    assert retirement.keys_retire_due(gateway_name="default")["orphans_checked"] == 0
    Rotation.objects.filter(pk=rotation.pk).update(unanswered_until=timezone.now())
    assert retirement.keys_retire_due(gateway_name="default")["orphans_checked"] == 0
    _settled(rotation)
    assert retirement.keys_retire_due(gateway_name="default")["orphans_checked"] == 1
    assert set(aws_keys(world)) == {old}
    rotation.refresh_from_db()
    assert rotation.step == ""


def test_a_late_create_request_that_lands_after_success_is_cleaned_up_after_the_window(
    world, short_skew
):
    record = key_user(world, with_key=False)
    patch, created = _lose_first_answer()
    with patch:
        status, rotation = rotate(record)
    assert status == Rotation.SUCCEEDED
    assert rotation.step == "create"  # an unanswered request may still arrive
    late = world.emulator.iam().create_access_key(UserName="KeyUser")["AccessKey"]["AccessKeyId"]
    _settled(rotation)
    retirement.keys_retire_due(gateway_name="default")
    assert set(aws_keys(world)) == {record.access_key_id}
    assert AuditEvent.objects.filter(
        action="rotation.key.orphan_deleted", details__access_key_id=late
    ).exists()


def test_a_key_made_by_hand_after_the_window_is_never_taken_for_a_lost_one(world, settings):
    settings.ROTATION_MAX_ATTEMPTS = 1
    record = key_user(world, with_key=False)
    patch, _ = _lose_first_answer()
    with patch:
        _, rotation = rotate(record)
    # The check is owed, but the rotation's window closed long before this key was made.
    past = timezone.now() - timedelta(hours=2)
    Rotation.objects.filter(pk=rotation.pk).update(
        step_started_at=past, finished_at=past, unanswered_until=past
    )
    world.emulator.iam().delete_access_key(
        UserName="KeyUser", AccessKeyId=next(iter(aws_keys(world)))
    )
    by_hand = world.emulator.iam().create_access_key(UserName="KeyUser")["AccessKey"]
    assert retirement.keys_retire_due(gateway_name="default")["orphans_checked"] == 1
    assert set(aws_keys(world)) == {by_hand["AccessKeyId"]}


def test_the_check_waits_while_another_rotation_of_the_record_runs(world, settings, short_skew):
    settings.ROTATION_MAX_ATTEMPTS = 1
    record = key_user(world)
    patch, created = _lose_first_answer()
    with patch:
        _, failed = rotate(record)
    _settled(failed)
    running = engine.rotation_request(record=record, trigger="on_demand")
    assert retirement.keys_retire_due(gateway_name="default")["orphans_checked"] == 0
    assert created[0] in aws_keys(world)
    # That rotation's own preparation checks the same window before it creates a key.
    assert engine.rotation_run(rotation_id=running.pk) == Rotation.SUCCEEDED
    assert created[0] not in aws_keys(world)


def test_the_check_is_left_owed_when_the_gateway_may_no_longer_act(
    world, settings, personas, short_skew
):
    settings.ROTATION_MAX_ATTEMPTS = 1
    record = key_user(world)
    patch, created = _lose_first_answer()
    with patch:
        _, rotation = rotate(record)
    _settled(rotation)
    personas.application.folders.clear()  # the gateway's application no longer has the folder
    assert retirement.keys_retire_due(gateway_name="default")["orphans_checked"] == 0
    assert created[0] in aws_keys(world)
    rotation.refresh_from_db()
    assert rotation.step == "create"


def test_a_may_be_live_key_cannot_be_settled_while_another_rotation_runs(world, settings):
    settings.ROTATION_KEY_VERIFY_SECONDS = 0
    settings.ROTATION_MAX_ATTEMPTS = 1
    record = key_user(world)
    never = aws.AwsRefused("not accepted", "InvalidClientTokenId")
    with mock.patch.object(aws, "key_identity", side_effect=never):
        _, failed = rotate(record)
    engine.rotation_request(record=record, trigger="on_demand")
    with pytest.raises(engine.RotationRequestError, match="in progress"):
        engine.rotation_resolve(rotation=failed, use_pending=True)
    failed.refresh_from_db()
    assert failed.resolved_at is None


def test_the_key_replaced_is_the_one_the_record_holds_when_the_rotation_ends(world):
    record = key_user(world)
    rotation = engine.rotation_request(record=record, trigger="on_demand")
    edited = world.emulator.iam().create_access_key(UserName="KeyUser")["AccessKey"]
    first = record.access_key_id
    world.emulator.iam().delete_access_key(UserName="KeyUser", AccessKeyId=first)
    real = aws.list_access_keys

    def edit_meanwhile(config, *, login):
        keys = real(config, login=login)
        PamUser.objects.filter(pk=record.pk).update(access_key_id=edited["AccessKeyId"])
        return keys

    with mock.patch.object(aws, "list_access_keys", side_effect=edit_meanwhile):
        assert engine.rotation_run(rotation_id=rotation.pk) == Rotation.SUCCEEDED
    assert KeyRetirement.objects.get(pam_user=record).access_key_id == edited["AccessKeyId"]


def test_making_room_deactivates_a_replaced_key_still_active_before_deleting_it(world):
    record = key_user(world, key_deactivate_after_hours=0)
    first = record.access_key_id
    rotate(record)  # first is replaced; its deactivation is due, not done yet
    calls = []
    real = aws.set_access_key_status

    def seen(config, *, login, key_id, active):
        calls.append((key_id, active))
        return real(config, login=login, key_id=key_id, active=active)

    with mock.patch.object(aws, "set_access_key_status", side_effect=seen):
        status, _ = rotate(record)
    assert status == Rotation.SUCCEEDED
    assert calls == [(first, False)]
    assert first not in aws_keys(world)


def test_a_retirement_acts_on_the_user_the_key_belongs_to_after_a_login_change(world):
    record = key_user(world, key_deactivate_after_hours=0)
    old = record.access_key_id
    rotate(record)
    PamUser.objects.filter(pk=record.pk).update(login="renamed-in-the-vault")
    retirement.keys_retire_due(gateway_name="default")
    assert aws_keys(world)[old] == "Inactive"


def test_a_retirement_whose_user_is_gone_is_not_recorded_as_done(world):
    record = key_user(world, key_deactivate_after_hours=0)
    old = record.access_key_id
    rotate(record)
    iam = world.emulator.iam()
    for key in list(aws_keys(world)):
        iam.delete_access_key(UserName="KeyUser", AccessKeyId=key)
    iam.delete_login_profile(UserName="KeyUser")
    iam.delete_user(UserName="KeyUser")
    assert retirement.keys_retire_due(gateway_name="default")["failed"] == 1
    retiring = KeyRetirement.objects.get(access_key_id=old)
    assert retiring.deleted_at is None and "does not exist" in retiring.last_error


def test_a_rotation_refused_before_anything_changed_keeps_nothing(world):
    record = key_user(world, login="Ghost", with_key=False)
    world.emulator.iam().delete_login_profile(UserName="Ghost")
    world.emulator.iam().delete_user(UserName="Ghost")
    status, rotation = rotate(record)
    assert status == Rotation.FAILED
    assert "does not exist" in rotation.error
    assert not rotation.pending_may_be_live and rotation.pending_access_key_id == ""


def test_the_dry_run_probe_names_a_missing_permission(world):
    key_user(world)
    found = aws.probe_key_permissions(world.config, login="KeyUser")
    assert found == dict.fromkeys(found, None)
    assert set(found) == {
        "iam:ListAccessKeys",
        "iam:UpdateAccessKey",
        "iam:DeleteAccessKey",
        "sts:GetCallerIdentity",
    }


def test_a_password_changed_during_a_key_rotation_is_not_written_back_by_its_finish(world):
    record = key_user(world)
    rotation = engine.rotation_request(record=record, trigger="on_demand")
    real = aws.list_access_keys

    def edit_meanwhile(config, *, login):
        edited = PamUser.objects.get(pk=record.pk)
        edited.set_secret("password", "Edited-Meanwhile-1!")
        edited.save(update_fields=["password_enc"])
        return real(config, login=login)

    with mock.patch.object(aws, "list_access_keys", side_effect=edit_meanwhile):
        assert engine.rotation_run(rotation_id=rotation.pk) == Rotation.SUCCEEDED
    record.refresh_from_db()
    assert record.get_secret("password") == "Edited-Meanwhile-1!"
