"""Webhooks end to end: a rotation against the AWS emulator, the outbox and the workers'
tick, a real HTTP receiver, and signatures checked with the standardwebhooks library."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from events.outbox import outbox_deliver_due
from rotation import aws, engine
from rotation.gateways import TICK_HOOKS
from webhooks.models import Webhook, WebhookDelivery
from webhooks.services import webhook_create, webhook_deliveries_send_due, webhook_redeliver

pytestmark = pytest.mark.django_db

ALL = ["rotation.succeeded", "rotation.failed", "rotation.may_be_live"]


def _later(**kw):
    return timezone.now() + timedelta(**kw)


def run_workers(**kw) -> dict:
    """What a gateway's tick does for webhooks: the outbox fan-out, then the sending."""
    outbox_deliver_due(now=_later(seconds=1))
    return webhook_deliveries_send_due(**kw)


def rotate(world, login: str, console: bool = True):
    record = world.user(login, console=console)
    rotation = engine.rotation_request(record=record, trigger="cli")
    engine.rotation_run(rotation_id=rotation.pk)
    rotation.refresh_from_db()
    return record, rotation


def test_the_tick_sends_deliveries():
    assert TICK_HOOKS["webhooks"] is webhook_deliveries_send_due


def test_a_rotation_is_delivered_signed_and_verifies(world, receiver):
    webhook, secret = webhook_create(url=receiver.url, events=ALL, folder=world.personas.folder)
    assert secret.startswith("whsec_")
    record, rotation = rotate(world, "HookOk")
    assert rotation.status == rotation.SUCCEEDED
    assert not receiver.received  # nothing is sent by the rotation itself
    assert run_workers()["delivered"] == 1
    [request] = receiver.received
    payload = Verifier(secret).verify(request["body"], request["headers"])
    assert payload["type"] == "rotation.succeeded"
    data = payload["data"]
    assert data["record"] == {"uid": record.uid, "name": record.title}
    assert data["folder"]["uid"] == world.personas.folder.uid
    assert (data["rotation"], data["status"], data["error"]) == (rotation.uid, "succeeded", None)
    delivery = WebhookDelivery.objects.get()
    assert request["headers"]["webhook-id"] == delivery.message_id
    assert (delivery.status, delivery.response_code, delivery.attempts) == ("delivered", 200, 1)
    # Another secret does not verify it.
    with pytest.raises(WebhookVerificationError):
        Verifier(webhook_create(url=receiver.url, events=ALL, folder=None)[1]).verify(
            request["body"], request["headers"]
        )
    assert webhook.pk


def test_a_failure_names_its_error_and_may_be_live_is_its_own_type(world, receiver):
    _, secret = webhook_create(url=receiver.url, events=["rotation.failed"], folder=None)
    _, failed = rotate(world, "HookNoConsole", console=False)
    timeout = aws.AwsTransient("read timeout", "ReadTimeout", may_have_applied=True)
    with mock.patch("rotation.aws.set_console_password", side_effect=timeout):
        _, live = rotate(world, "HookLive")
    assert live.holds_possibly_live_password
    run_workers()
    payloads = [Verifier(secret).verify(r["body"], r["headers"]) for r in receiver.received]
    by_rotation = {p["data"]["rotation"]: p for p in payloads}
    assert by_rotation[failed.uid]["type"] == "rotation.failed"
    assert by_rotation[failed.uid]["data"]["error"] == failed.error
    assert by_rotation[live.uid]["type"] == "rotation.may_be_live"
    assert by_rotation[live.uid]["data"]["may_be_live"] is True


def test_only_subscribed_events_and_the_folders_own_are_delivered(world, receiver):
    webhook_create(url=receiver.url, events=["rotation.failed"], folder=world.personas.folder)
    webhook_create(url=receiver.url, events=ALL, folder=world.personas.other_folder)
    rotate(world, "HookQuiet")
    run_workers()
    assert receiver.received == []
    assert not WebhookDelivery.objects.exists()


def test_a_500_is_retried_with_backoff_then_delivered(world, receiver):
    webhook_create(url=receiver.url, events=ALL, folder=world.personas.folder)
    receiver.codes = [500]
    rotate(world, "HookRetry")
    assert run_workers()["retry"] == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.response_code) == ("pending", 500)
    assert delivery.last_error == "the receiver answered HTTP 500"
    wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert timedelta(seconds=25) < wait < timedelta(seconds=35)
    assert webhook_deliveries_send_due()["delivered"] == 0  # not due yet
    assert webhook_deliveries_send_due(now=_later(seconds=31))["delivered"] == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_code, delivery.attempts) == ("delivered", 200, 2)
    assert len(receiver.received) == 2
    ids = {r["headers"]["webhook-id"] for r in receiver.received}
    assert ids == {delivery.message_id}  # the same id on every attempt


def test_410_turns_the_webhook_off_and_says_why(world, receiver):
    webhook, _ = webhook_create(url=receiver.url, events=ALL, folder=world.personas.folder)
    receiver.codes = [410]
    rotate(world, "HookGone")
    assert run_workers()["gone"] == 1
    webhook.refresh_from_db()
    assert not webhook.enabled and "410 Gone" in webhook.disabled_reason
    assert WebhookDelivery.objects.get().status == "failed"
    rotate(world, "HookGoneAgain")
    run_workers(now=_later(hours=7))
    assert len(receiver.received) == 1  # nothing more is sent to it


def test_a_receiver_that_keeps_failing_is_given_up(world, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    webhook_create(url=receiver.url, events=ALL, folder=world.personas.folder)
    receiver.codes = [503, 503]
    rotate(world, "HookDown")
    run_workers()
    assert webhook_deliveries_send_due(now=_later(hours=1))["failed"] == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and "gave up after 2 attempts" in delivery.last_error
    webhook_redeliver(delivery=delivery)
    assert webhook_deliveries_send_due()["delivered"] == 1
    assert len(receiver.received) == 3


def test_a_dead_receiver_times_out_quickly(world, receiver, settings):
    import socket

    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts connections, never answers
    try:
        port = silent.getsockname()[1]
        webhook_create(url=f"http://127.0.0.1:{port}/", events=ALL, folder=None)
        rotate(world, "HookSlow")
        assert run_workers()["retry"] == 1
    finally:
        silent.close()
    assert WebhookDelivery.objects.get().last_error == "timed out"


def test_a_url_no_longer_allowed_is_not_called(world, receiver, settings):
    webhook_create(url=receiver.url, events=ALL, folder=None)
    settings.WEBHOOK_URL_ALLOWLIST = []
    rotate(world, "HookRefused")
    run_workers()
    assert receiver.received == []
    assert "no longer allowed" in WebhookDelivery.objects.get().last_error


def test_a_webhook_made_after_an_event_does_not_get_it(world, receiver):
    rotate(world, "HookEarly")
    webhook_create(url=receiver.url, events=ALL, folder=None)
    run_workers()
    assert receiver.received == []
    assert Webhook.objects.count() == 1
