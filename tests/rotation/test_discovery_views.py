"""Discover IAM users on the pages: the button on a configuration, the discovery page (progress,
filters, the paginated table), its status poll, importing, and who may do each."""

from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from rotation import discovery_views, tasks
from rotation.models import DiscoveredUser, DiscoveryJob, RotationSettings
from tests.conftest import login, make_configuration, make_member, make_pam_user
from tests.emulator import ACCOUNT_ID
from tests.iam_paging import iam_paging
from vault.models import PamUser, SharedFolder

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def enqueued():
    with mock.patch("rotation.dispatch.async_task") as async_task:
        yield async_task


@pytest.fixture(autouse=True)
def quick():
    with iam_paging(), mock.patch("rotation.aws._sleep"):
        yield


def _start_url(config) -> str:
    return f"/configurations/{config.uid}/discover/"


def _job_url(config, job) -> str:
    return f"/configurations/{config.uid}/discovery/{job.uid}/"


def _job(world, names, **extra) -> DiscoveryJob:
    job = DiscoveryJob.objects.create(
        configuration=world.config, gateway_name="default", status=DiscoveryJob.SUCCEEDED
    )
    DiscoveredUser.objects.bulk_create(
        [
            DiscoveredUser(job=job, user_name=n, arn=f"arn:aws:iam::{ACCOUNT_ID}:user/{n}", **extra)
            for n in names
        ]
    )
    return job


# --- the button and starting ---------------------------------------------------------------------


def test_the_configuration_page_offers_discovery_to_editors_only(world, personas):
    page = login(personas.editor).get(f"/configurations/{world.config.uid}/").content.decode()
    assert "Discover IAM users" in page and _start_url(world.config) in page
    page = login(personas.viewer).get(f"/configurations/{world.config.uid}/").content.decode()
    assert "Discover IAM users" not in page


def test_the_button_is_hidden_without_the_discover_policy(world, personas, settings):
    settings.VAULT_ENFORCE_POLICIES = True
    page = login(personas.editor).get(f"/configurations/{world.config.uid}/").content.decode()
    assert "Discover IAM users" not in page


def test_discover_then_the_gateway_runs_it_and_the_page_lists_the_users(world, personas):
    world.emulator.create_user("alice")
    world.emulator.create_user("bob", password=None)
    client = login(personas.editor)
    response = client.post(_start_url(world.config))
    job = DiscoveryJob.objects.get()
    assert response.status_code == 302 and response["Location"] == _job_url(world.config, job)
    page = client.get(_job_url(world.config, job)).content.decode()
    assert 'data-active="1"' in page and "Queued" in page
    tasks.run_discovery(job.pk)
    status = client.get(_job_url(world.config, job) + "status/").json()
    assert status["status"] == "succeeded" and status["users_found"] == 2
    assert status["active"] is False
    page = client.get(_job_url(world.config, job)).content.decode()
    assert 'data-user="alice"' in page and 'data-user="bob"' in page
    assert f"arn:aws:iam::{ACCOUNT_ID}:user/alice" in page
    assert "Import selected" in page
    filtered = client.get(_job_url(world.config, job), {"console": "no"}).content.decode()
    assert 'data-user="bob"' in filtered and 'data-user="alice"' not in filtered


def test_a_second_press_while_one_runs_says_so_and_shows_it(world, personas):
    client = login(personas.editor)
    client.post(_start_url(world.config))
    response = client.post(_start_url(world.config), follow=True)
    job = DiscoveryJob.objects.get()
    assert response.redirect_chain[-1][0] == _job_url(world.config, job)
    assert "already queued" in response.content.decode()


def test_start_answers_json(world, personas):
    response = login(personas.editor).post(_start_url(world.config), HTTP_ACCEPT="application/json")
    data = response.json()
    assert data["ok"] and data["status"] == "queued" and data["users_found"] == 0


