"""No password, pending password or secret key anywhere but an audited reveal: not in logs at
any level (during rotations, reveals and failures, in this process and in a real gateway
process), error pages and messages, the admin console, django-q2's tables, audit details,
CLI output without --unmask, or any page before a reveal."""

from __future__ import annotations

import json
import logging
from unittest import mock

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_q.models import OrmQ, Task
from django_q.tasks import _sync as django_q_sync

from rotation import aws, engine
from rotation.models import Rotation
from tests.cluster import Gateway, wait_for
from tests.conftest import PASSWORD, login_verified
from tests.security.conftest import PENDING_PASSWORD, SECRETS, VaultWorld, db_snapshot
from tests.security.test_access_matrix import EXPECT, PERSONAS, url_for
from vault.cli import call_pam
from vault.models import AuditEvent, PamUser

# The AWS emulator runs in this process for the tests; it plays AWS and is not the vault.
EMULATOR_LOGGERS = ("moto", "werkzeug", "tests")
INITIAL = "Initial-Passw0rd!"  # the password tests/rotation/conftest.py gives every user
CONFIG_SECRET = "testing-secret"  # the secret key tests/conftest.py gives configurations


def secrets_of(*records: PamUser) -> set[str]:
    """Every secret the vault holds for these records (current, history, pending)."""
    found = {INITIAL, CONFIG_SECRET}
    for record in records:
        record.refresh_from_db()
        found.add(record.get_secret("password"))
        found.update(v.get_secret("password") for v in record.versions.all())
        for rotation in Rotation.objects.filter(pam_user=record):
            found.add(rotation.get_secret("pending_password"))
    return {s for s in found if s}


def run_queued(payload: str) -> None:
    """Run a queued django-q2 task as a worker would, in this test's transaction."""
    with mock.patch("django_q.conf.Conf.SYNC", True):  # keeps the test's DB connection open
        django_q_sync(payload)


def assert_no_secret(text: str, secrets, where: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret appears in {where}"


@pytest.fixture
def all_logs():
    """Every log record at DEBUG, from the root logger and from loggers that do not
    propagate to it (django-q2's). Loggers the product pins above DEBUG (botocore, boto3:
    they log request bodies) stay pinned: that pin is part of what is tested."""
    records: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Capture(logging.DEBUG)
    targets = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    lowered = [logging.getLogger(), logging.getLogger("django-q"), logging.getLogger("django_q")]
    levels = [(logger, logger.level) for logger in lowered]
    for logger in lowered:
        logger.setLevel(logging.DEBUG)
    for logger in targets:
        logger.addHandler(handler)
    yield records
    for logger in targets:
        logger.removeHandler(handler)
    for logger, level in levels:
        logger.setLevel(level)


def logged_text(records: list[logging.LogRecord]) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = []
    for record in records:
        if record.name.startswith(EMULATOR_LOGGERS):
            continue
        lines.append(formatter.format(record))  # includes the traceback, if any
        lines.append(repr(record.args))
    return "\n".join(lines)


# --- logs --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_logs_at_debug_hold_no_secret_during_rotations_reveals_and_failures(
    world, all_logs, settings, django_capture_on_commit_callbacks
):
    settings.ROTATION_MAX_ATTEMPTS = 1
    personas = world.personas
    editor = Client(raise_request_exception=False)
    editor.post("/login/", {"username": "editor", "password": PASSWORD})

    # A rotation that succeeds, through the Rotate button, the queue and a worker.
    ok = world.user("LeakOk")
    with django_capture_on_commit_callbacks(execute=True):
        editor.post(f"/records/{ok.uid}/rotate/")
    run_queued(OrmQ.objects.get().payload)
    assert Rotation.objects.get(pam_user=ok).status == Rotation.SUCCEEDED
    # One AWS refuses (no console password), one ends without proof (pending kept).
    refused = world.user("LeakNoConsole", console=False)
    engine.rotation_run(rotation_id=engine.rotation_request(record=refused, trigger="cli").pk)
    ambiguous = world.user("LeakAmbiguous")
    timeout = aws.AwsTransient("read timeout", "ReadTimeout", may_have_applied=True)
    with mock.patch("rotation.aws.set_console_password", side_effect=timeout):
        rotation = engine.rotation_request(record=ambiguous, trigger="cli")
        engine.rotation_run(rotation_id=rotation.pk)
    rotation.refresh_from_db()
    assert rotation.holds_possibly_live_password

    # Reveals of current and past passwords, and a CLI reveal.
    for record in (ok, refused, ambiguous):
        editor.post(f"/records/{record.uid}/reveal/", HTTP_ACCEPT="application/json")
        for version in record.versions.all():
            editor.post(f"/records/{record.uid}/versions/{version.uid}/reveal/")
    call_pam("get", ambiguous.uid, "--unmask")
    # A failed sign-in whose password is someone's secret, and a lockout.
    for _ in range(5):
        Client().post("/login/", {"username": "viewer", "password": INITIAL})

    secrets = secrets_of(ok, refused, ambiguous)
    assert len(secrets) == 4  # initial, rotated, possibly-live pending, secret key
    assert any(r.name.startswith("rotation") for r in all_logs), "nothing was captured"
    assert_no_secret(logged_text(all_logs), secrets, "the logs")
    assert personas.editor  # (the personas own the folder the records are in)


