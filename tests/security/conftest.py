"""Fixtures for the security tests: a vault holding one of everything, with secrets whose
values the tests look for wherever they must not appear.

The AWS `world` of the rotation tests (emulator + configuration) is reused from
tests/rotation/conftest.py.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client

from rotation.models import Rotation, RotationBatch
from rotation.passwords import AWS_SYMBOLS
from tests.conftest import login, login_verified, make_configuration, make_pam_user
from tests.rotation.conftest import _fresh_aws_caches, make_settings, world  # noqa: F401
from vault import services

CURRENT_PASSWORD = "Current-Passw0rd!sec1"
OLDER_PASSWORD = "Older-Passw0rd!sec2"
PENDING_PASSWORD = "Pending-Passw0rd!sec3"
CONFIG_SECRET = "config-secret-key-sec4XYZ"
SECRETS = (CURRENT_PASSWORD, OLDER_PASSWORD, PENDING_PASSWORD, CONFIG_SECRET)

PERSONAS = ("anonymous", "outsider", "viewer", "editor", "manager", "superuser")

# The tables a request could change; compared before and after a refused request.
SNAPSHOT_MODELS = (
    "auth.User",
    "vault.SharedFolder",
    "vault.FolderMember",
    "vault.Application",
    "vault.Application_administrators",
    "vault.ApplicationFolder",
    "vault.Gateway",
    "vault.PamConfiguration",
    "vault.PamUser",
    "vault.PasswordVersion",
    "vault.AuditEvent",
    "rotation.RotationSettings",
    "rotation.Rotation",
    "rotation.RotationBatch",
    "rotation.ConnectionTest",
    "notifications.NotificationPreference",
    "webhooks.Webhook",
    "webhooks.WebhookDelivery",
    "secretsapi.ClientCredential",
    "django_q.OrmQ",
    "otp_totp.TOTPDevice",
    "otp_static.StaticDevice",
    "otp_static.StaticToken",
)


def db_snapshot() -> dict[str, list[tuple]]:
    """Every row of every table a forged request could touch, every column, as the database
    stores it. Read with plain SQL: the ORM's query building cost the matrix a third of its
    time, and the same raw values before and after compare just as well."""
    snapshot = {}
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for label in SNAPSHOT_MODELS:
            model = apps.get_model(label)
            columns = ", ".join(quote(f.column) for f in model._meta.concrete_fields)
            table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
            cursor.execute(f"SELECT {columns} FROM {table} ORDER BY {pk}")
            snapshot[label] = [tuple(row) for row in cursor.fetchall()]
    return snapshot


class VaultWorld:
    """The personas' folder "Team" with a record (current password and an older one in its
    history), a configuration, rotation settings, a failed rotation holding a possibly-live
    pending password, and a Rotate all batch."""

    def __init__(self, personas, endpoint: str = "") -> None:
        self.personas = personas
        self.folder = personas.folder
        self.config = make_configuration(
            personas.folder,
            personas.gateway,
            endpoint=endpoint,
            access_secret_key=CONFIG_SECRET,
        )
        self.record = services.pam_user_create(
            folder=self.folder,
            title="AWS user: TestUser",
            login="TestUser",
            distinguished_name="arn:aws:iam::123456789012:user/TestUser",
            password=OLDER_PASSWORD,
            actor=personas.editor,
        )
        services.pam_user_set_password(
            record=self.record, password=CURRENT_PASSWORD, set_by=personas.editor
        )
        self.record.save()
        self.version = self.record.versions.order_by("created_at", "pk").first()
        self.settings = make_settings(self.record, self.config)
        self.rotation = Rotation(
            pam_user=self.record,
            configuration=self.config,
            gateway_name=personas.gateway.name,
            trigger="on_demand",
            status=Rotation.FAILED,
            pending_may_be_live=True,
            error="AWS did not answer",
        )
        self.rotation.save()
        self.rotation.set_secret("pending_password", PENDING_PASSWORD)
        self.rotation.save()
        self.batch = RotationBatch.objects.create(folder=self.folder)
        self.batch.rotations.add(self.rotation)
        self.other_record = make_pam_user(personas.other_folder, "Elsewhere", password="x-Other1")

    def client(self, persona: str) -> Client:
        if persona == "anonymous":
            return Client(raise_request_exception=False)
        user = getattr(self.personas, persona)
        client = login_verified(user) if persona == "superuser" else login(user)
        client.raise_request_exception = False
        return client


@pytest.fixture
def vault_world(personas) -> VaultWorld:
    return VaultWorld(personas)


def settings_form_data(config) -> dict:
    """A valid Password Rotation Settings submission choosing `config`, on demand."""
    return {
        "method": "iam_user",
        "configuration": config.uid,
        "schedule_type": "ON_DEMAND",
        "tz": "UTC",
        "length": "32",
        "min_upper": "5",
        "min_lower": "5",
        "min_digits": "5",
        "min_symbols": "5",
        "symbols": AWS_SYMBOLS,
        "enabled": "on",
    }
