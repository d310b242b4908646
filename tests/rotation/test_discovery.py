"""Discover IAM users (rotation/discovery.py, the Discovery section of rotation/aws.py), against
the AWS emulator: ListUsers pages and the credential report, resuming after a killed worker,
target scope, throttling and 5xx, who may start one, and importing (one transaction, a bounded
number of queries, never a duplicate)."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rotation import aws, discovery, tasks
from rotation.models import DiscoveredUser, DiscoveryJob, RotationSettings
from tests.conftest import make_configuration, make_member, make_pam_user
from tests.emulator import ACCOUNT_ID
from tests.faultproxy import FaultProxy
from tests.iam_paging import iam_paging
from vault.models import ApplicationFolder, AuditEvent, PamUser, SharedFolder

pytestmark = pytest.mark.django_db

QUICK = {"AWS_READ_TIMEOUT": 2, "AWS_CONNECT_TIMEOUT": 1, "AWS_MAX_ATTEMPTS": 1}


@pytest.fixture(autouse=True)
def enqueued():
    """Nothing goes to django-q2; tests run the gateway's task themselves."""
    with mock.patch("rotation.dispatch.async_task") as async_task:
        yield async_task


@pytest.fixture(autouse=True)
def paged():
    with iam_paging():
        yield


@pytest.fixture(autouse=True)
def no_report_wait():
    with mock.patch("rotation.aws._sleep"):
        yield


def seed(emulator, names, path="/", console=(), keys=()):
    iam = emulator.iam()
    for name in names:
        iam.create_user(UserName=name, Path=path)
        if name in console:
            iam.create_login_profile(UserName=name, Password="Initial-Passw0rd!")
        if name in keys:
            iam.create_access_key(UserName=name)


def start(world, actor=None) -> DiscoveryJob:
    return discovery.discovery_start(
        configuration=world.config, actor=actor or world.personas.editor
    )


def run(job) -> DiscoveryJob:
    tasks.run_discovery(job.pk)
    job.refresh_from_db()
    return job


# --- aws.py --------------------------------------------------------------------------------------


