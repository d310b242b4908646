"""The home page's counts are kept by database triggers (rotation/counts.py): after any change,
made by any code (engine-shaped UPDATEs, bulk inserts, model saves, deletes, moves), the counts,
the "last rotation failed" list and the chart agree with what reading every row says (the
dashboard's queries before the counts existed, kept here as the reference); drift is found and
repaired; and on PostgreSQL concurrent transactions keep them exact without deadlocks."""

from __future__ import annotations

import copy
import random
import threading
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import NOT_PROVIDED, Count, OuterRef, Subquery
from django.db.models.deletion import ProtectedError
from django.utils import timezone

from rotation import counts, dashboard
from rotation.models import (
    DiscoveredUser,
    DiscoveryJob,
    KeyRetirement,
    RecordRotationStatus,
    Rotation,
    RotationSettings,
    RotationSlotCount,
    RotationStatusCount,
)
from tests.conftest import make_configuration, make_pam_user
from vault.models import PamUser, SharedFolder

# --- the reference: the dashboard's queries before the counts (they read every record) ------


def _latest():
    return Rotation.objects.filter(pam_user=OuterRef("pk")).order_by("-created_at", "-id")


def reference_counts(folder_ids) -> dict[str, int]:
    rows = (
        PamUser.objects.filter(folder_id__in=folder_ids)
        .annotate(last_status=Subquery(_latest().values("status")[:1]))
        .order_by()
        .values("last_status")
        .annotate(n=Count("pk"))
        .values_list("last_status", "n")
    )
    result = {"succeeded": 0, "failed": 0, "rotating": 0, "never": 0}
    for status, n in rows:
        if status in Rotation.ACTIVE:
            result["rotating"] += n
        elif status in (Rotation.SUCCEEDED, Rotation.FAILED):
            result[status] += n
        else:
            result["never"] += n
    result["total"] = sum(result.values())
    return result


def reference_failures(folder_ids) -> list[tuple[int, str, object]]:
    latest = _latest()
    rows = (
        PamUser.objects.filter(folder_id__in=folder_ids)
        .annotate(
            last_status=Subquery(latest.values("status")[:1]),
            last_error=Subquery(latest.values("error")[:1]),
            last_finished_at=Subquery(latest.values("finished_at")[:1]),
        )
        .filter(last_status=Rotation.FAILED)
        .order_by("-last_finished_at", "pk")[: dashboard.ATTENTION_SHOWN]
    )
    return [(r.pk, r.last_error, r.last_finished_at) for r in rows]


def reference_days(folder_ids, now):
    first_day = timezone.localdate(now) - timedelta(days=dashboard.CHART_DAYS - 1)
    start = timezone.make_aware(datetime.combine(first_day, datetime.min.time()))
    return dashboard._scan_days(folder_ids, start, now)


def assert_agrees(folders, now=None) -> None:
    total, drift = counts.check()
    assert total == 0, drift
    now = now or timezone.now()
    for folder in folders:
        ids = [folder.pk]
        assert dashboard.status_counts(ids) == reference_counts(ids), folder
        shown = [(r.pk, r.last_error, r.last_finished_at) for r in dashboard.failed_records(ids)]
        assert shown == reference_failures(ids), folder
        got = {k: v for k, v in dashboard.daily_rotations(ids, now).items() if v}
        assert got == reference_days(ids, now), folder
    ids = [f.pk for f in folders]
    assert dashboard.status_counts(ids) == reference_counts(ids)


# --- random changes, as every kind of writer makes them ------------------------------------------


