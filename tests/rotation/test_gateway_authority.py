"""The gateway checks authority again, from the database, before it calls AWS (issue 9): a
rotation that reached its queue by any path (a request checked by the web long ago, the
scheduler, a row written by hand) touches AWS only if, now, this gateway's application has the
record's and the configuration's folders shared editable, the configuration's target scope
allows the IAM user (its path as AWS reports it), and the host's own credentials are allowed."""

from __future__ import annotations

from unittest import mock

import pytest

from rotation import engine
from rotation.models import Rotation
from tests.conftest import make_configuration, make_member, make_pam_user
from tests.rotation.conftest import make_settings
from vault.models import (
    USE_INSTANCE_ROLE,
    Application,
    ApplicationFolder,
    AuditEvent,
    Gateway,
    SharedFolder,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue():
    with mock.patch("rotation.dispatch.async_task") as enqueued:
        yield enqueued


def _queued(record, config) -> Rotation:
    """A queued rotation written straight to the database: the gateway trusts no web check."""
    return Rotation.objects.create(
        pam_user=record,
        configuration=config,
        gateway_name=config.gateway.name,
        trigger="scheduled",
        lease_expires_at=engine.lease_deadline(),
    )


def _run(rotation: Rotation) -> Rotation:
    engine.rotation_run(rotation_id=rotation.pk)
    rotation.refresh_from_db()
    return rotation


def _no_aws():
    """Any client the gateway would make for AWS fails the test."""
    return mock.patch("rotation.aws.client", side_effect=AssertionError("AWS was called"))


def test_rotation_in_a_folder_not_shared_to_the_gateway_fails_without_calling_aws(world):
    record = world.user("alice.admin")
    ApplicationFolder.objects.filter(folder=record.folder).delete()
    rotation = _queued(record, world.config)
    with _no_aws():
        rotation = _run(rotation)
    assert rotation.status == Rotation.FAILED
    assert "is not shared to the application “Rotation App”" in rotation.error
    assert world.aws_password("alice.admin") == "Initial-Passw0rd!"


def test_rotation_in_a_folder_shared_read_only_fails_and_names_what_to_grant(world):
    record = world.user("alice.admin")
    ApplicationFolder.objects.filter(folder=record.folder).update(editable=False)
    with _no_aws():
        rotation = _run(_queued(record, world.config))
    assert rotation.status == Rotation.FAILED
    assert "shared read-only" in rotation.error
    assert "must share it editable" in rotation.error


def test_configuration_in_a_folder_not_shared_to_the_gateway_fails(world, personas):
    keys = SharedFolder.objects.create(name="Keys")
    config = make_configuration(keys, personas.gateway, endpoint=world.emulator.endpoint)
    world.emulator.create_user("alice.admin")
    record = make_pam_user(personas.folder, "alice.admin", password="Initial-Passw0rd!")
    make_settings(record, config)
    with _no_aws():
        rotation = _run(_queued(record, config))
    assert rotation.status == Rotation.FAILED
    assert "The configuration's folder “Keys” is not shared" in rotation.error


def test_gateway_not_named_by_the_configuration_refuses(world, personas):
    record = world.user("alice.admin")
    rotation = _queued(record, world.config)
    other = Gateway.objects.create(name="gw2", application=personas.application)
    Rotation.objects.filter(pk=rotation.pk).update(gateway_name=other.name)
    with _no_aws():
        rotation = _run(rotation)
    assert rotation.status == Rotation.FAILED
    assert "now names the gateway “default”, not “gw2”" in rotation.error


def test_gateway_without_an_application_refuses(world, personas):
    record = world.user("alice.admin")
    Gateway.objects.filter(pk=personas.gateway.pk).update(application=None)
    with _no_aws():
        rotation = _run(_queued(record, world.config))
    assert rotation.status == Rotation.FAILED
    assert "belongs to no application" in rotation.error


def test_instance_role_on_a_gateway_that_does_not_allow_it_fails_without_calling_aws(world):
    record = world.user("alice.admin")
    world.config.access_key_id = USE_INSTANCE_ROLE
    world.config.scope_user_pattern = "alice.*"
    world.config.save()
    with _no_aws():
        rotation = _run(_queued(record, world.config))
    assert rotation.status == Rotation.FAILED
    assert "does not allow" in rotation.error


def test_instance_role_without_a_scope_fails_even_where_allowed(world, personas):
    record = world.user("alice.admin")
    Gateway.objects.filter(pk=personas.gateway.pk).update(allow_instance_role=True)
    world.config.access_key_id = USE_INSTANCE_ROLE
    world.config.save()
    with _no_aws():
        rotation = _run(_queued(record, world.config))
    assert rotation.status == Rotation.FAILED
    assert "without a target scope" in rotation.error


def test_user_name_outside_the_scope_fails_without_calling_aws(world):
    record = world.user("alice.admin")
    world.config.scope_user_pattern = "svc-*, ci-runner"
    world.config.save()
    with _no_aws():
        rotation = _run(_queued(record, world.config))
    assert rotation.status == Rotation.FAILED
    assert "outside the target scope" in rotation.error
    assert world.aws_password("alice.admin") == "Initial-Passw0rd!"


def test_user_name_inside_the_scope_rotates(world):
    record = world.user("svc-deploy")
    world.config.scope_user_pattern = "svc-*, ci-runner"
    world.config.save()
    rotation = _run(_queued(record, world.config))
    assert rotation.status == Rotation.SUCCEEDED
    assert world.aws_password("svc-deploy") == record.__class__.objects.get(
        pk=record.pk
    ).get_secret("password")


def test_path_outside_the_prefix_as_aws_reports_it_fails_and_changes_nothing(world):
    """The record's ARN claims /rotated/, but AWS holds the user at /: AWS's word counts."""
    record = world.user("alice.admin")
    record.distinguished_name = "arn:aws:iam::123456789012:user/rotated/alice.admin"
    record.save()
    world.config.scope_path_prefix = "/rotated/"
    world.config.save()
    rotation = _run(_queued(record, world.config))
    assert rotation.status == Rotation.FAILED
    assert "has the path /, outside the target scope" in rotation.error
    assert world.aws_password("alice.admin") == "Initial-Passw0rd!"


def test_path_inside_the_prefix_rotates(world, personas):
    iam = world.emulator.iam()
    iam.create_user(UserName="svc-app", Path="/rotated/team/")
    iam.create_login_profile(UserName="svc-app", Password="Initial-Passw0rd!")
    record = make_pam_user(
        personas.folder,
        "svc-app",
        distinguished_name="arn:aws:iam::123456789012:user/rotated/team/svc-app",
    )
    make_settings(record, world.config)
    world.config.scope_path_prefix = "/rotated/"
    world.config.save()
    rotation = _run(_queued(record, world.config))
    assert rotation.status == Rotation.SUCCEEDED


def test_refusal_keeps_a_possibly_live_password(world):
    """A rotation recovered after its worker may have reached AWS keeps its pending password,
    even when the gateway now refuses to go on."""
    record = world.user("alice.admin")
    rotation = _queued(record, world.config)
    rotation.set_secret("pending_password", "Pending-Passw0rd!1")
    rotation.pending_may_be_live = True
    rotation.save()
    ApplicationFolder.objects.filter(folder=record.folder).delete()
    rotation = _run(rotation)
    assert rotation.status == Rotation.FAILED
    assert rotation.get_secret("pending_password") == "Pending-Passw0rd!1"
    assert rotation.holds_possibly_live_password


# --- audit where each party looks ----------------------------------------------------------------


@pytest.fixture
def shared_keys(world, personas):
    """A configuration kept in its own folder, shared to the gateway's application."""
    keys = SharedFolder.objects.create(name="Keys")
    make_member(keys, personas.editor, can_edit=True)
    ApplicationFolder.objects.create(application=personas.application, folder=keys)
    return make_configuration(keys, personas.gateway, endpoint=world.emulator.endpoint)


def test_success_is_audited_in_the_configurations_folder_too(world, shared_keys, personas):
    world.emulator.create_user("alice.admin")
    record = make_pam_user(personas.folder, "alice.admin", password="Initial-Passw0rd!")
    make_settings(record, shared_keys)
    rotation = _run(_queued(record, shared_keys))
    assert rotation.status == Rotation.SUCCEEDED
    in_keys = AuditEvent.objects.get(folder=shared_keys.folder, action="rotation.scheduled.ok")
    assert in_keys.object_uid == shared_keys.uid
    assert in_keys.details["login"] == "alice.admin"
    assert in_keys.details["record"] == record.uid
    assert AuditEvent.objects.filter(
        folder=personas.folder, action="rotation.scheduled.ok"
    ).exists()


def test_refusal_is_audited_in_both_folders(world, shared_keys, personas):
    world.emulator.create_user("alice.admin")
    record = make_pam_user(personas.folder, "alice.admin", password="Initial-Passw0rd!")
    make_settings(record, shared_keys)
    shared_keys.scope_user_pattern = "svc-*"
    shared_keys.save()
    _run(_queued(record, shared_keys))
    for folder in (personas.folder, shared_keys.folder):
        event = AuditEvent.objects.get(folder=folder, action="rotation.scheduled.fail")
        assert "outside the target scope" in event.details["error"]


def test_rotation_in_the_configurations_own_folder_is_audited_once(world):
    record = world.user("alice.admin")
    _run(_queued(record, world.config))
    assert AuditEvent.objects.filter(action="rotation.scheduled.ok").count() == 1


def test_foreign_gateway_application_sees_its_own_folders_only(world, personas):
    """A second application's gateway may not rotate Team's records even with its own keys."""
    other_app = Application.objects.create(name="Other App")
    other_gateway = Gateway.objects.create(name="gw-other", application=other_app)
    record = world.user("alice.admin")
    world.config.gateway = other_gateway
    world.config.save()
    with _no_aws():
        rotation = _run(_queued(record, world.config))
    assert rotation.status == Rotation.FAILED
    assert "“Other App”" in rotation.error


def test_a_batch_claim_checks_authority_once_per_configuration_and_folder(world):
    """The drain claims up to 20 rotations at once: their shared gateway, configuration and
    folder are checked once, not once per rotation (the check must not halve throughput)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from rotation.engine import rotations_claim_batch

    for n in range(12):
        _queued(world.user(f"svc-{n}"), world.config)
    with CaptureQueriesContext(connection) as queries:
        claimed = rotations_claim_batch(gateway_name=world.config.gateway.name, limit=20)
    assert len(claimed) == 12
    share_reads = [q for q in queries if "vault_applicationfolder" in q["sql"]]
    gateway_reads = [q for q in queries if 'FROM "vault_gateway"' in q["sql"]]
    assert len(share_reads) == 2  # the configuration's folder and the records' folder
    assert len(gateway_reads) == 1