@pytest.mark.django_db
def test_a_view_crash_shows_and_logs_no_secret(vault_world, all_logs):
    client = vault_world.client("viewer")
    with mock.patch("vault.views._record_page", side_effect=RuntimeError("template broke")):
        # The reveal redirects; the record page that would show the password crashes.
        response = client.post(f"/records/{vault_world.record.uid}/reveal/", follow=True)
    assert response.status_code == 500
    assert_no_secret(response.content.decode(), SECRETS, "the error page")
    text = logged_text(all_logs)
    assert "template broke" in text  # the crash was logged...
    assert_no_secret(text, SECRETS, "the logs")  # ...without the password


@pytest.mark.django_db(transaction=True)
def test_a_real_gateway_process_logs_no_secret_at_debug(world, tmp_path):
    log = tmp_path / "gateway.log"
    gateway = Gateway("default", log_path=log, LOG_LEVEL="DEBUG").start()
    try:
        records = [world.user(f"GatewayLeak{i}") for i in range(2)]
        for record in records:
            engine.rotation_request(record=record, trigger="cli")
        wait_for(
            lambda: not Rotation.objects.filter(status__in=Rotation.ACTIVE).exists(), timeout=60
        )
    finally:
        gateway.stop()
    assert all(r.status == Rotation.SUCCEEDED for r in Rotation.objects.all())
    text = log.read_text(errors="replace")
    assert "rotation.tasks.run_rotation" in text or "rotate" in text  # it did log
    assert_no_secret(text, secrets_of(*records), "the gateway's log")


# --- messages, error texts, audit, django-q2 ---------------------------------------------------


@pytest.mark.django_db
def test_rotation_errors_audit_details_and_queue_tables_hold_no_secret(
    world, django_capture_on_commit_callbacks
):
    editor = login_verified(world.personas.editor)
    records = [world.user("QueueOk"), world.user("QueueNoConsole", console=False)]
    for record in records:
        with django_capture_on_commit_callbacks(execute=True):
            editor.post(f"/records/{record.uid}/rotate/")
    payloads = list(OrmQ.objects.values_list("payload", flat=True))
    assert len(payloads) == 2
    queued = [repr(OrmQ(payload=p).task) for p in payloads]
    for payload in payloads:
        run_queued(payload)
    secrets = secrets_of(*records)
    assert Task.objects.count() == 2
    tasks = [repr((t.name, t.func, t.args, t.kwargs, t.result)) for t in Task.objects.all()]
    errors = [r.error for r in Rotation.objects.all()]
    assert any(errors), "a rotation should have failed with a message"
    details = [json.dumps(e.details) + e.object_repr for e in AuditEvent.objects.all()]
    for where, texts in (
        ("queued tasks", queued + payloads),
        ("task results", tasks),
        ("rotation errors", errors),
        ("audit details", details),
    ):
        assert_no_secret("\n".join(texts), secrets, where)
    assert_no_secret(raw_tables("django_q"), secrets, "django-q2's tables")


