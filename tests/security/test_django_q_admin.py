"""django-q2 in the admin console (issue 9, finding 3): even a verified superuser gets read-only
lists. No page adds, edits or shows a Schedule or a task, none shows a task's arguments or
result, no action resubmits a task; deleting a Schedule is the one change, and it is audited."""

from __future__ import annotations

import pytest
from django.utils import timezone
from django_q.models import OrmQ, Schedule, Task

from tests.conftest import login_verified
from vault.models import AuditEvent

pytestmark = pytest.mark.django_db

REFUSED = {403, 404, 405}
# What must never reach a page: a task's arguments and what it returned.
ARG = "arg-canary-7f3a"
KWARG = "kwarg-canary-91c2"
RESULT = "VAULT_ENCRYPTION_KEYS=result-canary-c0de"


@pytest.fixture
def admin_client(personas):
    return login_verified(personas.superuser)  # the admin console needs two-factor sign-in


@pytest.fixture
def tick(db) -> Schedule:
    return Schedule.objects.create(
        name="gateway-tick:default",
        func="rotation.tasks.gateway_tick",
        args="'default'",
        schedule_type=Schedule.MINUTES,
        minutes=1,
        repeats=-1,
        cluster="default",
    )


def make_task(success: bool) -> Task:
    now = timezone.now()
    return Task.objects.create(
        id=f"task-{int(success)}",
        name=f"rotate {'ok' if success else 'failed'}",
        func="rotation.tasks.run_rotation",
        args=(ARG,),
        kwargs={"k": KWARG},
        result=RESULT,
        group="rotation",
        cluster="default",
        started=now,
        stopped=now,
        success=success,
    )


def assert_refused(response) -> None:
    assert response.status_code in REFUSED or (
        response.status_code == 302 and "/change/" not in response["Location"]
    ), f"{response.status_code} {response.get('Location', '')}"


def test_schedule_add_page_is_refused_to_the_verified_superuser(admin_client):
    assert_refused(admin_client.get("/admin/django_q/schedule/add/"))


def test_schedule_add_post_creates_nothing_for_the_verified_superuser(admin_client):
    response = admin_client.post(
        "/admin/django_q/schedule/add/",
        {
            "name": "env",
            "func": "subprocess.getoutput",
            "args": "'env'",
            "schedule_type": "O",
            "repeats": "-1",
            "next_run_0": "2020-01-01",
            "next_run_1": "00:00:00",
            "cluster": "default",
        },
    )
    assert_refused(response)
    assert not Schedule.objects.exists()


def test_schedule_change_page_is_refused_to_the_verified_superuser(admin_client, tick):
    assert_refused(admin_client.get(f"/admin/django_q/schedule/{tick.pk}/change/"))


def test_schedule_change_post_changes_nothing_for_the_verified_superuser(admin_client, tick):
    response = admin_client.post(
        f"/admin/django_q/schedule/{tick.pk}/change/",
        {"name": tick.name, "func": "subprocess.getoutput", "args": "'env'"},
    )
    assert_refused(response)
    tick.refresh_from_db()
    assert tick.func == "rotation.tasks.gateway_tick"


@pytest.mark.parametrize("model", ["success", "failure"])
def test_task_detail_page_is_refused_to_the_verified_superuser(admin_client, model):
    task = make_task(success=model == "success")
    response = admin_client.get(f"/admin/django_q/{model}/{task.pk}/change/")
    assert_refused(response)
    assert RESULT.encode() not in response.content


def test_queued_task_detail_page_is_refused_to_the_verified_superuser(admin_client):
    queued = OrmQ.objects.create(key="default", payload="not-a-signed-package")
    assert_refused(admin_client.get(f"/admin/django_q/ormq/{queued.pk}/change/"))


@pytest.mark.parametrize("model", ["success", "failure"])
def test_task_list_shows_function_and_cluster_but_no_arguments_or_result(admin_client, model):
    make_task(success=model == "success")
    response = admin_client.get(f"/admin/django_q/{model}/")
    assert response.status_code == 200
    assert b"rotation.tasks.run_rotation" in response.content
    for canary in (ARG, KWARG, RESULT, "result-canary"):
        assert canary.encode() not in response.content


def test_task_list_refuses_a_filter_on_the_result(admin_client):
    make_task(success=False)
    response = admin_client.get("/admin/django_q/failure/", {"result__contains": "x"})
    assert response.status_code == 400


def test_superuser_cannot_resubmit_a_task_from_the_admin(admin_client):
    task = make_task(success=False)
    admin_client.post(
        "/admin/django_q/failure/",
        {"action": "resubmit_task", "_selected_action": [task.pk], "index": "0"},
    )
    assert not OrmQ.objects.exists()
    assert Task.objects.filter(pk=task.pk).exists()


def test_schedule_delete_asks_for_confirmation_first(admin_client, tick):
    response = admin_client.post(
        "/admin/django_q/schedule/",
        {"action": "delete_selected", "_selected_action": [tick.pk]},
    )
    assert response.status_code == 200
    assert b"rotation.tasks.gateway_tick" in response.content
    assert Schedule.objects.filter(pk=tick.pk).exists()


def test_superuser_deletes_a_schedule_from_the_list_and_it_is_audited(admin_client, personas, tick):
    response = admin_client.post(
        "/admin/django_q/schedule/",
        {"action": "delete_selected", "_selected_action": [tick.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Schedule.objects.exists()
    event = AuditEvent.objects.get(action="gateway.schedule_deleted")
    assert event.actor == personas.superuser
    assert event.details["func"] == "rotation.tasks.gateway_tick"