class Churn:
    """Random changes to records and rotations in a few folders."""

    def __init__(self, personas, seed: int) -> None:
        self.rng = random.Random(seed)
        self.folders = [personas.folder, personas.other_folder]
        self.configs = {f.pk: make_configuration(f, personas.gateway) for f in self.folders}
        self.serial = 0
        self.now = timezone.now()

    def new_title(self) -> str:
        self.serial += 1
        return f"R{self.serial:05d}"

    def records(self):
        return list(PamUser.objects.order_by("pk"))

    def when(self):
        # Ties on created_at, old and future finishes, some within the chart's current slot.
        return self.now - timedelta(
            minutes=self.rng.choice([0, 0, 1, 5, 90, 60 * 24 * 3, 60 * 24 * 40])
        )

    def rotation(self, record, status=None, **kw) -> Rotation:
        status = status or self.rng.choice(["queued", "running", "succeeded", "failed"])
        created = kw.pop("created_at", self.when())
        finished = None
        if status in ("succeeded", "failed"):
            finished = created + timedelta(seconds=self.rng.choice([1, 30, 600]))
        return Rotation(
            pam_user=record,
            configuration=self.configs.get(record.folder_id) or self.configs[self.folders[0].pk],
            gateway_name="default",
            trigger="on_demand",
            status=status,
            created_at=created,
            finished_at=finished,
            error=f"error {self.rng.randrange(1000)}" if status == "failed" else "",
            **kw,
        )

    def step(self) -> None:
        rng, records = self.rng, self.records()
        op = rng.randrange(14)
        if op == 0 or not records:
            make_pam_user(rng.choice(self.folders), self.new_title())
        elif op == 1:
            folder = rng.choice(self.folders)
            PamUser.objects.bulk_create(
                PamUser(folder=folder, title=self.new_title(), login="x", distinguished_name="d")
                for _ in range(rng.randrange(1, 4))
            )
        elif op in (2, 3):
            record = rng.choice(records)
            status = rng.choice(["succeeded", "failed", "succeeded", "queued"])
            try:
                with transaction.atomic():
                    self.rotation(record, status).save()
            except IntegrityError:  # one active rotation per record
                pass
        elif op == 4:
            # Several rotations of one record in one statement (history, as the bench makes).
            record = rng.choice(records)
            Rotation.objects.bulk_create(
                [self.rotation(record, rng.choice(["succeeded", "failed"])) for _ in range(3)]
            )
        elif op == 5:
            # The engine's shapes: claim, finish, fail, recover; one statement, many rows.
            active = list(Rotation.objects.filter(status__in=Rotation.ACTIVE)[:5])
            if active:
                ids = [r.pk for r in active if rng.random() < 0.7]
                target = rng.choice(["running", "succeeded", "failed", "queued"])
                changes = {"status": target}
                if target in ("succeeded", "failed"):
                    changes["finished_at"] = self.when()
                    changes["error"] = "refused" if target == "failed" else ""
                Rotation.objects.filter(pk__in=ids).update(**changes)
        elif op == 6:
            rotation = Rotation.objects.order_by("?").first()
            if rotation:
                rotation.created_at = self.when()
                rotation.save()
        elif op == 7:
            rotation = Rotation.objects.order_by("?").first()
            if rotation and rotation.status in ("succeeded", "failed"):
                rotation.finished_at = self.when() + timedelta(seconds=rng.randrange(3600))
                rotation.status = rng.choice(["succeeded", "failed"])
                rotation.save(update_fields=["finished_at", "status"])
        elif op == 8:
            rotation = Rotation.objects.exclude(status__in=Rotation.ACTIVE).order_by("?").first()
            if rotation:
                rotation.delete()
        elif op == 9:
            record = rng.choice(records)
            other = rng.choice([f for f in self.folders if f.pk != record.folder_id])
            PamUser.objects.filter(pk=record.pk).update(folder=other)
        elif op == 10:
            record = rng.choice(records)
            try:
                record.delete()
            except ProtectedError:
                pass
        elif op == 11:
            rotation = Rotation.objects.order_by("?").first()
            if rotation and rotation.status not in Rotation.ACTIVE:
                # A rotation moved to another record (a data fix).
                Rotation.objects.filter(pk=rotation.pk).update(pam_user=rng.choice(records))
        elif op == 12:
            # A gateway's batch: ten or more rotations in one statement, finished ones moving
            # to another slot or outcome and active ones ending (PostgreSQL recomputes ten
            # records or more together).
            ids = list(
                Rotation.objects.order_by("?").values_list("pk", flat=True)[: rng.randrange(10, 26)]
            )
            Rotation.objects.filter(pk__in=ids).update(
                status=rng.choice(["succeeded", "failed"]), finished_at=self.when()
            )
        else:
            # Several finished rotations moved to one record in one statement (a data fix).
            ids = list(
                Rotation.objects.exclude(status__in=Rotation.ACTIVE)
                .order_by("?")
                .values_list("pk", flat=True)[: rng.randrange(2, 14)]
            )
            Rotation.objects.filter(pk__in=ids).update(pam_user=rng.choice(records))


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counts_agree_with_the_rows_after_random_changes(personas, seed):
    churn = Churn(personas, seed)
    for n in range(250):
        churn.step()
        if n % 50 == 49:
            assert_agrees(churn.folders, churn.now)
    assert RecordRotationStatus.objects.count() == PamUser.objects.count()