def raw_tables(prefix: str) -> str:
    """Every value of every table whose name starts with `prefix`, as stored."""
    out = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            if table.startswith(prefix):
                cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - our own table names
                out.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(out)


@pytest.mark.django_db
def test_messages_after_actions_hold_no_secret(vault_world):
    client = vault_world.client("editor")
    record = vault_world.record
    response = client.post(
        f"/records/{record.uid}/edit/",
        {
            "title": record.title,
            "login": record.login,
            "distinguished_name": record.distinguished_name,
            "password": "New-Passw0rd!edited",
        },
        follow=True,
    )
    assert "Saved the record" in response.content.decode()
    assert_no_secret(response.content.decode(), {*SECRETS, "New-Passw0rd!edited"}, "messages")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field,value",
    [("password", "Bad-Passw0rd-\u00e9-not-ascii"), ("password", "L" * 129)],
)
def test_a_refused_password_is_not_echoed_back(vault_world, field, value):
    response = vault_world.client("editor").post(
        f"/folders/{vault_world.folder.uid}/records/new/",
        {
            "title": "Echo",
            "login": "Echo",
            "distinguished_name": "arn:aws:iam::123456789012:user/Echo",
            field: value,
        },
    )
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert value not in response.content.decode()


@pytest.mark.django_db
def test_a_refused_secret_key_is_not_echoed_back(vault_world):
    secret = "S" * 129
    response = vault_world.client("editor").post(
        f"/configurations/{vault_world.config.uid}/edit/",
        {
            "title": "Echo",
            "environment": "aws",
            "gateway": "default",
            "access_key_id": "AKIAECHO",
            "access_secret_key": secret,
            "region_names": "us-east-1",
            "default_rotation_schedule": '{"type": "ON_DEMAND"}',
        },
    )
    assert response.status_code == 200
    assert secret not in response.content.decode()


# --- the admin console -------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_changelists_and_change_pages_of_every_model_hold_no_secret(vault_world):
    superuser = vault_world.client("superuser")
    # Two-factor secrets too: a TOTP key and recovery codes exist now.
    totp = TOTPDevice.objects.get(user=vault_world.personas.superuser)
    static = StaticDevice.objects.create(user=vault_world.personas.superuser, name="Recovery")
    StaticToken.objects.create(device=static, token="rcvcode7")
    Client().post("/login/", {"username": "viewer", "password": "wrong"})  # an axes row
    secrets = {*SECRETS, totp.key, "rcvcode7"}
    pages = 0
    for model in admin.site._registry:
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        response = superuser.get(base)
        assert response.status_code == 200, base
        assert_no_secret(response.content.decode(), secrets, base)
        for obj in model.objects.all()[:5]:
            url = f"{base}{obj.pk}/change/"
            response = superuser.get(url)
            assert response.status_code == 200, url
            assert_no_secret(response.content.decode(), secrets, url)
            pages += 1
    assert pages > 10


# --- the CLI -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_cli_output_without_unmask_holds_no_secret(vault_world, fmt):
    outputs = []
    for args in (
        ("get", vault_world.record.uid),
        ("get", vault_world.config.uid),
        ("list",),
        ("rotation", "list"),
        ("gateway", "list"),
    ):
        code, out, err = call_pam(*args, "--format", fmt)
        assert code == 0, err
        outputs.append(out + err)
    assert_no_secret("\n".join(outputs), SECRETS, "CLI output")
    assert not AuditEvent.objects.filter(action="password.revealed").exists()


@pytest.mark.django_db
def test_cli_shows_secrets_only_with_unmask(vault_world):
    code, out, err = call_pam("get", vault_world.record.uid, "--unmask", "--format", "json")
    data = json.loads(out)
    assert data["password"] in SECRETS
    assert [c["password"] for c in data["candidates"]] == [PENDING_PASSWORD]


# --- pages before a reveal ---------------------------------------------------------------------


