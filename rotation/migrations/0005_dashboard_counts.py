# The home page's counts, kept by database triggers (rotation/counts.py): one row per record
# with its latest rotation, counts per folder and status, finished rotations per folder and
# 15-minute slot; the indexes the rest of the dashboard reads through.

import django.db.models.deletion
from django.db import migrations, models


def install_and_fill(apps, schema_editor):
    # PostgreSQL: triggers first; CREATE TRIGGER locks each table against writers until this
    # migration commits, so no change can fall between the fill and the first trigger.
    # SQLite: the triggers are installed (and the counts rebuilt) after the last migration of
    # the run, by rotation.apps._ensure_counts: a later migration that rebuilds one of these
    # tables would fail with them in place.
    from rotation import counts

    if schema_editor.connection.vendor == 'postgresql':
        counts.install(schema_editor.connection)
    counts.rebuild(schema_editor.connection.alias)


def uninstall(apps, schema_editor):
    from rotation import counts

    counts.uninstall(schema_editor.connection)


def fk(to, **kw):
    return models.ForeignKey(
        db_constraint=False,
        db_index=False,
        on_delete=django.db.models.deletion.DO_NOTHING,
        related_name='+',
        to=to,
        **kw,
    )


class Migration(migrations.Migration):

    dependencies = [
        ('rotation', '0004_connection_test'),
        ('vault', '0002_authority'),
    ]

    operations = [
        migrations.CreateModel(
            name='RecordRotationStatus',
            fields=[
                ('pam_user', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name='+', serialize=False, to='vault.pamuser')),
                ('folder', fk('vault.sharedfolder')),
                ('status', models.CharField(blank=True, max_length=20)),
                ('rotation', fk('rotation.rotation', null=True)),
                ('finished_at', models.DateTimeField(null=True)),
            ],
            options={
                'db_table': 'rotation_record_status',
                'default_permissions': (),
                'indexes': [models.Index(fields=['status', '-finished_at', 'pam_user'], name='record_status_idx')],
            },
        ),
        migrations.CreateModel(
            name='RotationStatusCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('folder', fk('vault.sharedfolder')),
                ('status', models.CharField(blank=True, max_length=20)),
                ('n', models.BigIntegerField(default=0)),
            ],
            options={
                'db_table': 'rotation_status_count',
                'default_permissions': (),
                'constraints': [models.UniqueConstraint(fields=('folder', 'status'), name='status_count_key')],
            },
        ),
        migrations.CreateModel(
            name='RotationSlotCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('folder', fk('vault.sharedfolder')),
                ('slot', models.BigIntegerField()),
                ('status', models.CharField(max_length=20)),
                ('n', models.BigIntegerField(default=0)),
            ],
            options={
                'db_table': 'rotation_slot_count',
                'default_permissions': (),
                'constraints': [models.UniqueConstraint(fields=('folder', 'slot', 'status'), name='slot_count_key')],
            },
        ),
        migrations.CreateModel(
            name='RotationCountDelta',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('txid', models.BigIntegerField(db_index=True)),
                ('folder', fk('vault.sharedfolder')),
                ('status', models.CharField(blank=True, max_length=20)),
                ('slot', models.BigIntegerField(null=True)),
                ('n', models.BigIntegerField()),
            ],
            options={
                'db_table': 'rotation_count_delta',
                'default_permissions': (),
            },
        ),
        # The history index ends with id too: "the latest rotation" (created_at DESC, id DESC)
        # is then one index probe whatever the planner's statistics say.
        migrations.RemoveIndex(
            model_name='rotation',
            name='rotation_history_idx',
        ),
        migrations.AddIndex(
            model_name='rotation',
            index=models.Index(fields=['pam_user', '-created_at', '-id'], name='rotation_history_idx'),
        ),
        migrations.AddIndex(
            model_name='rotation',
            index=models.Index(fields=['finished_at'], name='rotation_finished_idx'),
        ),
        migrations.AddIndex(
            model_name='rotation',
            index=models.Index(condition=models.Q(('pending_may_be_live', True), ('resolved_at__isnull', True), ('status', 'failed')), fields=['status', '-created_at', '-id'], name='rotation_possibly_live_idx'),
        ),
        migrations.AddIndex(
            model_name='rotationsettings',
            index=models.Index(condition=models.Q(('enabled', True)), fields=['next_run_at', 'id'], name='rotation_due_order_idx'),
        ),
        migrations.RunPython(install_and_fill, uninstall),
    ]
