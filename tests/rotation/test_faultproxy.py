"""The fault-injecting proxy itself (tests/faultproxy.py)."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse

import boto3
import botocore.config
import botocore.exceptions
import pytest

from tests.faultproxy import FaultProxy


@pytest.fixture
def proxy(emulator):
    with FaultProxy(upstream=emulator.endpoint) as running:
        yield running


def _iam(endpoint: str):
    return boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=botocore.config.Config(retries={"total_max_attempts": 1}),
    )


def _get(endpoint: str, path: str) -> tuple[int, bytes]:
    parsed = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_forwards_requests_and_answers_unchanged(proxy, emulator):
    _iam(proxy.endpoint).create_user(UserName="ViaProxy")

    status, body = _get(proxy.endpoint, "/moto-api/data.json")

    assert status == 200
    assert "ViaProxy" in emulator.passwords()
    assert any(user["name"] == "ViaProxy" for user in json.loads(body)["iam"]["User"])
    assert proxy.counters["forwarded"] == 2
    assert proxy.actions["CreateUser"] == 1


def test_status_fault_answers_without_forwarding(proxy, emulator):
    proxy.status(503)

    with pytest.raises(botocore.exceptions.ClientError) as caught:
        _iam(proxy.endpoint).create_user(UserName="Never")

    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert "Never" not in emulator.passwords()
    assert proxy.counters["status"] == 1
    assert proxy.counters["forwarded"] == 0


def test_throttle_answers_an_aws_throttling_error(proxy):
    proxy.throttle()

    with pytest.raises(botocore.exceptions.ClientError) as caught:
        _iam(proxy.endpoint).list_users()

    assert caught.value.response["Error"]["Code"] == "Throttling"


def test_queued_fault_applies_only_to_matching_requests_and_only_n_times(proxy):
    iam = _iam(proxy.endpoint)
    proxy.status(500, times=2, match="Action=CreateUser")

    iam.list_users()  # not matching: forwarded
    for name in ("A", "B"):
        with pytest.raises(botocore.exceptions.ClientError):
            iam.create_user(UserName=name)
    iam.create_user(UserName="C")  # the rule is used up

    assert proxy.counters["status"] == 2
    assert proxy.pending() == 0
    assert [outcome for _action, outcome in proxy.history] == [
        "forwarded",
        "status",
        "status",
        "forwarded",
    ]


def test_drop_after_applies_the_change_but_sends_no_answer(proxy, emulator):
    proxy.drop_after(match="Action=CreateUser")

    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        _iam(proxy.endpoint).create_user(UserName="Applied")

    assert "Applied" in emulator.passwords()
    assert proxy.counters["drop_after"] == 1


def test_drop_before_does_not_forward(proxy, emulator):
    proxy.drop_before()

    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        _iam(proxy.endpoint).create_user(UserName="Dropped")

    assert "Dropped" not in emulator.passwords()
    assert proxy.counters["forwarded"] == 0


def test_slow_delays_then_forwards(proxy):
    proxy.slow(0.4)
    started = time.monotonic()

    status, _body = _get(proxy.endpoint, "/moto-api/data.json")

    assert status == 200
    assert time.monotonic() - started >= 0.4
    assert proxy.counters["slow"] == 1


def test_outage_drops_everything_for_its_window(proxy):
    proxy.outage(0.5)

    with pytest.raises(http.client.RemoteDisconnected):
        _get(proxy.endpoint, "/moto-api/data.json")
    time.sleep(0.6)
    status, _body = _get(proxy.endpoint, "/moto-api/data.json")

    assert status == 200
    assert proxy.counters["outage"] == 1


def _random_outcomes(proxy: FaultProxy, seed: int) -> list[str]:
    proxy.reset_counters()
    proxy.set_random({"status": 0.3, "throttle": 0.3}, seed=seed)
    for _ in range(30):
        _get(proxy.endpoint, "/moto-api/data.json")
    return [outcome for _action, outcome in proxy.history]


def test_random_faults_follow_their_rates_and_repeat_with_the_seed(proxy):
    first = _random_outcomes(proxy, seed=7)
    again = _random_outcomes(proxy, seed=7)

    assert first == again
    assert {"status", "throttle", "forwarded"} <= set(first)


def test_set_random_rejects_unknown_fault_kinds(proxy):
    with pytest.raises(ValueError, match="unknown fault kinds"):
        proxy.set_random({"explode": 0.5})