@pytest.mark.django_db(transaction=True)
def test_counts_agree_when_every_change_commits(personas):
    """Each change its own transaction: on PostgreSQL the counts are added at each commit."""
    churn = Churn(personas, 4)
    for _ in range(150):
        churn.step()
    assert_agrees(churn.folders, churn.now)
    assert not connection.vendor == "postgresql" or not _pending_rows()


def _pending_rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM rotation_count_delta")
        return cursor.fetchone()[0]


class BulkChurn(Churn):
    """Churn with large inserts too: on PostgreSQL, the statement-level insert triggers
    recompute ten records or more with set-based statements (rotation_counts_recompute_many),
    fewer one at a time; these cross that line both ways."""

    def step(self) -> None:
        rng = self.rng
        op = rng.randrange(5)
        if op == 0:
            folder = rng.choice(self.folders)
            PamUser.objects.bulk_create(
                PamUser(folder=folder, title=self.new_title(), login="x", distinguished_name="d")
                for _ in range(rng.randrange(5, 25))
            )
        elif op in (1, 2):
            # Several rotations of a record in one statement, in any order, finished or not.
            records = self.records()
            chosen = rng.sample(records, min(len(records), rng.randrange(5, 30)))
            rows = [
                self.rotation(record, rng.choice(["succeeded", "failed"]))
                for record in chosen
                for _ in range(rng.randrange(1, 3))
            ]
            rng.shuffle(rows)
            Rotation.objects.bulk_create(rows)
        elif op == 3:
            # The scheduler's shape: queued rotations, records already rotating skipped.
            records = self.records()
            chosen = rng.sample(records, min(len(records), rng.randrange(5, 30)))
            Rotation.objects.bulk_create(
                [self.rotation(record, "queued") for record in chosen], ignore_conflicts=True
            )
        else:
            super().step()


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2])
def test_counts_agree_after_large_inserts(personas, seed):
    churn = BulkChurn(personas, seed)
    for n in range(150):
        churn.step()
        if n % 50 == 49:
            assert_agrees(churn.folders, churn.now)
    assert RecordRotationStatus.objects.count() == PamUser.objects.count()


@pytest.mark.django_db
def test_a_scheduler_pass_keeps_the_counts(personas):
    """The scheduler inserts its rotations with its own statement (rotation/scheduler.py)."""
    from rotation import scheduler
    from rotation.models import RotationSettings

    config = make_configuration(personas.folder, personas.gateway)
    records = [make_pam_user(personas.folder, f"due-{n}") for n in range(25)]
    daily = {"type": "DAILY", "time": "02:00", "tz": "UTC", "intervalCount": 1}
    RotationSettings.objects.bulk_create(
        RotationSettings(
            pam_user=record,
            configuration=config,
            schedule=daily,
            next_run_at=timezone.now() - timedelta(minutes=5),
        )
        for record in records
    )
    Rotation.objects.create(
        pam_user=records[3], configuration=config, gateway_name="default", trigger="on_demand"
    )

    assert scheduler.rotation_schedule_due(batch_size=12) == 24

    assert_agrees([personas.folder])
    assert dashboard.status_counts([personas.folder.pk])["rotating"] == 25


