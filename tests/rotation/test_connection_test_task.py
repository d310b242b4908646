"""The gateway's side of Test connection (rotation.tasks.test_configuration): it checks its
authority before calling AWS, records the outcome and audits it, and ends with an outcome
whatever the endpoint does; nothing secret goes in or out of the task."""

from __future__ import annotations

from unittest import mock

import pytest
from django.test import override_settings
from django_q.conf import Conf
from django_q.models import Task

from rotation import connection, tasks
from rotation.models import ConnectionTest
from tests.conftest import make_configuration
from tests.emulator import ACCOUNT_ID
from tests.hostile import HtmlServer, SilentServer
from vault.models import ApplicationFolder, AuditEvent, Gateway

pytestmark = pytest.mark.django_db

QUICK = {"AWS_READ_TIMEOUT": 0.5, "AWS_CONNECT_TIMEOUT": 0.5, "AWS_MAX_ATTEMPTS": 1}


@pytest.fixture(autouse=True)
def enqueued():
    with mock.patch("rotation.dispatch.async_task") as async_task:
        yield async_task


def _request(personas, config) -> ConnectionTest:
    return connection.connection_test_request(config=config, requested_by=personas.editor)


def _run(test: ConnectionTest) -> ConnectionTest:
    assert tasks.test_configuration(test.pk) in ("succeeded", "failed")
    test.refresh_from_db()
    return test


def _tested_events():
    return AuditEvent.objects.filter(action="configuration.tested")


# --- outcomes -----------------------------------------------------------------------------------


def test_success_records_account_arn_and_policy(personas, world):
    world.emulator.iam().update_account_password_policy(MinimumPasswordLength=20)
    test = _run(_request(personas, world.config))
    assert test.status == ConnectionTest.SUCCEEDED
    assert test.account_id == ACCOUNT_ID
    assert test.arn.startswith("arn:aws:") and ACCOUNT_ID in test.arn
    assert test.policy == "minimum length 20"
    assert test.started_at and test.finished_at and test.message == ""


def test_success_is_audited_in_the_configurations_folder(personas, world):
    test = _run(_request(personas, world.config))
    [event] = _tested_events()
    assert event.folder == personas.folder
    assert (event.object_type, event.object_uid) == ("pamconfiguration", world.config.uid)
    assert event.actor == personas.editor
    assert event.details == {
        "test": test.uid,
        "gateway": "default",
        "outcome": "succeeded",
        "account_id": ACCOUNT_ID,
    }


def test_failure_records_and_audits_the_error(personas):
    config = make_configuration(personas.folder, personas.gateway, endpoint="http://127.0.0.1:9")
    test = _run(_request(personas, config))
    assert test.status == ConnectionTest.FAILED
    assert test.message.startswith("Could not connect to the endpoint http://127.0.0.1:9")
    assert (test.account_id, test.arn, test.policy) == ("", "", "")
    [event] = _tested_events()
    assert event.details["outcome"] == "failed"
    assert event.details["error"] == test.message


