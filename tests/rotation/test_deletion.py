"""Deleting records, folders and configurations never destroys a password that may be live."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db.models import ProtectedError

from rotation import aws, engine
from rotation.models import Rotation
from tests.conftest import login
from vault.models import PamConfiguration, PamUser, SharedFolder

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue():
    with mock.patch("rotation.dispatch.async_task"):
        yield


def _possibly_live(record) -> Rotation:
    rotation = engine.rotation_request(record=record, trigger="on_demand")
    Rotation.objects.filter(pk=rotation.pk).update(pending_may_be_live=True)
    with mock.patch("rotation.aws.set_console_password", side_effect=aws.AwsRefused("no", "x")):
        engine.rotation_run(rotation_id=rotation.pk)
    rotation.refresh_from_db()
    assert rotation.holds_possibly_live_password
    return rotation


def test_a_record_with_an_active_rotation_is_not_deleted(world, personas):
    record = world.user()
    engine.rotation_request(record=record, trigger="on_demand")
    response = login(personas.editor).post(f"/records/{record.uid}/delete/", follow=True)
    assert PamUser.objects.filter(pk=record.pk).exists()
    assert "in progress" in response.content.decode()


def test_a_record_holding_a_possibly_live_password_is_not_deleted(world, personas):
    record = world.user()
    _possibly_live(record)
    login(personas.editor).post(f"/records/{record.uid}/delete/")
    assert PamUser.objects.filter(pk=record.pk).exists()


def test_a_record_whose_rotations_are_settled_is_deleted(world, personas):
    record = world.user()
    engine.rotation_run(rotation_id=engine.rotation_request(record=record, trigger="cli").pk)
    login(personas.editor).post(f"/records/{record.uid}/delete/")
    assert not PamUser.objects.filter(pk=record.pk).exists()


def test_a_folder_holding_a_possibly_live_password_is_not_deleted(world, personas):
    _possibly_live(world.user())
    with pytest.raises(ProtectedError):
        SharedFolder.objects.get(pk=personas.folder.pk).delete()
    assert Rotation.objects.exists()


def test_a_used_configuration_can_be_deleted_and_its_rotation_history_stays(world, personas):
    record = world.user()
    rotation = engine.rotation_request(record=record, trigger="cli")
    engine.rotation_run(rotation_id=rotation.pk)
    record.rotation_settings.delete()
    login(personas.editor).post(f"/configurations/{world.config.uid}/delete/")
    assert not PamConfiguration.objects.filter(pk=world.config.pk).exists()
    rotation.refresh_from_db()
    assert rotation.configuration is None and rotation.status == Rotation.SUCCEEDED


def test_a_configuration_with_an_active_rotation_is_not_deleted(world, personas):
    record = world.user()
    engine.rotation_request(record=record, trigger="cli")
    record.rotation_settings.delete()
    response = login(personas.editor).post(
        f"/configurations/{world.config.uid}/delete/", follow=True
    )
    assert PamConfiguration.objects.filter(pk=world.config.pk).exists()
    assert "in progress" in response.content.decode()