@pytest.mark.parametrize("who, code", [("viewer", 403), ("outsider", 404), ("manager", 403)])
def test_start_refuses_personas(world, personas, who, code):
    response = login(getattr(personas, who)).post(_start_url(world.config))
    assert response.status_code == code
    assert not DiscoveryJob.objects.exists()


def test_start_refuses_anonymous(world):
    response = Client().post(_start_url(world.config))
    assert response.status_code == 302 and "login" in response["Location"]
    assert not DiscoveryJob.objects.exists()


def test_start_refuses_without_the_policy(world, personas, settings):
    settings.VAULT_ENFORCE_POLICIES = True
    assert login(personas.editor).post(_start_url(world.config)).status_code == 403
    personas.editor.user_permissions.add(
        Permission.objects.get(codename="discover", content_type__app_label="vault")
    )
    assert login(personas.editor).post(_start_url(world.config)).status_code == 302
    assert DiscoveryJob.objects.count() == 1


def test_post_views_reject_get(world, personas):
    job = _job(world, ["alice"])
    client = login(personas.editor)
    assert client.get(_start_url(world.config)).status_code == 405
    assert client.get(_job_url(world.config, job) + "import/").status_code == 405
    assert client.post(_job_url(world.config, job) + "status/").status_code == 405
    assert client.post(_job_url(world.config, job)).status_code == 405
    assert not PamUser.objects.exists() and DiscoveryJob.objects.count() == 1


@pytest.mark.parametrize("who, code", [("viewer", 403), ("outsider", 404)])
def test_the_discovery_page_and_status_are_for_those_who_may_discover(world, personas, who, code):
    job = _job(world, ["alice"])
    client = login(getattr(personas, who))
    assert client.get(_job_url(world.config, job)).status_code == code
    assert client.get(_job_url(world.config, job) + "status/").status_code == code
    assert client.get(f"/configurations/{world.config.uid}/discovery/").status_code == code


def test_a_job_of_another_configuration_is_not_found(world, personas):
    job = _job(world, ["alice"])
    other = make_configuration(personas.folder, personas.gateway, title="Other")
    client = login(personas.editor)
    assert client.get(_job_url(other, job)).status_code == 404
    assert client.get(f"/configurations/{other.uid}/discovery/nope/").status_code == 404


def test_the_latest_discovery_link(world, personas):
    client = login(personas.editor)
    page = client.get(f"/configurations/{world.config.uid}/discovery/")
    assert page.status_code == 200 and "has not discovered" in page.content.decode()
    job = _job(world, ["alice"])
    response = client.get(f"/configurations/{world.config.uid}/discovery/")
    assert response["Location"] == _job_url(world.config, job)


def test_bad_filters_say_so_and_list_nothing(world, personas):
    job = _job(world, ["alice"])
    page = login(personas.editor).get(_job_url(world.config, job), {"key_older_than_days": "soon"})
    assert page.status_code == 200
    assert "The filter has errors" in page.content.decode()


def test_the_table_pages_and_shows_keys_and_vault_records(world, personas):
    old = timezone.now() - timedelta(days=100)
    job = _job(world, [f"svc-{i:03d}" for i in range(120)])
    record = make_pam_user(personas.folder, "svc-000")
    DiscoveredUser.objects.filter(job=job, user_name="svc-000").update(
        record=record,
        console_access=True,
        access_keys=[{"status": "Active", "created": old.isoformat(), "last_used": None}],
    )
    client = login(personas.editor)
    first = client.get(_job_url(world.config, job)).content.decode()
    assert first.count('name="user"') == discovery_views.USERS_PER_PAGE - 1  # svc-000 is held
    assert "Active, 100 days old, never used" in first
    assert f'href="/records/{record.uid}/"' in first
    third = client.get(_job_url(world.config, job), {"page": 3}).content.decode()
    assert 'data-user="svc-119"' in third and 'data-user="svc-000"' not in third


# --- import ----------------------------------------------------------------------------------------


def _import_url(world, job) -> str:
    return _job_url(world.config, job) + "import/"