def _get_pages(persona: str) -> list[str]:
    index = PERSONAS.index(persona)
    return sorted(name for name, m in EXPECT.items() if m["GET"].split()[index] == "200")


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["viewer", "editor", "manager", "outsider", "superuser"])
def test_no_page_shows_a_secret_before_a_reveal(vault_world: VaultWorld, persona):
    client = vault_world.client(persona)
    urls = [url_for(name, vault_world) for name in _get_pages(persona)]  # may make rows
    before = db_snapshot()
    for url in urls:
        response = client.get(url)
        body = b"".join(response) if response.streaming else response.content
        assert_no_secret(body.decode(), SECRETS, url)
    assert db_snapshot() == before


@pytest.mark.django_db
def test_audit_page_exports_csv_without_secrets(vault_world):
    client = vault_world.client("manager")
    client.post(f"/records/{vault_world.record.uid}/reveal/")
    response = client.get("/audit/export.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    assert "password.revealed" in body
    assert_no_secret(body, SECRETS, "the audit CSV")


@pytest.mark.django_db
def test_a_reveal_leaves_no_secret_in_the_address_the_session_a_cookie_or_a_cache(vault_world):
    """Post/redirect/get: the redirect's address, its cookies and the session rows hold no
    revealed password (it waits sealed); only the record page shows it, uncached, once."""
    from django.contrib.sessions.models import Session

    from tests.security.conftest import CURRENT_PASSWORD

    client = vault_world.client("viewer")
    response = client.post(f"/records/{vault_world.record.uid}/reveal/")
    assert response.status_code == 302
    cookies = " ".join(morsel.value for morsel in response.cookies.values())
    assert_no_secret(response["Location"] + response.content.decode(), SECRETS, "the redirect")
    assert_no_secret(cookies, SECRETS, "the cookies")
    for row in Session.objects.all():
        assert_no_secret(json.dumps(row.get_decoded()) + row.session_data, SECRETS, "a session")
    shown = client.get(response["Location"])
    assert CURRENT_PASSWORD in shown.content.decode()
    assert "no-store" in shown["Cache-Control"]
    assert_no_secret(client.get(response["Location"]).content.decode(), SECRETS, "a second view")


# --- webhook bodies ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_webhook_deliveries_carry_no_secret(world, settings):
    from events.outbox import outbox_deliver_due
    from tests.webhooks.conftest import Receiver
    from webhooks.models import EVENT_TYPES, WebhookDelivery
    from webhooks.services import webhook_create, webhook_deliveries_send_due

    settings.WEBHOOK_URL_ALLOWLIST = ["http://127.0.0.1:*"]
    receiver = Receiver()
    try:
        hooks = [
            webhook_create(url=receiver.url, events=list(EVENT_TYPES), folder=folder)
            for folder in (world.personas.folder, None)
        ]
        ok = world.user("HookLeakOk")
        refused = world.user("HookLeakNoConsole", console=False)
        ambiguous = world.user("HookLeakAmbiguous")
        for record in (ok, refused):
            engine.rotation_run(
                rotation_id=engine.rotation_request(record=record, trigger="cli").pk
            )
        timeout = aws.AwsTransient("read timeout", "ReadTimeout", may_have_applied=True)
        with mock.patch("rotation.aws.set_console_password", side_effect=timeout):
            rotation = engine.rotation_request(record=ambiguous, trigger="cli")
            engine.rotation_run(rotation_id=rotation.pk)
        engine.rotation_resolve(rotation=Rotation.objects.get(pk=rotation.pk), use_pending=True)
        outbox_deliver_due()
        webhook_deliveries_send_due()
    finally:
        receiver.stop()
    types = {p["type"] for p in receiver.payloads()}
    assert {"rotation.succeeded", "rotation.failed", "rotation.may_be_live"} <= types
    assert len(receiver.received) == 2 * 3 + 2  # each webhook: 3 rotations and the resolve
    secrets = secrets_of(ok, refused, ambiguous) | {secret for _, secret in hooks}
    sent = "\n".join(repr(r["headers"]) + r["body"].decode() for r in receiver.received)
    assert_no_secret(sent, secrets, "webhook bodies and headers")
    stored = [repr((d.payload, d.last_error)) for d in WebhookDelivery.objects.all()]
    assert_no_secret("\n".join(stored), secrets, "the delivery log")
    client = login_verified(world.personas.superuser)
    assert_no_secret(
        client.get(f"/webhooks/{hooks[1][0].uid}/").content.decode(), secrets, "the log page"
    )


# --- metrics -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_metrics_text_holds_no_secret_after_rotations_and_failures(world, settings):
    """/metrics after a rotation that succeeded, one AWS refused and one that may be live (its
    pending password kept): no password, secret key or the metrics token in the text."""
    settings.METRICS_TOKEN = "metrics-leak-test-token-5f0c"
    settings.METRICS_AWS_FLUSH_SECONDS = 0
    ok = world.user("MetricsLeakOk")
    refused = world.user("MetricsLeakNoConsole", console=False)
    ambiguous = world.user("MetricsLeakAmbiguous")
    for record in (ok, refused):
        engine.rotation_run(rotation_id=engine.rotation_request(record=record, trigger="cli").pk)
    timeout = aws.AwsTransient("read timeout", "ReadTimeout", may_have_applied=True)
    with mock.patch("rotation.aws.set_console_password", side_effect=timeout):
        settings.ROTATION_MAX_ATTEMPTS = 1
        engine.rotation_run(rotation_id=engine.rotation_request(record=ambiguous, trigger="cli").pk)
    assert Rotation.objects.get(pam_user=ambiguous).holds_possibly_live_password

    answer = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}")

    assert answer.status_code == 200
    text = answer.content.decode()
    assert 'vault_passwords_possibly_live{kind="may_be_live"} 1.0' in text
    assert "vault_aws_call_duration_seconds_count" in text
    secrets = secrets_of(ok, refused, ambiguous) | {settings.METRICS_TOKEN}
    assert_no_secret(text, secrets, "the metrics text")
    assert_no_secret(raw_tables("metrics_"), secrets, "the metrics tables")