@pytest.mark.django_db(transaction=True)
def test_deleting_a_folder_deletes_its_counts(personas):
    doomed = SharedFolder.objects.create(name="Doomed")
    config = make_configuration(doomed, personas.gateway)
    record = make_pam_user(doomed, "Gone")
    Rotation.objects.create(
        pam_user=record,
        configuration=config,
        gateway_name="default",
        trigger="on_demand",
        status="succeeded",
        finished_at=timezone.now(),
    )
    assert RotationStatusCount.objects.filter(folder=doomed).exists()
    doomed.delete()
    assert not RotationStatusCount.objects.filter(folder_id=doomed.pk).exists()
    assert not RotationSlotCount.objects.filter(folder_id=doomed.pk).exists()
    assert counts.check()[0] == 0


@pytest.mark.django_db(transaction=True)
def test_migration_0005_counts_what_is_already_there(personas):
    """The data migration fills the counts from the records and rotations it finds."""
    from django.db.migrations.executor import MigrationExecutor

    churn = Churn(personas, 10)
    for _ in range(40):
        churn.step()
    MigrationExecutor(connection).migrate([("rotation", "0004_connection_test")])
    assert not counts.installed(connection)
    # The columns that migrations after 0005 add, so that today's models work meanwhile.
    later = [
        (Rotation, name)
        for name in ("unanswered_until", "pending_access_key_id", "step", "step_started_at")
    ] + [
        (RotationSettings, name)
        for name in ("key_deactivate_after_hours", "key_delete_after_hours")
    ]
    later_models = (KeyRetirement, DiscoveryJob, DiscoveredUser)
    with connection.schema_editor() as editor:
        for model, name in later:
            editor.add_field(model, _as_plain_column(model._meta.get_field(name)))
        for model in later_models:
            editor.create_model(model)
    for _ in range(80):  # changes made before the counts existed
        churn.step()
    with connection.schema_editor() as editor:
        for model in reversed(later_models):
            editor.delete_model(model)
        for model, name in later:
            editor.remove_field(model, _as_plain_column(model._meta.get_field(name)))
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    if connection.vendor == "sqlite":  # installed after the run, as `migrate` does
        assert counts.ensure() is True
    assert counts.installed(connection)
    assert_agrees(churn.folders, churn.now)


def _as_plain_column(field):
    """The field as a nullable column without a default: SQLite adds and drops such a column in
    place (ALTER TABLE), where a default makes it rebuild the table from today's model, with
    every later column in it."""
    plain = copy.copy(field)
    plain.null, plain.default = True, NOT_PROVIDED
    return plain