def test_import_selected(world, personas):
    job = _job(world, ["alice", "bob", "carol"])
    response = login(personas.editor).post(
        _import_url(world, job),
        {"folder": personas.folder.uid, "mode": "selected", "user": ["alice", "carol"]},
        follow=True,
    )
    assert "Imported 2 IAM users into “Team”" in response.content.decode()
    assert sorted(PamUser.objects.values_list("login", flat=True)) == ["alice", "carol"]
    assert RotationSettings.objects.count() == 2


def test_import_counts_records_in_folders_one_cannot_see(world, personas):
    make_pam_user(SharedFolder.objects.create(name="Not yours"), "alice")
    job = _job(world, ["alice", "bob"])
    response = login(personas.editor).post(
        _import_url(world, job),
        {"folder": personas.folder.uid, "mode": "selected", "user": ["alice", "bob"]},
        follow=True,
    )
    page = response.content.decode()
    assert "Imported 1 IAM user into “Team”" in page
    assert "1 already had a record in the vault and were left as is (1 of them in folders" in page


def test_import_all_matching_uses_the_filters(world, personas):
    job = _job(world, ["alice", "bob"])
    DiscoveredUser.objects.filter(user_name="alice").update(console_access=True)
    login(personas.editor).post(
        _import_url(world, job), {"folder": personas.folder.uid, "mode": "all", "console": "yes"}
    )
    assert list(PamUser.objects.values_list("login", flat=True)) == ["alice"]


def test_import_problems_are_said_and_change_nothing(world, personas):
    job = _job(world, ["alice"])
    client = login(personas.editor)
    for data, words in (
        ({"mode": "selected", "user": ["alice"]}, "Choose the folder"),
        ({"folder": personas.folder.uid, "mode": "selected"}, "Check at least one user"),
        ({"folder": personas.folder.uid, "mode": "other"}, "Choose Import selected"),
        ({"folder": personas.folder.uid, "mode": "selected", "user": ["zed"]}, "Not found"),
        ({"folder": personas.folder.uid, "mode": "all", "key_older_than_days": "x"}, "filters"),
    ):
        page = client.post(_import_url(world, job), data, follow=True).content.decode()
        assert words in page, words
    assert not PamUser.objects.exists()


@pytest.mark.parametrize("who, code", [("viewer", 403), ("outsider", 404), ("manager", 403)])
def test_import_refuses_personas(world, personas, who, code):
    job = _job(world, ["alice"])
    response = login(getattr(personas, who)).post(
        _import_url(world, job),
        {"folder": personas.folder.uid, "mode": "selected", "user": ["alice"]},
    )
    assert response.status_code == code
    assert not PamUser.objects.exists()


def test_import_into_a_folder_without_add_records_is_refused(world, personas):
    elsewhere = SharedFolder.objects.create(name="Read only")
    make_member(elsewhere, personas.editor, can_edit=True)
    job = _job(world, ["alice"])
    response = login(personas.editor).post(
        _import_url(world, job), {"folder": elsewhere.uid, "mode": "selected", "user": ["alice"]}
    )
    assert response.status_code == 403
    assert not PamUser.objects.exists()


def test_the_folder_choice_lists_only_folders_one_may_import_into(world, personas):
    SharedFolder.objects.create(name="Not mine")
    job = _job(world, ["alice"])
    page = login(personas.editor).get(_job_url(world.config, job)).content.decode()
    options = re.findall(r'<option value="([^"]+)"', page.split('id="import-folder"')[1])
    assert options == [personas.folder.uid]


def test_the_page_costs_the_same_queries_at_any_size(
    world, personas, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(personas.editor)
    small = _job(world, ["alice"])
    with CaptureQueriesContext(connection) as few:
        client.get(_job_url(world.config, small))
    DiscoveryJob.objects.filter(pk=small.pk).update(status=DiscoveryJob.FAILED)
    big = _job(world, [f"svc-{i:04d}" for i in range(600)])
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(_job_url(world.config, big), {"page": 7, "path_prefix": "/"})
    assert response.status_code == 200 and 'data-user="svc-0300"' in response.content.decode()
