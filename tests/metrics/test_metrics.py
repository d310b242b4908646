"""GET /metrics: the text Prometheus reads, its values after real rotations against the AWS
emulator (and a fault proxy in front of it), the folded rotation totals, the cost of a scrape,
and who may read it."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from metrics import store
from metrics.models import AwsCallBucket, MetricsMark, RotationTotal
from rotation import aws, engine, gateways
from rotation.models import Rotation
from tests.conftest import make_configuration
from tests.faultproxy import FaultProxy
from tests.hostile import HtmlServer
from tests.metrics.conftest import TOKEN
from tests.rotation.conftest import AwsWorld
from vault.models import Gateway

pytestmark = pytest.mark.django_db

FAMILIES = {
    "vault_rotations",
    "vault_rotations_queued",
    "vault_rotations_running",
    "vault_rotations_oldest_queued_age_seconds",
    "vault_gateway_heartbeat_age_seconds",
    "vault_gateway_up",
    "vault_passwords_possibly_live",
    "vault_aws_call_duration_seconds",
    "vault_aws_call_errors",
}


def scrape(client: Client | None = None) -> dict[tuple, float]:
    """Every sample of /metrics as {(name, (label, value), ...): value}; the text must parse."""
    answer = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answer.status_code == 200, answer.content
    assert answer["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(answer.content.decode()):
        for sample in family.samples:
            samples[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return samples


def families(client: Client | None = None) -> set[str]:
    answer = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    return {f.name for f in text_string_to_metric_families(answer.content.decode())}


def total(samples, method="iam_user", trigger="cli", outcome="succeeded") -> float:
    key = ("vault_rotations_total", ("method", method), ("outcome", outcome), ("trigger", trigger))
    return samples.get(key, 0)


def rotate(record, trigger: str = "cli") -> Rotation:
    rotation = engine.rotation_request(record=record, trigger=trigger)
    engine.rotation_run(rotation_id=rotation.pk)
    rotation.refresh_from_db()
    return rotation


@pytest.fixture
def enqueued():
    with mock.patch("rotation.dispatch.async_task") as async_task:
        yield async_task


@pytest.fixture
def world(personas, emulator) -> AwsWorld:
    return AwsWorld(personas, emulator)


# --- the text and its values ---------------------------------------------------------------------


def test_an_empty_vault_gives_every_family_in_text_prometheus_parses(personas):
    assert families() >= FAMILIES
    samples = scrape()
    assert samples[("vault_rotations_queued", ("gateway", "default"))] == 0
    assert samples[("vault_passwords_possibly_live", ("kind", "may_be_live"))] == 0


def test_real_rotations_are_counted_by_method_trigger_and_outcome(world):
    assert rotate(world.user("ok-1")).status == Rotation.SUCCEEDED
    assert rotate(world.user("ok-2"), trigger="on_demand").status == Rotation.SUCCEEDED
    assert rotate(world.user("no-console", console=False)).status == Rotation.FAILED

    samples = scrape()

    assert total(samples, trigger="cli", outcome="succeeded") == 1
    assert total(samples, trigger="on_demand", outcome="succeeded") == 1
    assert total(samples, trigger="cli", outcome="failed") == 1
    assert total(samples, trigger="scheduled", outcome="succeeded") == 0


def test_aws_calls_of_real_rotations_give_latency_histograms_and_errors_by_code(world):
    rotate(world.user("ok"))
    rotate(world.user("no-console", console=False))

    samples = scrape()

    update = ("action", "iam:UpdateLoginProfile")
    assert samples[("vault_aws_call_duration_seconds_count", update)] == 2
    assert samples[("vault_aws_call_duration_seconds_bucket", update, ("le", "+Inf"))] == 2
    assert 0 < samples[("vault_aws_call_duration_seconds_sum", update)] < 60
    assert samples[("vault_aws_call_errors_total", update, ("code", "NoSuchEntity"))] == 1
    # Buckets are cumulative.
    counts = [
        v for k, v in samples.items() if k[:2] == ("vault_aws_call_duration_seconds_bucket", update)
    ]
    assert counts == sorted(counts)


def test_an_endpoint_echoing_what_it_was_sent_as_its_error_code_is_counted_as_other(personas):
    echoed = "Echoed-Passw0rd-As-Code"
    body = (
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{echoed}</Code><Message>no</Message></Error>"
        "<RequestId>1</RequestId></ErrorResponse>"
    ).encode()
    with HtmlServer(status=400, body=body, content_type="text/xml") as server:
        config = make_configuration(personas.folder, personas.gateway, endpoint=server.endpoint)
        with pytest.raises(aws.AwsError):
            aws.user_path(config, login="someone")

    answer = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()

    assert echoed not in answer
    assert (
        scrape()[("vault_aws_call_errors_total", ("action", "iam:GetUser"), ("code", "Other"))] == 1
    )


def test_a_may_be_live_password_from_a_real_ambiguous_failure_is_counted(
    personas, emulator, settings
):
    settings.AWS_MAX_ATTEMPTS = 1
    settings.ROTATION_MAX_ATTEMPTS = 2
    proxy = FaultProxy(emulator.endpoint).start()
    try:
        world = AwsWorld(personas, emulator, endpoint=proxy.endpoint)
        proxy.drop_after(match="Action=UpdateLoginProfile", times=None)
        rotation = rotate(world.user("dropped"))
    finally:
        proxy.stop()
    assert rotation.holds_possibly_live_password

    samples = scrape()

    assert samples[("vault_passwords_possibly_live", ("kind", "may_be_live"))] == 1
    assert total(samples, outcome="failed") == 1
    update = ("action", "iam:UpdateLoginProfile")
    assert samples[("vault_aws_call_errors_total", update, ("code", "ConnectionClosedError"))] == 2


def test_queued_rotations_per_gateway_and_the_oldest_ones_age(world, personas):
    other = Gateway.objects.create(name="other", application=personas.application)
    waiting = engine.rotation_request(record=world.user("waits"), trigger="on_demand")
    Rotation.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(minutes=7))
    engine.rotation_request(record=world.user("waits-too"), trigger="on_demand")

    samples = scrape()

    assert samples[("vault_rotations_queued", ("gateway", "default"))] == 2
    assert samples[("vault_rotations_queued", ("gateway", other.name))] == 0
    age = samples[("vault_rotations_oldest_queued_age_seconds", ("gateway", "default"))]
    assert 7 * 60 <= age < 8 * 60
    assert samples[("vault_rotations_oldest_queued_age_seconds", ("gateway", "other"))] == 0


def test_gateway_heartbeat_age_and_up_after_a_real_tick(world, personas, settings):
    stale = Gateway.objects.create(name="stale", application=personas.application)
    Gateway.objects.filter(pk=stale.pk).update(
        last_seen_at=timezone.now() - timedelta(seconds=settings.GATEWAY_OFFLINE_SECONDS + 60)
    )
    Gateway.objects.create(name="never", application=personas.application)

    gateways.gateway_tick(gateway_name="default")  # heartbeat, due scan, tick hooks
    samples = scrape()

    assert samples[("vault_gateway_heartbeat_age_seconds", ("gateway", "default"))] < 30
    assert samples[("vault_gateway_up", ("gateway", "default"))] == 1
    assert samples[("vault_gateway_heartbeat_age_seconds", ("gateway", "stale"))] >= 180
    assert samples[("vault_gateway_up", ("gateway", "stale"))] == 0
    assert samples[("vault_gateway_up", ("gateway", "never"))] == 0
    assert ("vault_gateway_heartbeat_age_seconds", ("gateway", "never")) not in samples


def test_the_due_scan_duration_is_written_by_the_tick_that_ran_it(world):
    record = world.user("due", schedule={"type": "DAILY", "intervalCount": 1, "utcTime": "00:00"})
    record.rotation_settings.next_run_at = timezone.now() - timedelta(minutes=1)
    record.rotation_settings.save()
    assert ("vault_due_scan_duration_seconds",) not in scrape()

    gateways.gateway_tick(gateway_name="default")
    samples = scrape()

    assert 0 < samples[("vault_due_scan_duration_seconds",)] < 60
    assert samples[("vault_due_scan_requested",)] == 1
    ended = samples[("vault_due_scan_last_run_timestamp_seconds",)]
    assert abs(ended - timezone.now().timestamp()) < 60


# --- totals folded, never counted twice, never from every row ------------------------------------


def _age_finished(minutes: int) -> None:
    Rotation.objects.update(finished_at=timezone.now() - timedelta(minutes=minutes))


def test_old_rotations_are_folded_once_and_new_ones_added_live(world):
    rotate(world.user("early"))
    _age_finished(60)

    assert total(scrape()) == 1
    assert RotationTotal.objects.get(trigger="cli", outcome="succeeded").n == 1
    mark = MetricsMark.objects.get(name=store.ROTATIONS_MARK).at
    assert timezone.now() - mark >= store.SETTLE

    assert total(scrape()) == 1  # a second scrape folds nothing twice
    assert store.rotation_totals_fold() == 0
    rotate(world.user("later"))
    assert total(scrape()) == 2
    assert RotationTotal.objects.get(trigger="cli", outcome="succeeded").n == 1  # not folded yet


def test_a_folded_total_does_not_go_down_when_its_record_is_deleted(world):
    record = world.user("deleted-later")
    rotate(record)
    _age_finished(60)
    assert total(scrape()) == 1

    record.delete()

    assert not Rotation.objects.exists()
    assert total(scrape()) == 1


def _bulk_rotations(record, count: int, *, finished_minutes_ago: int) -> None:
    finished = timezone.now() - timedelta(minutes=finished_minutes_ago)
    Rotation.objects.bulk_create(
        Rotation(
            pam_user=record,
            configuration=record.rotation_settings.configuration,
            gateway_name="default",
            trigger=("cli", "scheduled", "on_demand")[n % 3],
            status=(Rotation.SUCCEEDED, Rotation.FAILED)[n % 2],
            created_at=finished - timedelta(seconds=1),
            started_at=finished - timedelta(seconds=1),
            finished_at=finished,
        )
        for n in range(count)
    )


def _scrape_queries() -> int:
    with CaptureQueriesContext(connection) as queries:
        scrape()
    return len(queries)


def _set_up(folding: bool) -> None:
    """The next scrape folds every rotation (no mark yet), or folds none (a recent mark)."""
    if folding:
        MetricsMark.objects.all().delete()
        RotationTotal.objects.all().delete()
    else:
        MetricsMark.objects.update_or_create(
            name=store.ROTATIONS_MARK, defaults={"at": timezone.now() - store.SETTLE}
        )


@pytest.mark.parametrize("folding", [True, False], ids=["folding", "live"])
def test_a_scrape_costs_the_same_queries_for_ten_or_two_thousand_rotations(
    world, django_assert_max_num_queries, folding
):
    few, many = world.user("few"), world.user("many")
    _bulk_rotations(few, 12, finished_minutes_ago=60 if folding else 0)
    _set_up(folding)
    small = _scrape_queries()
    _bulk_rotations(many, 2500, finished_minutes_ago=60 if folding else 0)
    _set_up(folding)

    with django_assert_max_num_queries(small):
        samples = scrape()

    assert sum(v for k, v in samples.items() if k[0] == "vault_rotations_total") == 2512
    assert small <= 25


# --- who may read it -----------------------------------------------------------------------------


def test_not_served_at_all_when_neither_a_token_nor_a_network_is_set(personas, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


def test_the_token_is_required_when_set(personas):
    anonymous = Client()
    missing = anonymous.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.get("/metrics", HTTP_AUTHORIZATION="Basic bWU6cGFzcw==").status_code == 401
    wrong = anonymous.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}x")
    assert wrong.status_code == 403
    assert TOKEN not in wrong.content.decode()
    assert anonymous.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN[:-1]}").status_code == 403
    assert anonymous.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}").status_code == 200
    assert anonymous.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_a_signed_in_superuser_without_the_token_is_refused(personas):
    client = Client()
    client.force_login(personas.superuser)
    assert client.get("/metrics").status_code == 401


def test_the_network_allow_list_admits_its_addresses_only(personas, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16", "::1/128"]
    inside = Client(REMOTE_ADDR="10.20.3.4").get("/metrics")
    assert inside.status_code == 200
    assert "vault_rotations_queued" in inside.content.decode()
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    outside = Client(REMOTE_ADDR="10.21.0.1")
    assert outside.get("/metrics").status_code == 403
    # The forwarded-for header is the client's to write: it does not count.
    assert outside.get("/metrics", HTTP_X_FORWARDED_FOR="10.20.3.4").status_code == 403


def test_with_both_set_either_the_network_or_the_token_admits(personas, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["192.168.7.0/24"]
    assert Client(REMOTE_ADDR="192.168.7.9").get("/metrics").status_code == 200
    outside = Client(REMOTE_ADDR="172.16.0.1")
    assert outside.get("/metrics").status_code == 401
    assert outside.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


# --- the gateways' side: buffered writes, and hooks that cannot hurt a rotation ------------------


def test_aws_calls_wait_in_the_process_until_the_flush_interval_or_the_tick(world, settings):
    settings.METRICS_AWS_FLUSH_SECONDS = 3600
    store._last_flush = time.monotonic()
    rotate(world.user("buffered"))
    update = ("vault_aws_call_duration_seconds_count", ("action", "iam:UpdateLoginProfile"))
    assert update not in scrape()
    assert not AwsCallBucket.objects.exists()

    gateways.gateway_tick(gateway_name="default")

    assert scrape()[update] == 1


def test_a_drain_writes_the_calls_made_on_its_aws_lane_after_each_batch(world, enqueued):
    records = [world.user(f"laned-{n}") for n in range(3)]
    engine.rotation_request_many(records=records, trigger="cli")

    gateways.gateway_drain(gateway_name="default")  # no tick

    update = ("vault_aws_call_duration_seconds_count", ("action", "iam:UpdateLoginProfile"))
    assert scrape()[update] == 3


def test_calls_counted_off_the_main_thread_are_written_by_it(personas):
    counted = threading.Thread(target=store.aws_call_observe, args=("iam:GetUser", 0.01, ""))
    counted.start()
    counted.join()
    assert not AwsCallBucket.objects.exists()  # that thread has no database

    assert store.aws_calls_flush_due() == 1
    assert AwsCallBucket.objects.get(action="iam:GetUser").n == 1


def test_a_failing_observer_changes_no_rotation(world, caplog):
    def broken(action: str, seconds: float, code: str) -> None:
        raise RuntimeError("observer down")

    aws.CALL_HOOKS["broken"] = broken
    try:
        rotation = rotate(world.user("observed"))
    finally:
        del aws.CALL_HOOKS["broken"]
    assert rotation.status == Rotation.SUCCEEDED, rotation.error
    assert "AWS call hook broken failed" in caplog.text
    assert (
        scrape()[("vault_aws_call_duration_seconds_count", ("action", "iam:UpdateLoginProfile"))]
        == 1
    )
