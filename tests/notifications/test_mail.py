"""Failure notifications by email, end to end: a rotation fails against the AWS emulator, the
outbox delivers the event on a worker, and a real SMTP server (aiosmtpd) receives the mail:
who got it, what it says, its link, and never a secret."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from events.models import OutboxMessage
from events.outbox import outbox_deliver_due
from notifications.mail import CONSUMER_NAME, digests_send, notifications_tick
from notifications.models import DIGEST, DigestRun, Notice, NotificationPreference
from rotation import connection, engine, tasks
from rotation.gateways import gateway_heartbeat, gateways_report_offline
from rotation.models import Rotation
from tests.conftest import make_configuration
from tests.faultproxy import FaultProxy, aws_error_xml
from tests.notifications.conftest import BASE_URL
from tests.rotation.conftest import AwsWorld
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db

UPDATE = "Action=UpdateLoginProfile"


@pytest.fixture(autouse=True)
def no_queue():
    with mock.patch("rotation.dispatch.async_task"):
        yield


def later(**kw):
    return timezone.now() + timedelta(seconds=1, **kw)


def rotate(record) -> Rotation:
    rotation = engine.rotation_request(record=record, trigger="on_demand")
    engine.rotation_run(rotation_id=rotation.pk)
    rotation.refresh_from_db()
    return rotation


def deliver(**kw) -> str:
    """Deliver what is due (other apps' consumers too); the status of this app's row."""
    outbox_deliver_due(now=later(**kw))
    rows = OutboxMessage.objects.filter(consumer=CONSUMER_NAME)
    return ",".join(sorted(set(rows.values_list("status", flat=True))))


def test_a_failed_rotation_mails_the_folders_managers_with_a_link_and_no_secret(
    world, addresses, smtp
):
    record = world.user("NoConsole", console=False)
    rotation = rotate(record)
    assert rotation.status == Rotation.FAILED
    assert deliver() == OutboxMessage.DELIVERED
    # Editor and manager manage the folder's records (the defaults); the viewer only views,
    # the outsider and the superuser are not in the folder.
    assert sorted(r for a in smtp.inbox.arrived for r in a.recipients) == [
        "editor@example.test",
        "manager@example.test",
    ]
    [mail] = smtp.inbox.to("manager@example.test")
    assert mail.subject == "[PAM Vault] Rotation of “AWS user: NoConsole” failed"
    assert mail.sender == "vault@example.test"
    assert f"Fix it here: {BASE_URL}/records/{record.uid}/" in mail.body
    assert "console" in mail.body.lower()  # the error that says what to fix
    assert f"{BASE_URL}/account/notifications/" in mail.body
    record.refresh_from_db()
    for secret in ("Initial-Passw0rd!", "testing-secret", record.get_secret("password")):
        assert secret not in mail.raw


def test_a_password_that_may_be_live_is_mailed_without_the_password(
    personas, emulator, addresses, smtp, settings
):
    settings.AWS_MAX_ATTEMPTS = 1
    settings.ROTATION_MAX_ATTEMPTS = 2
    proxy = FaultProxy(emulator.endpoint).start()
    try:
        faulty = AwsWorld(personas, emulator, endpoint=proxy.endpoint)
        record = faulty.user()
        proxy.drop_after(match=UPDATE, times=None)
        rotation = rotate(record)
    finally:
        proxy.stop()
    assert rotation.holds_possibly_live_password
    deliver()
    [mail] = smtp.inbox.to("manager@example.test")
    assert "may be live in AWS" in mail.subject
    assert f"{BASE_URL}/records/{record.uid}/" in mail.body
    pending = rotation.get_secret("pending_password")
    assert pending and pending not in mail.raw
    assert "Initial-Passw0rd!" not in mail.raw


def test_an_event_delivered_twice_mails_nobody_twice(world, addresses, smtp):
    rotate(world.user("NoConsole", console=False))
    deliver()
    # At least once: a worker died after sending, before the row was marked delivered.
    OutboxMessage.objects.filter(consumer=CONSUMER_NAME).update(status=OutboxMessage.PENDING)
    deliver(minutes=10)
    assert len(smtp.inbox.to("manager@example.test")) == 1


def test_smtp_down_the_outbox_retries_then_delivers_when_it_is_up(world, addresses, smtp):
    smtp.stop()
    rotate(world.user("NoConsole", console=False))
    assert deliver() == OutboxMessage.PENDING
    message = OutboxMessage.objects.get(consumer=CONSUMER_NAME)
    assert message.attempts == 1
    assert "not sent (ConnectionRefusedError)" in message.last_error
    assert not Notice.objects.filter(status=Notice.SENT).exists()
    smtp.start()
    assert deliver(minutes=1) == OutboxMessage.DELIVERED
    assert len(smtp.inbox.to("manager@example.test")) == 1
    assert len(smtp.inbox.to("editor@example.test")) == 1


def test_people_without_an_address_or_inactive_get_nothing(world, addresses, smtp):
    addresses.editor.email = ""
    addresses.editor.save()
    addresses.manager.is_active = False
    addresses.manager.save()
    rotate(world.user("NoConsole", console=False))
    assert deliver() == OutboxMessage.DELIVERED
    assert smtp.inbox.arrived == []


def test_a_person_who_turned_failures_off_gets_none(world, addresses, smtp):
    NotificationPreference.objects.create(
        user=addresses.manager, folder=addresses.folder, rotation_failed=False
    )
    rotate(world.user("NoConsole", console=False))
    deliver()
    assert [a.recipients for a in smtp.inbox.arrived] == [["editor@example.test"]]


def test_a_rotation_audited_in_two_folders_mails_a_member_of_both_once(
    world, addresses, smtp, personas
):
    from tests.conftest import make_member
    from vault.models import ApplicationFolder

    # The configuration lives in another folder, whose managers see every use of it.
    config_folder = personas.other_folder
    ApplicationFolder.objects.create(application=personas.application, folder=config_folder)
    make_member(config_folder, personas.manager, manage_users=True)
    world.config.folder = config_folder
    world.config.save()
    rotate(world.user("NoConsole", console=False))
    assert AuditEvent.objects.filter(action="rotation.on_demand.fail").count() == 2
    deliver()
    assert len(smtp.inbox.to("manager@example.test")) == 1
    [outsider_mail] = smtp.inbox.to("outsider@example.test")
    assert "IAM user “NoConsole”" in outsider_mail.subject
    assert f"{BASE_URL}/configurations/{world.config.uid}/" in outsider_mail.body


def test_a_digest_is_sent_once_a_day_after_the_digest_hour(world, addresses, smtp, settings):
    NotificationPreference.objects.create(
        user=addresses.manager,
        folder=addresses.folder,
        rotation_failed=True,
        may_be_live=True,
        delivery=DIGEST,
    )
    rotate(world.user("NoConsole", console=False))
    rotate(world.user("NoConsole2", console=False))
    deliver()
    assert smtp.inbox.to("manager@example.test") == []  # not at once
    now = timezone.now()
    settings.NOTIFICATIONS_DIGEST_HOUR = now.hour + 1 if now.hour < 23 else 24
    assert digests_send(now=now) == 0  # before the hour
    settings.NOTIFICATIONS_DIGEST_HOUR = 0
    assert digests_send(now=now) == 1
    assert digests_send(now=now) == 0  # once a day
    [digest] = smtp.inbox.to("manager@example.test")
    assert digest.subject == "[PAM Vault] Daily digest: 2 events need your attention"
    assert digest.body.count("Fix it here: ") == 2
    assert DigestRun.objects.get().user == addresses.manager
    # Tomorrow's digest holds what happened since.
    rotate(world.user("NoConsole3", console=False))
    deliver()
    assert digests_send(now=now + timedelta(days=1)) == 1
    assert "NoConsole3" in smtp.inbox.to("manager@example.test")[1].body


def _gateway_silent(personas, minutes_ago: float):
    gateway_heartbeat(gateway_name=personas.gateway.name)
    personas.gateway.__class__.objects.filter(pk=personas.gateway.pk).update(
        last_seen_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    assert gateways_report_offline() == 1


def test_a_gateway_offline_for_longer_than_n_minutes_is_mailed_then(personas, addresses, smtp):
    NotificationPreference.objects.create(
        user=addresses.manager,
        folder=addresses.folder,
        gateway_offline=True,
        gateway_offline_minutes=30,
    )
    _gateway_silent(personas, minutes_ago=3)
    assert deliver() == OutboxMessage.DELIVERED
    assert smtp.inbox.arrived == []  # silent for 3 minutes only
    assert notifications_tick(now=later(minutes=10))["sent"] == 0
    assert notifications_tick(now=later(minutes=28))["sent"] == 1
    [mail] = smtp.inbox.to("manager@example.test")
    assert mail.subject == "[PAM Vault] Gateway “default” is offline"
    assert f"{BASE_URL}/gateways/" in mail.body
    assert notifications_tick(now=later(minutes=60))["sent"] == 0


def test_a_gateway_back_online_within_n_minutes_is_not_mailed(personas, addresses, smtp):
    NotificationPreference.objects.create(
        user=addresses.manager, folder=addresses.folder, gateway_offline=True
    )
    _gateway_silent(personas, minutes_ago=3)
    deliver()
    gateway_heartbeat(gateway_name=personas.gateway.name)
    notifications_tick(now=later(minutes=15))
    assert smtp.inbox.arrived == []
    assert Notice.objects.get().status == Notice.DROPPED


def test_credentials_refused_by_aws_in_a_connection_test_is_mailed(
    personas, emulator, addresses, smtp, settings
):
    settings.AWS_MAX_ATTEMPTS = 1
    NotificationPreference.objects.create(
        user=addresses.editor, folder=addresses.folder, credentials_refused=True
    )
    proxy = FaultProxy(emulator.endpoint).start()
    try:
        proxy.status(
            403,
            body=aws_error_xml("InvalidClientTokenId", "The security token is invalid."),
            times=None,
        )
        config = make_configuration(personas.folder, personas.gateway, endpoint=proxy.endpoint)
        test = connection.connection_test_request(config=config, requested_by=personas.editor)
        assert tasks.test_configuration(test.pk) == "failed"
    finally:
        proxy.stop()
    deliver()
    [mail] = smtp.inbox.to("editor@example.test")
    assert mail.subject == f"[PAM Vault] Test connection of “{config.title}” failed"
    assert "InvalidClientTokenId" in mail.body
    assert f"{BASE_URL}/configurations/{config.uid}/" in mail.body
    assert "testing-secret" not in mail.raw
    # Managers did not ask for this kind (the defaults are failures and may-be-live).
    assert smtp.inbox.to("manager@example.test") == []


def test_a_successful_rotation_mails_nobody(world, addresses, smtp):
    assert rotate(world.user()).status == Rotation.SUCCEEDED
    assert not OutboxMessage.objects.filter(consumer=CONSUMER_NAME).exists()