@pytest.mark.django_db(transaction=True)
def test_a_migration_that_rebuilds_a_table_still_runs_on_sqlite(personas):
    """SQLite alters a table by rebuilding it (copy, drop, rename); the rename fails while a
    trigger elsewhere names the table, so `migrate` drops the count triggers first and puts
    them back, with the counts rebuilt, at the end."""
    from django.apps import apps

    from rotation.apps import _drop_sqlite_count_triggers, _ensure_counts

    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: PostgreSQL alters tables in place")
    churn = Churn(personas, 12)
    for _ in range(40):
        churn.step()
    rotation_app = apps.get_app_config("rotation")
    _drop_sqlite_count_triggers(rotation_app, using="default", plan=[("a migration", False)])
    assert not counts.installed(connection)
    with connection.schema_editor() as editor:
        for model in (Rotation, PamUser, SharedFolder):
            editor._remake_table(model)  # what AlterField, RemoveField and others do
    for _ in range(20):  # changes while the triggers are away
        churn.step()
    _ensure_counts(rotation_app, using="default")
    assert counts.installed(connection)
    assert_agrees(churn.folders, churn.now)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_counts_follow_savepoints_and_immediate_constraints(personas):
    """PostgreSQL: changes rolled back to a savepoint are not counted; SET CONSTRAINTS ALL
    IMMEDIATE (Django's constraint checks) applies what is pending at once, and what follows
    is still applied at commit."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    churn = Churn(personas, 11)
    with transaction.atomic():
        for _ in range(30):
            churn.step()
        with pytest.raises(RuntimeError), transaction.atomic():
            for _ in range(30):
                churn.step()
            raise RuntimeError("roll back to the savepoint")
        connection.check_constraints()  # SET CONSTRAINTS ALL IMMEDIATE, then DEFERRED
        assert _pending_rows() == 0
        for _ in range(30):
            churn.step()
    assert _pending_rows() == 0
    assert_agrees(churn.folders, churn.now)


# --- the chart in other time zones ---------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "zone",
    ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "Europe/Berlin", "Pacific/Apia"],
)
def test_chart_days_agree_in_time_zones(personas, zone):
    churn = Churn(personas, 5)
    for _ in range(120):
        churn.step()
    with timezone.override(zone):
        assert_agrees(churn.folders, churn.now)


@pytest.mark.django_db
def test_chart_falls_back_to_reading_rotations_off_the_15_minute_grid(personas):
    churn = Churn(personas, 6)
    for _ in range(80):
        churn.step()
    odd = dt_timezone(timedelta(minutes=7))  # no such zone today; midnight is off the grid
    with timezone.override(odd):
        first = timezone.localdate(churn.now) - timedelta(days=29)
        assert not dashboard._on_the_grid(dashboard._midnight(first))
        assert_agrees(churn.folders, churn.now)


@pytest.mark.django_db
def test_a_rotation_finished_after_now_is_not_counted_yet(personas):
    config = make_configuration(personas.folder, personas.gateway)
    record = make_pam_user(personas.folder, "Ahead")
    slot = counts.slot_of(timezone.now())
    now = counts.slot_start(slot) + timedelta(minutes=5)
    for finished in (now - timedelta(seconds=1), now + timedelta(seconds=1)):
        Rotation.objects.create(
            pam_user=record,
            configuration=config,
            gateway_name="default",
            trigger="on_demand",
            status="succeeded",
            created_at=finished - timedelta(seconds=1),
            finished_at=finished,
        )
    days = dashboard.daily_rotations([personas.folder.pk], now)
    assert days == {(timezone.localdate(now), "succeeded"): 0 + 1}


# --- drift: found, and repaired ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_check_finds_drift_and_rebuild_repairs_it(personas):
    churn = Churn(personas, 7)
    for _ in range(60):
        churn.step()
    assert counts.check()[0] == 0
    with connection.cursor() as cursor:
        cursor.execute("UPDATE rotation_status_count SET n = n + 5")
        cursor.execute("DELETE FROM rotation_slot_count")
        cursor.execute("UPDATE rotation_record_status SET status = 'queued'")
    found, drift = counts.check()
    assert found > 0 and {d.table for d in drift} >= {"rotation_status_count"}
    counts.rebuild()
    assert_agrees(churn.folders, churn.now)


@pytest.mark.django_db(transaction=True)
def test_ensure_puts_a_dropped_trigger_back_and_rebuilds(personas):
    churn = Churn(personas, 8)
    for _ in range(20):
        churn.step()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER rotation_counts_rotation_insert")
        else:
            cursor.execute("DROP TRIGGER rotation_counts_rotation ON rotation_rotation")
    assert not counts.installed(connection)
    for _ in range(10):  # changes the missing trigger does not count
        churn.rotation(churn.records()[0], "succeeded").save()
    assert counts.ensure() is True
    assert counts.installed(connection)
    assert_agrees(churn.folders, churn.now)
    assert counts.ensure() is False


@pytest.mark.django_db(transaction=True)
def test_manage_py_rotation_counts_checks_and_rebuilds(personas, capsys):
    from django.core.management import call_command

    churn = Churn(personas, 9)
    for _ in range(30):
        churn.step()
    call_command("rotation_counts")
    assert "agree" in capsys.readouterr().out
    with connection.cursor() as cursor:
        cursor.execute("UPDATE rotation_status_count SET n = n + 1")
    with pytest.raises(SystemExit) as exit_:
        call_command("rotation_counts")
    assert exit_.value.code == 1
    assert "differ" in capsys.readouterr().out
    call_command("rotation_counts", "--rebuild")
    assert counts.check()[0] == 0


# --- PostgreSQL: concurrent transactions ---------------------------------------------------------


def run_together(writer, count: int) -> list[BaseException]:
    """``writer(0)`` to ``writer(count - 1)``, each on its own thread and database connection,
    started at the same moment; what they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(w: int) -> None:
        try:
            start.wait()
            writer(w)
        except BaseException as exc:  # noqa: BLE001 - returned
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(w,)) for w in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_rotations_keep_exact_counts_without_deadlocks(personas):
    """Eight writers, each with its own records spread over two folders (so they share every
    count row and never one record), change rotations in batches touching records of both
    folders in random order, as the engine's claims, finishes, failures and requests do, and
    move records between the folders. Updating shared count rows in place would deadlock
    here; every transaction must commit, and the counts must be exact afterwards."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has one writer at a time")
    folders = [personas.folder, personas.other_folder]
    configs = [make_configuration(f, personas.gateway) for f in folders]
    writers, per_writer, rounds = 8, 12, 25
    owned = []
    for w in range(writers):
        records = [make_pam_user(folders[n % 2], f"W{w}-{n}") for n in range(per_writer)]
        owned.append([r.pk for r in records])

    def writer(w: int) -> None:
        rng = random.Random(w)
        for _ in range(rounds):
            batch = rng.sample(owned[w], rng.randrange(2, 7))
            with transaction.atomic():
                for pk in batch:  # request, claim or finish each, in one transaction
                    active = Rotation.objects.filter(
                        pam_user_id=pk, status__in=Rotation.ACTIVE
                    ).first()
                    folder_id = PamUser.objects.values_list("folder_id", flat=True).get(pk=pk)
                    config = configs[0] if folder_id == folders[0].pk else configs[1]
                    if active is None:
                        Rotation.objects.create(
                            pam_user_id=pk,
                            configuration=config,
                            gateway_name="default",
                            trigger="scheduled",
                        )
                    elif active.status == "queued":
                        Rotation.objects.filter(pk=active.pk).update(status="running")
                    else:
                        Rotation.objects.filter(pk=active.pk).update(
                            status=rng.choice(["succeeded", "failed"]),
                            finished_at=timezone.now(),
                        )
                if rng.random() < 0.2:
                    pk = rng.choice(owned[w])
                    PamUser.objects.filter(pk=pk).update(
                        folder_id=rng.choice([f.pk for f in folders])
                    )

    errors = run_together(writer, writers)
    assert not errors, errors
    assert Rotation.objects.count() > writers * rounds
    assert _pending_rows() == 0
    assert_agrees(folders)


def shared_records(personas, prefix: str, count: int):
    """Records that concurrent writers share, alternating between two folders, each folder
    with a configuration: (folders, {folder id: configuration}, records)."""
    folders = [personas.folder, personas.other_folder]
    configs = {f.pk: make_configuration(f, personas.gateway) for f in folders}
    records = [make_pam_user(folders[n % 2], f"{prefix}-{n}") for n in range(count)]
    return folders, configs, records


def scheduled_rotation(record, configs: dict, status: str) -> Rotation:
    """A scheduled rotation of `record` (unsaved), finished now when its status says so."""
    finished = timezone.now() if status in ("succeeded", "failed") else None
    return Rotation(
        pam_user_id=record.pk,
        configuration=configs[record.folder_id],
        gateway_name="default",
        trigger="scheduled",
        status=status,
        finished_at=finished,
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_bulk_inserts_on_the_same_records_keep_exact_counts(personas):
    """Six writers insert rotations in bulk, each statement its own transaction, for records
    they all share: finished ones in random orders, and queued ones skipping records already
    rotating (the scheduler's shape), while others finish them one at a time. The set-based
    recompute locks a statement's records in id order, so no two statements wait for each
    other in opposite orders; every statement must commit and the counts be exact."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has one writer at a time")
    folders, configs, shared = shared_records(personas, "S", 40)
    writers, rounds = 6, 15

    def writer(w: int) -> None:
        rng = random.Random(100 + w)
        for _ in range(rounds):
            chosen = rng.sample(shared, rng.randrange(12, 30))
            op = rng.randrange(3)
            if op == 0:
                Rotation.objects.bulk_create(
                    [
                        scheduled_rotation(r, configs, rng.choice(["succeeded", "failed"]))
                        for r in chosen
                    ]
                )
            elif op == 1:
                # In record order, as the scheduler inserts them: two inserts that wait
                # for each other's rows in the one-active-rotation index in opposite
                # orders would deadlock there, whatever the triggers do.
                chosen.sort(key=lambda r: r.pk)
                Rotation.objects.bulk_create(
                    [scheduled_rotation(r, configs, "queued") for r in chosen],
                    ignore_conflicts=True,
                )
            else:
                for pk in Rotation.objects.filter(
                    pam_user__in=chosen[:5], status="queued"
                ).values_list("pk", flat=True):
                    Rotation.objects.filter(pk=pk, status="queued").update(
                        status="succeeded", finished_at=timezone.now()
                    )

    errors = run_together(writer, writers)
    assert not errors, errors
    assert _pending_rows() == 0
    assert_agrees(folders)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batch_updates_on_the_same_records_keep_exact_counts(personas):
    """Six writers each own rotations of records they all share (each record has a rotation of
    every writer's), and end or re-finish 10 to 30 of them per statement, each statement its own
    transaction: a gateway's claims and finishes of batches whose records meet. The
    statement-level trigger locks a statement's records in id order, so no two
    statements wait for each other in opposite orders; every statement must commit and the
    counts be exact."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has one writer at a time")
    folders, configs, shared = shared_records(personas, "B", 30)
    writers, rounds = 6, 15
    owned = []
    for _ in range(writers):
        made = Rotation.objects.bulk_create(
            scheduled_rotation(record, configs, "succeeded") for record in shared
        )
        owned.append([rotation.pk for rotation in made])

    def writer(w: int) -> None:
        rng = random.Random(200 + w)
        for _ in range(rounds):
            chosen = rng.sample(owned[w], rng.randrange(10, 31))
            Rotation.objects.filter(pk__in=chosen).update(
                status=rng.choice(["succeeded", "failed"]),
                finished_at=timezone.now() - timedelta(minutes=rng.randrange(0, 120)),
            )

    errors = run_together(writer, writers)
    assert not errors, errors
    assert _pending_rows() == 0
    assert_agrees(folders)


def test_slot_helpers_round_trip():
    when = datetime(2026, 11, 30, 23, 59, 59, 999_600, tzinfo=UTC)
    assert counts.slot_start(counts.slot_of(when)) == datetime(2026, 11, 30, 23, 45, tzinfo=UTC)


@pytest.mark.django_db
def test_a_rotation_finished_just_before_midnight_counts_for_that_day(personas):
    """SQLite rounds fractions of a second to milliseconds: 23:59:59.9996 must not become the
    next day's first slot."""
    config = make_configuration(personas.folder, personas.gateway)
    record = make_pam_user(personas.folder, "Midnight")
    today = timezone.localdate()
    late = timezone.make_aware(datetime.combine(today, datetime.min.time())) - timedelta(
        microseconds=400
    )
    Rotation.objects.create(
        pam_user=record,
        configuration=config,
        gateway_name="default",
        trigger="on_demand",
        status="failed",
        created_at=late - timedelta(seconds=1),
        finished_at=late,
    )
    days = dashboard.daily_rotations([personas.folder.pk], timezone.now())
    assert days.get((today - timedelta(days=1), "failed")) == 1
    assert not days.get((today, "failed"))
    assert counts.check()[0] == 0
