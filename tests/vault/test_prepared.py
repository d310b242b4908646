"""vault/prepared.py: a queryset compiled once gives what the ORM gives, and refuses the
querysets it could not run faithfully."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rotation.models import Rotation
from tests.conftest import make_pam_user
from vault import access
from vault.models import ApplicationFolder, PamUser, SharedFolder
from vault.prepared import PreparedQuery

pytestmark = pytest.mark.django_db


def shared_by_uid(application_id, uid):
    return access.records_shared_to_application(application_id).filter(uid=uid).order_by()


@pytest.fixture
def records(personas):
    shared = make_pam_user(personas.folder, "Shared", password="Shared-Passw0rd!")
    unshared = make_pam_user(personas.other_folder, "Unshared", password="Other-Passw0rd!")
    return shared, unshared


def test_it_finds_the_rows_the_orm_finds_for_each_value(personas, records):
    prepared = PreparedQuery(shared_by_uid, application_id=int, uid=str)
    app = personas.application.pk
    for uid in (records[0].uid, records[1].uid, "no-such-uid-xxxxxxxxxx"):
        expected = list(shared_by_uid(app, uid))
        assert prepared.run(application_id=app, uid=uid) == expected
    assert prepared.run(application_id=app, uid=records[0].uid) == [records[0]]
    assert prepared.run(application_id=app, uid=records[1].uid) == []


def test_a_newly_shared_folder_is_seen_without_compiling_again(personas, records):
    prepared = PreparedQuery(shared_by_uid, application_id=int, uid=str)
    app, unshared = personas.application.pk, records[1]
    assert prepared.run(application_id=app, uid=unshared.uid) == []
    ApplicationFolder.objects.create(application=personas.application, folder=unshared.folder)
    assert prepared.run(application_id=app, uid=unshared.uid) == [unshared]


def test_rows_are_whole_model_instances_with_converted_values(personas, records):
    prepared = PreparedQuery(shared_by_uid, application_id=int, uid=str)
    found = prepared.run(application_id=personas.application.pk, uid=records[0].uid)[0]
    stored = PamUser.objects.get(pk=records[0].pk)
    assert found.created_at == stored.created_at and found.created_at.tzinfo is not None
    assert found.get_secret("password") == "Shared-Passw0rd!"
    assert found.folder_id == personas.folder.pk and not found._state.adding


def test_annotations_become_attributes(personas):
    prepared = PreparedQuery(
        lambda pk: SharedFolder.objects.annotate(folder_name=F("name")).filter(pk=pk),
        pk=int,
    )
    assert prepared.run(pk=personas.folder.pk)[0].folder_name == "Team"


def test_the_builder_runs_only_to_compile_and_each_run_is_one_query(personas, records):
    built = []

    def build(application_id, uid):
        built.append((application_id, uid))
        return shared_by_uid(application_id, uid)

    prepared = PreparedQuery(build, application_id=int, uid=str)
    for record in records:
        with CaptureQueriesContext(connection) as captured:
            prepared.run(application_id=personas.application.pk, uid=record.uid)
        assert len(captured.captured_queries) == 1
    # Twice, with two sets of stand-ins (which parameters are placeholders), then never.
    assert len(built) == 2


def test_select_related_instances_are_built_as_the_orm_builds_them(personas, records):
    def build(uid):
        return PamUser.objects.select_related("folder").filter(uid=uid)

    prepared = PreparedQuery(build, uid=str)
    found = prepared.run(uid=records[0].uid)[0]
    with CaptureQueriesContext(connection) as captured:
        assert found.folder == personas.folder and found.folder.name == "Team"
    assert captured.captured_queries == []  # the folder came with the record
    assert found == list(build(records[0].uid))[0]


def test_a_datetime_placeholder_compares_as_the_orm_does(personas, records):
    def build(since):
        return PamUser.objects.filter(created_at__gte=since).order_by("pk")

    prepared = PreparedQuery(build, since=datetime)
    shared, unshared = records
    for since in (shared.created_at, unshared.created_at, timezone.now()):
        assert prepared.run(since=since) == list(build(since))
    assert prepared.run(since=unshared.created_at) == [unshared]


def test_a_naive_datetime_is_refused():
    prepared = PreparedQuery(
        lambda since: PamUser.objects.filter(created_at__gte=since), since=datetime
    )
    with pytest.raises(TypeError, match="aware"):
        prepared.run(since=datetime(2026, 1, 1))


def test_a_placeholder_the_sql_changes_is_refused():
    prepared = PreparedQuery(
        lambda title: PamUser.objects.filter(title__icontains=title), title=str
    )
    with pytest.raises(ValueError, match="a placeholder the SQL changed"):
        prepared.run(title="x")


def test_a_placeholder_the_builder_ignores_is_refused():
    prepared = PreparedQuery(lambda uid, title: PamUser.objects.filter(uid=uid), uid=str, title=str)
    with pytest.raises(ValueError, match="not in the SQL: title"):
        prepared.run(uid="x", title="y")


def test_values_of_another_type_or_name_are_refused():
    prepared = PreparedQuery(lambda pk: PamUser.objects.filter(pk=pk), pk=int)
    with pytest.raises(TypeError, match="pk must be int"):
        prepared.run(pk="1")
    with pytest.raises(TypeError, match="expected the values pk"):
        prepared.run(uid="1")


def test_only_text_numbers_and_times_can_be_placeholders():
    with pytest.raises(TypeError, match="only str, int and datetime"):
        PreparedQuery(lambda when: PamUser.objects.filter(created_at=when), when=float)


def test_a_placeholder_on_a_small_integer_column_works(personas, records):
    prepared = PreparedQuery(
        lambda attempts: Rotation.objects.filter(attempts=attempts).order_by(), attempts=int
    )
    assert prepared.run(attempts=0) == list(Rotation.objects.filter(attempts=0).order_by())


def test_a_number_beyond_every_column_finds_nothing_as_the_orm_does(personas, records):
    prepared = PreparedQuery(lambda pk: PamUser.objects.filter(pk=pk), pk=int)
    assert prepared.run(pk=2**70) == [] == list(PamUser.objects.filter(pk=2**70))


def test_a_value_that_changes_between_builds_is_refused():
    prepared = PreparedQuery(
        lambda uid: PamUser.objects.filter(uid=uid, created_at__lte=timezone.now()), uid=str
    )
    with pytest.raises(ValueError, match="changed between builds"):
        prepared.run(uid="x")


@pytest.mark.parametrize(
    "build",
    [
        lambda uid: PamUser.objects.filter(uid=uid).prefetch_related("versions"),
        lambda uid: PamUser.objects.filter(uid=uid).values("pk"),
        lambda uid: PamUser.objects.filter(uid=uid, pk__in=[]),
    ],
    ids=["prefetch", "values", "no SQL"],
)
def test_querysets_it_could_not_run_as_the_orm_does_are_refused(build):
    with pytest.raises(ValueError, match="prepared query"):
        PreparedQuery(build, uid=str).run(uid="x")


def _locked_by_uid(uid):
    return PamUser.objects.filter(uid=uid).select_for_update(skip_locked=True, of=("self",))


@pytest.mark.django_db(transaction=True)
def test_a_read_that_locks_runs_only_in_a_transaction_as_the_orms_does(personas, records):
    from django.db import transaction
    from django.db.transaction import TransactionManagementError

    prepared = PreparedQuery(_locked_by_uid, uid=str)
    with transaction.atomic():
        assert prepared.run(uid=records[0].uid) == [records[0]]
    if connection.features.has_select_for_update:
        with pytest.raises(TransactionManagementError):
            prepared.run(uid=records[0].uid)
    else:  # SQLite: no row locks, nothing to refuse
        assert prepared.run(uid=records[0].uid) == [records[0]]


@pytest.mark.django_db(transaction=True)
def test_a_read_that_skips_locked_rows_skips_those_another_transaction_holds(personas, records):
    import threading

    from django.db import transaction

    if not connection.features.has_select_for_update_skip_locked:
        pytest.skip("PostgreSQL only: SQLite has no row locks")
    held, done = threading.Event(), threading.Event()

    def holder():
        try:
            with transaction.atomic():
                PamUser.objects.select_for_update().get(pk=records[0].pk)
                held.set()
                done.wait(timeout=10)
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(timeout=10)
        prepared = PreparedQuery(_locked_by_uid, uid=str)
        with transaction.atomic():
            assert prepared.run(uid=records[0].uid) == []
            assert prepared.run(uid=records[1].uid) == [records[1]]
    finally:
        done.set()
        thread.join(10)