@pytest.mark.django_db
def test_notification_mails_hold_no_secret(personas, emulator, settings):
    """Mails about a failed rotation and a password that may be live (AWS holds it), in the
    record's folder and the configuration's, at once and as a digest: no secret anywhere in
    them (subject, headers, body)."""
    from datetime import timedelta

    from django.core import mail
    from django.utils import timezone

    from events.outbox import outbox_deliver_due
    from notifications.mail import digests_send
    from notifications.models import DIGEST, NotificationPreference
    from tests.faultproxy import FaultProxy
    from tests.rotation.conftest import AwsWorld

    settings.AWS_MAX_ATTEMPTS, settings.ROTATION_MAX_ATTEMPTS = 1, 2
    settings.NOTIFICATIONS_DIGEST_HOUR = 0
    for user in (personas.editor, personas.manager):
        user.email = f"{user.username}@example.test"
        user.save()
    NotificationPreference.objects.create(
        user=personas.editor,
        folder=personas.folder,
        rotation_failed=True,
        may_be_live=True,
        delivery=DIGEST,
    )
    proxy = FaultProxy(emulator.endpoint).start()
    try:
        faulty = AwsWorld(personas, emulator, endpoint=proxy.endpoint)
        live = faulty.user("MayBeLive")
        broken = faulty.user("NoConsole", console=False)
        proxy.drop_after(match="Action=UpdateLoginProfile", times=None)
        with mock.patch("rotation.dispatch.async_task"):
            for record in (live, broken):
                rotation = engine.rotation_request(record=record, trigger="on_demand")
                engine.rotation_run(rotation_id=rotation.pk)
    finally:
        proxy.stop()
    assert Rotation.objects.get(pam_user=live).holds_possibly_live_password
    outbox_deliver_due(now=timezone.now() + timedelta(seconds=1))
    assert digests_send() == 1
    assert len(mail.outbox) == 3  # the manager's two mails, the editor's digest
    secrets = secrets_of(live, broken) | {faulty.aws_password("MayBeLive")}
    for message in mail.outbox:
        assert_no_secret(message.message().as_string(), secrets, f"the mail {message.subject!r}")
