"""The access-key soak, short form: under faults, killed and paused gateways and restarts, the
vault always holds a working key for every user, leaves no key it does not know in AWS, and
never needs a third key (tests/soak/keys.py)."""

from __future__ import annotations

import uuid

import pytest

from rotation import aws
from rotation.models import RotationSettings
from tests.cluster import Gateway
from tests.conftest import PASSWORD, make_configuration, make_pam_user
from tests.faultproxy import FaultProxy
from tests.soak.engine import PROCESS_ENV, SoakPlan
from tests.soak.keys import KeySoak
from tests.soak.test_soak_short import DAILY, Web, _free_port
from vault.models import Gateway as GatewayRow

pytestmark = pytest.mark.django_db(transaction=True)

ON_DEMAND = 6
SCHEDULED = 6


@pytest.fixture
def proxy(emulator):
    with FaultProxy(upstream=emulator.endpoint) as running:
        yield running


def test_no_key_is_lost_orphaned_or_third_under_faults_kills_and_restarts(
    personas, emulator, proxy, settings, tmp_path
):
    settings.ROTATION_LEASE_SECONDS = int(PROCESS_ENV["ROTATION_LEASE_SECONDS"])
    settings.ROTATION_UNANSWERED_WINDOW_SECONDS = int(
        PROCESS_ENV["ROTATION_UNANSWERED_WINDOW_SECONDS"]
    )
    settings.ROTATION_KEY_CLOCK_SKEW_SECONDS = int(PROCESS_ENV["ROTATION_KEY_CLOCK_SKEW_SECONDS"])
    aws.clear_caches()
    name = f"keysoak-{uuid.uuid4().hex[:8]}"
    gateway_row = GatewayRow.objects.create(name=name, application=personas.application)
    config = make_configuration(personas.folder, gateway_row, endpoint=proxy.endpoint)
    iam = emulator.iam()
    records = []
    for n in range(ON_DEMAND + SCHEDULED):
        login = f"key-user-{n:03d}"
        emulator.create_user(login, password="Initial-Passw0rd!")
        key = iam.create_access_key(UserName=login)["AccessKey"]
        record = make_pam_user(personas.folder, login, password="Initial-Passw0rd!")
        record.access_key_id = key["AccessKeyId"]
        record.set_secret("access_secret_key", key["SecretAccessKey"])
        record.save()
        RotationSettings.objects.create(
            pam_user=record,
            configuration=config,
            method="iam_access_key",
            schedule=DAILY if n >= ON_DEMAND else {"type": "ON_DEMAND"},
            # Rotated again and again within a minute: the replaced key may go at once.
            key_deactivate_after_hours=0,
            key_delete_after_hours=0,
        )
        records.append(record)
    web_port = _free_port()
    soak = KeySoak(
        emulator_endpoint=emulator.endpoint,
        plan=SoakPlan(seconds=22.0, settle_seconds=45.0),
        proxy=proxy,
        gateways={name: lambda: Gateway(name, log_path=tmp_path / "gateway.log", **PROCESS_ENV)},
        web=lambda: Web(web_port, tmp_path / "web.log"),
        web_port=web_port,
        editor=(personas.editor.username, PASSWORD),
        on_demand=records[:ON_DEMAND],
        scheduled=records[ON_DEMAND:],
        aws_passwords=emulator.passwords,
    )

    report = soak.run()

    print("\n".join(report.lines() + [soak.keys.line()]))
    assert not soak.errors, soak.errors
    assert report.still_active == 0
    assert soak.keys.lost == [], soak.keys.line()
    assert soak.keys.orphans == [], soak.keys.orphans
    assert soak.keys.three_keys == 0, soak.keys.line()
    assert report.succeeded > 0 and soak.keys.keys_created > report.succeeded / 2
    assert report.gateway_kills >= 1 and report.outages >= 1