def test_list_users_pages_with_max_items_and_marker(world):
    seed(world.emulator, [f"u{i}" for i in range(5)])
    count = aws.CallCount()
    first = aws.list_users_page(world.config, count=count, max_items=2)
    assert [u["user_name"] for u in first.users] == ["u0", "u1"]
    assert first.next_marker
    second = aws.list_users_page(world.config, count=count, max_items=2, marker=first.next_marker)
    assert [u["user_name"] for u in second.users] == ["u2", "u3"]
    last = aws.list_users_page(world.config, count=count, max_items=2, marker=second.next_marker)
    assert [u["user_name"] for u in last.users] == ["u4"] and last.next_marker == ""
    assert count.n == 3
    assert first.users[0]["arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/u0"


def test_list_users_sends_the_path_prefix(world):
    seed(world.emulator, ["a"], path="/team/")
    seed(world.emulator, ["b"])
    page = aws.list_users_page(world.config, count=aws.CallCount(), path_prefix="/team/")
    assert [(u["user_name"], u["path"]) for u in page.users] == [("a", "/team/")]


REPORT = (
    "user,arn,user_creation_time,password_enabled,password_last_used,access_key_1_active,"
    "access_key_1_last_rotated,access_key_1_last_used_date,access_key_2_active,"
    "access_key_2_last_rotated,access_key_2_last_used_date\n"
    "<root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,"
    "2024-01-01T00:00:00+00:00,true,2020-01-01T00:00:00+00:00,N/A,false,N/A,N/A\n"
    "alice,arn:aws:iam::123456789012:user/alice,2020-01-01T00:00:00+00:00,true,"
    "2024-05-01T10:00:00+00:00,true,2021-02-03T04:05:06+00:00,2024-06-01T00:00:00+00:00,"
    "false,2022-01-01T00:00:00+00:00,N/A\n"
    "bob,arn:aws:iam::123456789012:user/bob,2020-01-01T00:00:00+00:00,false,N/A,false,N/A,N/A,"
    "false,N/A,N/A\n"
    "carol,arn:aws:iam::123456789012:user/carol,2020-01-01T00:00:00+00:00,true,no_information,"
    "false,N/A,N/A,false,N/A,N/A\n"
)


def test_credential_report_parsing():
    rows = aws.parse_credential_report(REPORT)
    assert set(rows) == {"alice", "bob", "carol"}  # never the root account
    alice = rows["alice"]
    assert alice.console_access is True
    assert alice.password_last_used.isoformat() == "2024-05-01T10:00:00+00:00"
    assert alice.access_keys == [
        {
            "status": "Active",
            "created": "2021-02-03T04:05:06+00:00",
            "last_used": "2024-06-01T00:00:00+00:00",
        },
        {"status": "Inactive", "created": "2022-01-01T00:00:00+00:00", "last_used": None},
    ]
    assert rows["bob"].console_access is False and rows["bob"].access_keys == []
    assert rows["carol"].console_access is True and rows["carol"].password_last_used is None


def test_a_report_without_the_console_columns_says_unknown():
    rows = aws.parse_credential_report("user,arn\ndave,arn:aws:iam::123456789012:user/dave\n")
    assert rows["dave"].console_access is None and rows["dave"].access_keys == []


def test_credential_report_from_the_emulator(world):
    seed(world.emulator, ["alice", "bob"], console={"alice"}, keys={"alice"})
    count = aws.CallCount()
    rows = aws.credential_report(world.config, count=count)
    assert rows["alice"].console_access is True
    assert [k["status"] for k in rows["alice"].access_keys] == ["Active"]
    assert rows["bob"].console_access is False and rows["bob"].access_keys == []
    # moto answers STARTED to the first GenerateCredentialReport, COMPLETE to the second.
    assert count.n == 3


def test_a_report_aws_never_finishes_is_transient(world):
    with mock.patch("rotation.aws._counted_call", return_value={"State": "STARTED"}):
        with pytest.raises(aws.AwsTransient) as exc:
            aws.credential_report(world.config, count=aws.CallCount())
    assert exc.value.code == "ReportInProgress"


# --- the gateway's task --------------------------------------------------------------------------


def test_discovery_lists_every_page_and_reads_the_report(world, monkeypatch):
    monkeypatch.setattr(discovery, "PAGE_SIZE", 2)
    seed(world.emulator, ["alice", "bob", "carol", "dave", "erin"], console={"alice"})
    world.emulator.iam().create_access_key(UserName="bob")
    job = run(start(world))
    assert job.status == DiscoveryJob.SUCCEEDED, job.error
    assert (job.users_found, job.pages_done, job.next_marker, job.error) == (5, 3, "", "")
    # 2 GenerateCredentialReport (moto: STARTED then COMPLETE), 1 GetCredentialReport, 3 ListUsers
    assert job.aws_calls == 6
    users = {u.user_name: u for u in DiscoveredUser.objects.filter(job=job)}
    assert set(users) == {"alice", "bob", "carol", "dave", "erin"}
    assert users["alice"].console_access is True and users["carol"].console_access is False
    assert users["bob"].access_keys[0]["status"] == "Active"
    assert users["bob"].oldest_key_created is not None
    assert users["alice"].arn == f"arn:aws:iam::{ACCOUNT_ID}:user/alice"
    [event] = AuditEvent.objects.filter(action="discovery.finished")
    assert event.details["outcome"] == "succeeded" and event.details["users_found"] == 5
    assert event.folder == world.personas.folder


def test_users_the_vault_holds_are_marked(world, personas):
    seed(world.emulator, ["alice", "bob"])
    record = make_pam_user(personas.folder, "alice")
    # Same login, another account: not the same IAM user.
    make_pam_user(
        personas.folder,
        "bob",
        title="other bob",
        distinguished_name="arn:aws:iam::999999999999:user/bob",
    )
    job = run(start(world))
    users = {u.user_name: u.record_id for u in DiscoveredUser.objects.filter(job=job)}
    assert users == {"alice": record.pk, "bob": None}


class _Killed(BaseException):
    """The worker process dies (SIGKILL): nothing in the task catches it."""


def test_a_killed_discovery_resumes_at_the_saved_marker(
    world, monkeypatch, enqueued, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(discovery, "PAGE_SIZE", 2)
    names = [f"user{i:02d}" for i in range(7)]
    seed(world.emulator, names)
    real = aws.list_users_page
    markers = []

    def dies_on_the_third_page(config, **kw):
        markers.append(kw.get("marker"))
        if len(markers) == 3:
            raise _Killed
        return real(config, **kw)

    job = start(world)
    with mock.patch("rotation.aws.list_users_page", side_effect=dies_on_the_third_page):
        with pytest.raises(_Killed):
            tasks.run_discovery(job.pk)
    job.refresh_from_db()
    assert job.status == DiscoveryJob.RUNNING
    assert (job.pages_done, job.users_found) == (2, 4)
    saved = job.next_marker
    assert saved
    # Another worker may not take it while the lease stands.
    assert tasks.run_discovery(job.pk) == "skipped"
    # The gateway's tick after the lease ran out re-queues it and hands it over again.
    after_lease = job.lease_expires_at + timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert discovery.discovery_recover(gateway_name="default", now=after_lease) == 1
    assert enqueued.call_args.args[:2] == ("rotation.tasks.run_discovery", job.pk)
    assert enqueued.call_args.kwargs["cluster"] == "default"
    markers.clear()
    with mock.patch("rotation.aws.list_users_page", side_effect=dies_on_the_third_page):
        job = run(job)
    assert markers[0] == saved  # resumed where the killed worker's last page ended
    assert job.status == DiscoveryJob.SUCCEEDED
    assert (
        sorted(DiscoveredUser.objects.filter(job=job).values_list("user_name", flat=True)) == names
    )
    assert (job.users_found, job.pages_done) == (7, 4)


def test_users_outside_the_target_scope_are_not_listed(personas, emulator):
    config = make_configuration(
        personas.folder,
        personas.gateway,
        endpoint=emulator.endpoint,
        scope_path_prefix="/apps/",
        scope_user_pattern="svc-*",
    )
    seed(emulator, ["svc-a", "human"], path="/apps/")
    seed(emulator, ["svc-b"], path="/people/")
    job = discovery.discovery_start(configuration=config, actor=personas.editor)
    job = run(job)
    assert job.status == DiscoveryJob.SUCCEEDED
    assert list(DiscoveredUser.objects.filter(job=job).values_list("user_name", flat=True)) == [
        "svc-a"
    ]
    assert job.users_found == 1


@pytest.fixture
def proxy(emulator):
    with FaultProxy(upstream=emulator.endpoint) as p:
        yield p


@pytest.fixture
def proxied(personas, proxy):
    return make_configuration(personas.folder, personas.gateway, endpoint=proxy.endpoint)


@pytest.mark.parametrize("fault", ["throttle", "503"], ids=["throttling", "server-failure"])
def test_transient_answers_hand_the_job_back_to_resume_later(
    personas, emulator, proxy, proxied, settings, fault
):
    for name, value in QUICK.items():
        setattr(settings, name, value)
    seed(emulator, ["alice"])
    if fault == "throttle":
        proxy.throttle(times=1, match="Action=ListUsers")
    else:
        proxy.status(503, times=1, match="Action=ListUsers")
    job = discovery.discovery_start(configuration=proxied, actor=personas.editor)
    assert tasks.run_discovery(job.pk) == "waiting"
    job.refresh_from_db()
    assert job.status == DiscoveryJob.RUNNING
    assert job.error.startswith("Waiting to resume: ")
    assert ("throttled" in job.error) == (fault == "throttle")
    assert job.aws_calls == 4  # the credential report's 3 calls, then the refused ListUsers
    left = (job.lease_expires_at - timezone.now()).total_seconds()
    assert 0 < left <= discovery.DISCOVERY_RESUME_SECONDS
    assert discovery.discovery_recover(now=timezone.now()) == 0  # not before the resume time
    assert discovery.discovery_recover(now=job.lease_expires_at + timedelta(seconds=1)) == 1
    job = run(job)
    assert job.status == DiscoveryJob.SUCCEEDED and job.users_found == 1 and job.error == ""


DENIED = (
    "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: x is "
    "not authorized to perform: iam:SomeAction on resource: *</Message></Error>"
    "<RequestId>1</RequestId></ErrorResponse>"
)


def test_access_denied_fails_with_the_missing_permission(personas, emulator, proxy, proxied):
    proxy.status(403, body=DENIED.replace("SomeAction", "ListUsers"), match="Action=ListUsers")
    job = run(discovery.discovery_start(configuration=proxied, actor=personas.editor))
    assert job.status == DiscoveryJob.FAILED
    assert "iam:ListUsers" in job.error and "Grant" in job.error
    [event] = AuditEvent.objects.filter(action="discovery.finished")
    assert event.details["outcome"] == "failed"


def test_a_refused_credential_report_still_lists_the_users(personas, emulator, proxy, proxied):
    seed(emulator, ["alice"])
    proxy.status(403, body=DENIED, times=1, match="Action=GenerateCredentialReport")
    job = run(discovery.discovery_start(configuration=proxied, actor=personas.editor))
    assert job.status == DiscoveryJob.SUCCEEDED
    assert "console access and access keys are unknown" in job.error
    [user] = DiscoveredUser.objects.filter(job=job)
    assert user.console_access is None


def test_a_discovery_past_its_time_fails_on_recovery(world):
    job = start(world)
    DiscoveryJob.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - timedelta(seconds=discovery.DISCOVERY_MAX_SECONDS + 1),
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert discovery.discovery_recover() == 0
    job.refresh_from_db()
    assert job.status == DiscoveryJob.FAILED and "did not finish within" in job.error


def test_the_gateway_checks_its_authority_before_calling_aws(world, personas):
    job = start(world)
    ApplicationFolder.objects.filter(application=personas.application).delete()
    job = run(job)
    assert job.status == DiscoveryJob.FAILED
    assert "is not shared to the application" in job.error
    assert job.aws_calls == 0


# --- starting: who may, one at a time --------------------------------------------------------------


def test_start_hands_the_job_to_the_configurations_gateway(
    world, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = start(world)
    assert job.status == DiscoveryJob.QUEUED and job.gateway_name == "default"
    enqueued.assert_called_once()
    assert enqueued.call_args.args == ("rotation.tasks.run_discovery", job.pk)
    assert enqueued.call_args.kwargs["cluster"] == "default"
    [event] = AuditEvent.objects.filter(action="discovery.started")
    assert event.actor == world.personas.editor and event.details["job"] == job.uid


def test_a_second_discovery_is_refused_while_one_is_active(world):
    first = start(world)
    with pytest.raises(discovery.DiscoveryError) as exc:
        start(world)
    assert first.uid in exc.value.message and "already queued" in exc.value.message
    assert DiscoveryJob.objects.count() == 1


@pytest.mark.parametrize("who", ["viewer", "outsider", "manager"])
def test_people_who_may_not_use_the_configuration_are_refused(world, personas, who):
    with pytest.raises(PermissionDenied):
        start(world, actor=getattr(personas, who))
    assert not DiscoveryJob.objects.exists()


def test_the_discover_policy_is_enforced(world, personas, settings):
    settings.VAULT_ENFORCE_POLICIES = True
    with pytest.raises(PermissionDenied, match="discover"):
        start(world)
    personas.editor.user_permissions.add(
        Permission.objects.get(codename="discover", content_type__app_label="vault")
    )
    personas.editor = type(personas.editor).objects.get(pk=personas.editor.pk)
    assert start(world, actor=personas.editor).status == DiscoveryJob.QUEUED


# --- filters ----------------------------------------------------------------------------------------


def _job_with_users(world, rows) -> DiscoveryJob:
    job = DiscoveryJob.objects.create(
        configuration=world.config, gateway_name="default", status=DiscoveryJob.SUCCEEDED
    )
    DiscoveredUser.objects.bulk_create(
        [
            DiscoveredUser(
                job=job,
                user_name=name,
                arn=f"arn:aws:iam::{ACCOUNT_ID}:user{path}{name}",
                path=path,
                **extra,
            )
            for name, path, extra in rows
        ]
    )
    return job


def test_filters(world, personas):
    old = timezone.now() - timedelta(days=200)
    record = make_pam_user(personas.folder, "inside")
    job = _job_with_users(
        world,
        [
            ("alice", "/team/", {"console_access": True, "oldest_key_created": old}),
            ("bob", "/", {"console_access": False, "oldest_key_created": timezone.now()}),
            ("inside", "/", {"console_access": True, "record": record}),
        ],
    )

    def names(**kw):
        rows = discovery.discovered_users(job, discovery.UserFilter(**kw))
        return list(rows.values_list("user_name", flat=True))

    assert names() == ["alice", "bob", "inside"]
    assert names(path_prefix="/team/") == ["alice"]
    assert names(console=True) == ["alice", "inside"]
    assert names(console=False) == ["bob"]
    assert names(key_older_than_days=90) == ["alice"]
    assert names(not_in_vault=True) == ["alice", "bob"]
    assert names(name="LI") == ["alice"]


# --- import ------------------------------------------------------------------------------------------


def _names(n: int) -> list[str]:
    return [f"svc-{i:04d}" for i in range(n)]


def _import(job, folder, actor, **kw):
    return discovery.discovery_import(job=job, folder=folder, actor=actor, **kw)


def test_import_creates_records_with_the_configurations_rotation(world, personas):
    world.config.default_rotation_schedule = {
        "type": "DAILY",
        "utcTime": "03:00",
        "intervalCount": 1,
    }
    world.config.save()
    job = _job_with_users(world, [(n, "/", {}) for n in ("alice", "bob", "carol")])
    outcome = _import(job, personas.folder, personas.editor, user_names=["alice", "bob"])
    assert sorted(outcome.users) == ["alice", "bob"] and outcome.created == ["alice", "bob"]
    record = PamUser.objects.get(uid=outcome.users["alice"])
    assert (record.title, record.login, record.folder) == (
        "AWS user: alice",
        "alice",
        personas.folder,
    )
    assert record.distinguished_name == f"arn:aws:iam::{ACCOUNT_ID}:user/alice"
    assert not record.has_secret("password")
    rs = RotationSettings.objects.get(pam_user=record)
    assert rs.configuration == world.config and rs.use_configuration_schedule and rs.enabled
    assert rs.method == "iam_user" and rs.next_run_at is not None
    assert DiscoveredUser.objects.get(job=job, user_name="alice").record == record
    assert DiscoveredUser.objects.get(job=job, user_name="carol").record is None
    assert AuditEvent.objects.filter(action="record.created", object_uid=record.uid).count() == 1
    assert AuditEvent.objects.filter(action="rotation_settings.created").count() == 2
    [summary] = AuditEvent.objects.filter(action="discovery.imported")
    assert summary.actor == personas.editor and summary.details["created"] == 2
    assert summary.details["records"] == outcome.users


def test_import_is_one_transaction_with_a_bounded_number_of_queries(world, personas):
    small = _job_with_users(world, [(n, "/", {}) for n in _names(20)])
    with CaptureQueriesContext(connection) as few:
        _import(small, personas.folder, personas.editor, user_names=None)
    big_config = make_configuration(personas.folder, personas.gateway, title="Second")
    world.config = big_config
    big = _job_with_users(world, [(f"big-{n}", "/", {}) for n in _names(400)])
    with CaptureQueriesContext(connection) as many:
        outcome = _import(big, personas.folder, personas.editor, user_names=None)
    assert len(outcome.created) == 400
    # Bulk inserts and batched IN lists: never a query per user. (SQLite caps a statement at
    # 999 parameters, so its bulk inserts come in batches of a few dozen rows.)
    assert len(many.captured_queries) <= len(few.captured_queries) + 400 // 20, [
        q["sql"][:80] for q in many.captured_queries
    ]
    savepoints = [q for q in many.captured_queries if q["sql"].startswith("SAVEPOINT")]
    assert len(savepoints) == 1  # one atomic block: all or nothing


def test_a_title_collision_imports_nothing(world, personas):
    make_pam_user(
        personas.folder, "someone", title="AWS user: bob",
        distinguished_name=f"arn:aws:iam::{ACCOUNT_ID}:user/someone",
    )  # fmt: skip
    job = _job_with_users(world, [("alice", "/", {}), ("bob", "/", {})])
    before = PamUser.objects.count()
    with pytest.raises(discovery.DiscoveryError, match="already has records titled AWS user: bob"):
        _import(job, personas.folder, personas.editor, user_names=None)
    assert PamUser.objects.count() == before
    assert not RotationSettings.objects.exists()
    assert not AuditEvent.objects.filter(action="discovery.imported").exists()


def test_rerunning_never_duplicates(world, personas, monkeypatch):
    seed(world.emulator, ["alice", "bob"])
    first = run(start(world))
    outcome = _import(first, personas.folder, personas.editor, user_names=["alice"])
    second = run(start(world))
    users = {u.user_name: u.record_id for u in DiscoveredUser.objects.filter(job=second)}
    assert users["alice"] == PamUser.objects.get(uid=outcome.users["alice"]).pk
    assert users["bob"] is None
    again = _import(second, personas.folder, personas.editor, user_names=None)
    assert again.created == ["bob"] and again.existing == ["alice"]
    assert again.users["alice"] == outcome.users["alice"]
    assert PamUser.objects.filter(login="alice").count() == 1
    # Importing the same users once more creates nothing.
    third = _import(second, personas.folder, personas.editor, user_names=["alice", "bob"])
    assert third.created == [] and PamUser.objects.count() == 2


def test_a_record_typed_without_the_path_or_the_arn_is_the_same_user(world, personas):
    job = _job_with_users(world, [(n, "/team/", {}) for n in ("alice", "bob", "carol", "dave")])
    assert job.users.get(user_name="alice").arn.endswith(":user/team/alice")
    no_path = make_pam_user(personas.folder, "alice", title="alice (typed)")
    blank = make_pam_user(personas.folder, "bob", title="bob", distinguished_name="")
    # The same name in another AWS account is another IAM user: carol is imported.
    make_pam_user(
        personas.folder, "carol", title="carol elsewhere",
        distinguished_name="arn:aws:iam::999999999999:user/team/carol",
    )  # fmt: skip
    outcome = _import(job, personas.folder, personas.editor, user_names=None)
    assert outcome.created == ["carol", "dave"] and outcome.existing == ["alice", "bob"]
    assert outcome.users["alice"] == no_path.uid and outcome.users["bob"] == blank.uid
    assert PamUser.objects.filter(login="alice").count() == 1
    assert PamUser.objects.filter(login="carol").count() == 2
    assert DiscoveredUser.objects.get(job=job, user_name="alice").record == no_path


def test_listing_marks_a_record_typed_without_the_path(world, personas):
    seed(world.emulator, ["alice", "bob"], path="/team/")
    record = make_pam_user(personas.folder, "alice")  # its ARN lacks /team/
    make_pam_user(
        personas.folder, "bob", title="bob elsewhere",
        distinguished_name="arn:aws:iam::999999999999:user/bob",
    )  # fmt: skip
    job = run(start(world))
    users = {u.user_name: u.record_id for u in DiscoveredUser.objects.filter(job=job)}
    assert users == {"alice": record.pk, "bob": None}


def test_a_second_import_of_the_same_users_creates_nothing(world, personas):
    other = SharedFolder.objects.create(name="Second folder")
    make_member(other, personas.editor, can_edit=True, manage_records=True)
    ApplicationFolder.objects.create(
        application=personas.gateway.application, folder=other, editable=True
    )
    job = _job_with_users(world, [("alice", "/", {}), ("bob", "/", {})])
    first = _import(job, personas.folder, personas.editor, user_names=None)
    # The same job again (the CLI after the page), here and into another folder.
    for folder, actor in ((personas.folder, None), (other, personas.editor)):
        again = discovery.discovery_import(
            job=job, folder=folder, actor=actor, actor_kind="cli" if actor is None else "user",
            user_names=None,
        )  # fmt: skip
        assert again.created == [] and again.existing == ["alice", "bob"]
        assert again.users == first.users
    assert PamUser.objects.count() == 2 and RotationSettings.objects.count() == 2


def test_the_outcome_leaves_out_uids_of_records_the_actor_cannot_see(world, personas):
    hidden_folder = SharedFolder.objects.create(name="Not yours")
    hidden = make_pam_user(hidden_folder, "alice")
    job = _job_with_users(world, [("alice", "/", {}), ("bob", "/", {})])
    outcome = _import(job, personas.folder, personas.editor, user_names=None)
    assert outcome.existing == ["alice"] and outcome.hidden == 1
    assert list(outcome.users) == ["bob"] and hidden.uid not in outcome.users.values()
    # The CLI's operator sees every record (as `pam list` does).
    operator = discovery.discovery_import(
        job=job, folder=personas.folder, user_names=None, actor_kind="cli"
    )
    assert operator.users["alice"] == hidden.uid and operator.hidden == 0


def test_unknown_names_import_nothing(world, personas):
    job = _job_with_users(world, [("alice", "/", {})])
    with pytest.raises(discovery.DiscoveryError, match="Not found by discovery .*: nobody"):
        _import(job, personas.folder, personas.editor, user_names=["alice", "nobody"])
    assert not PamUser.objects.exists()


def test_import_needs_a_finished_discovery(world, personas):
    job = _job_with_users(world, [("alice", "/", {})])
    DiscoveryJob.objects.filter(pk=job.pk).update(status=DiscoveryJob.RUNNING)
    job.refresh_from_db()
    with pytest.raises(discovery.DiscoveryError, match="has not finished"):
        _import(job, personas.folder, personas.editor, user_names=["alice"])


@pytest.mark.parametrize("who", ["viewer", "manager", "outsider"])
def test_import_refuses_people_without_the_rights(world, personas, who):
    job = _job_with_users(world, [("alice", "/", {})])
    with pytest.raises(PermissionDenied):
        _import(job, personas.folder, getattr(personas, who), user_names=["alice"])
    assert not PamUser.objects.exists()


def test_import_into_a_folder_the_gateway_cannot_rotate_is_refused(world, personas):
    other = SharedFolder.objects.create(name="Unshared")
    make_member(other, personas.editor, can_edit=True, manage_records=True)
    job = _job_with_users(world, [("alice", "/", {})])
    with pytest.raises(discovery.DiscoveryError, match="not shared to the application"):
        _import(job, other, personas.editor, user_names=["alice"])
    assert not PamUser.objects.exists()


def test_import_refuses_users_outside_the_scope_now(world, personas):
    job = _job_with_users(world, [("alice", "/", {})])
    world.config.scope_user_pattern = "svc-*"
    world.config.save()
    job.refresh_from_db()
    with pytest.raises(discovery.DiscoveryError, match="Outside the target scope"):
        _import(job, personas.folder, personas.editor, user_names=["alice"])


def test_a_throttled_credential_report_is_resumed_too(personas, emulator, proxy, proxied, settings):
    settings.AWS_MAX_ATTEMPTS = 1
    seed(emulator, ["alice"], console={"alice"})
    proxy.throttle(times=1, match="Action=GetCredentialReport")
    job = discovery.discovery_start(configuration=proxied, actor=personas.editor)
    assert tasks.run_discovery(job.pk) == "waiting"
    job.refresh_from_db()
    assert (job.phase, job.users_found) == ("report", 0)
    discovery.discovery_recover(now=job.lease_expires_at + timedelta(seconds=1))
    job = run(job)
    assert job.status == DiscoveryJob.SUCCEEDED
    assert DiscoveredUser.objects.get(job=job).console_access is True


def test_the_gateways_tick_resumes_its_discoveries(
    world, enqueued, django_capture_on_commit_callbacks
):
    job = start(world)
    DiscoveryJob.objects.filter(pk=job.pk).update(
        status=DiscoveryJob.RUNNING, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        summary = tasks.gateway_tick("default")
    assert summary["discoveries_resumed"] == 1
    assert ("rotation.tasks.run_discovery", job.pk) in [c.args for c in enqueued.call_args_list]
    job.refresh_from_db()
    assert job.status == DiscoveryJob.QUEUED