def test_nothing_secret_goes_in_or_out(
    personas, world, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        test = _request(personas, world.config)
    assert enqueued.call_args.args == ("rotation.tasks.test_configuration", test.pk)
    result = tasks.test_configuration(test.pk)
    assert result == "succeeded"
    test.refresh_from_db()
    event = _tested_events().get()
    assert "testing-secret" not in f"{result} {vars(test)} {event.details}"


# --- authority first ---------------------------------------------------------------------------


def test_authority_is_checked_before_aws(personas, world):
    with (
        mock.patch(
            "vault.access.configuration_problem", return_value="Not this gateway."
        ) as checked,
        mock.patch("rotation.aws.test_connection") as called,
    ):
        test = _run(_request(personas, world.config))
    checked.assert_called_once()
    config, gateway = checked.call_args.args
    assert (config, gateway) == (world.config, personas.gateway)
    called.assert_not_called()
    assert (test.status, test.message) == (ConnectionTest.FAILED, "Not this gateway.")
    assert _tested_events().get().details["error"] == "Not this gateway."


def test_folder_no_longer_shared_to_the_gateways_application_is_refused(personas, world):
    test = _request(personas, world.config)
    ApplicationFolder.objects.filter(folder=personas.folder).delete()
    with mock.patch("rotation.aws.test_connection") as called:
        test = _run(test)
    called.assert_not_called()
    assert test.status == ConnectionTest.FAILED
    assert "not shared" in test.message


def test_configuration_moved_to_another_gateway_is_refused(personas, world):
    test = _request(personas, world.config)
    other = Gateway.objects.create(name="other", application=personas.application)
    world.config.gateway = other
    world.config.save()
    with mock.patch("rotation.aws.test_connection") as called:
        test = _run(test)
    called.assert_not_called()
    assert test.status == ConnectionTest.FAILED


def test_deleted_gateway_is_refused(personas, world):
    test = _request(personas, world.config)
    ConnectionTest.objects.filter(pk=test.pk).update(gateway_name="gone")
    test = _run(test)
    assert (test.status, test.message) == (
        ConnectionTest.FAILED,
        "The gateway “gone” no longer exists.",
    )


# --- runs once, and always ends ------------------------------------------------------------------


def test_a_redelivered_task_does_not_run_twice(personas, world):
    test = _run(_request(personas, world.config))
    assert tasks.test_configuration(test.pk) == "skipped"
    assert _tested_events().count() == 1


def test_a_test_of_a_deleted_configuration_is_skipped(personas, world):
    test = _request(personas, world.config)
    world.config.delete()
    assert tasks.test_configuration(test.pk) == "skipped"


def test_an_endpoint_answering_html_ends_the_test_with_a_message(personas):
    with HtmlServer() as server:
        config = make_configuration(personas.folder, personas.gateway, endpoint=server.endpoint)
        test = _run(_request(personas, config))
    assert test.status == ConnectionTest.FAILED
    assert "not an AWS answer" in test.message


@override_settings(**QUICK)
def test_an_endpoint_that_never_answers_ends_the_test_with_a_message(personas):
    with SilentServer() as server:
        config = make_configuration(personas.folder, personas.gateway, endpoint=server.endpoint)
        test = _run(_request(personas, config))
    assert test.status == ConnectionTest.FAILED
    assert "did not answer sts:GetCallerIdentity within 0.5 s" in test.message


def test_an_endpoint_outside_the_allowlist_is_refused_and_nothing_is_sent(personas):
    with HtmlServer() as server:
        config = make_configuration(personas.folder, personas.gateway, endpoint=server.endpoint)
        with override_settings(AWS_ENDPOINT_ALLOWLIST=[]):
            test = _run(_request(personas, config))
        assert server.hits == 0
    assert "AWS_ENDPOINT_ALLOWLIST" in test.message


def test_an_unexpected_error_still_ends_the_test(personas, world):
    with mock.patch("rotation.aws.test_connection", side_effect=RuntimeError("bug")):
        test = _run(_request(personas, world.config))
    assert test.status == ConnectionTest.FAILED
    assert "RuntimeError" in test.message


# --- through django-q2 (sync mode: the task travels through a real worker) ---------------------


def test_through_django_q2_the_task_succeeds_and_records_the_answer(
    personas, world, enqueued, django_capture_on_commit_callbacks
):
    from django_q.tasks import async_task

    enqueued.side_effect = async_task
    with mock.patch.object(Conf, "SYNC", True):
        with django_capture_on_commit_callbacks(execute=True):
            test = _request(personas, world.config)
    test.refresh_from_db()
    assert test.status == ConnectionTest.SUCCEEDED
    task = Task.objects.get(name=f"test connection {test.uid}")
    assert task.success and task.result == "succeeded"


def test_through_django_q2_a_hostile_endpoint_never_crashes_the_task(
    personas, enqueued, django_capture_on_commit_callbacks
):
    from django_q.tasks import async_task

    enqueued.side_effect = async_task
    with HtmlServer() as server:
        config = make_configuration(personas.folder, personas.gateway, endpoint=server.endpoint)
        with mock.patch.object(Conf, "SYNC", True):
            with django_capture_on_commit_callbacks(execute=True):
                test = _request(personas, config)
    test.refresh_from_db()
    assert test.status == ConnectionTest.FAILED
    task = Task.objects.get(name=f"test connection {test.uid}")
    assert task.success and task.result == "failed"
