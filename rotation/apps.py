from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_migrate


class RotationConfig(AppConfig):
    name = "rotation"
    verbose_name = "Password rotation"

    def ready(self) -> None:
        from rotation import checks, importing, signals, taskguard  # noqa: F401  (registered on import)

        importing.install()
        # The folder page's rotation columns, sorts and filters (vault/folder_listing.py).
        from rotation import folder_listing

        folder_listing.install()
        taskguard.install()  # only the vault's task functions run on gateways
        pre_migrate.connect(_drop_sqlite_count_triggers, sender=self)
        post_migrate.connect(_ensure_counts, sender=self)
        # The home and folder pages count a folder's records from the counts kept here.
        from rotation import counts
        from vault import counting

        counting.RECORD_COUNT = counts.record_count
        # The record page's Reveal also shows every other password AWS may hold.
        from rotation import candidates
        from vault import services

        if candidates.candidates_reveal_all not in services.RECORD_CANDIDATE_REVEALERS:
            services.RECORD_CANDIDATE_REVEALERS.append(candidates.candidates_reveal_all)
        from django.conf import settings

        if settings.GATEWAY_PROCESS:
            from rotation import aws

            aws.preload()  # before the cluster forks its workers


def _drop_sqlite_count_triggers(sender, using="default", plan=None, **kwargs) -> None:
    """Before migrations run on SQLite: drop the count triggers and their views. SQLite
    rebuilds a table to alter it (copy, drop, rename), and the rename fails while a trigger on
    another table names the dropped one; _ensure_counts puts them back, and rebuilds the
    counts, once every migration has run."""
    from django.db import connections

    from rotation import counts

    if plan and connections[using].vendor == "sqlite":
        counts.uninstall(connections[using])


def _ensure_counts(sender, using="default", **kwargs) -> None:
    """After every migrate (and flush): the home page's count triggers are there and current,
    else they are installed and the counts rebuilt from the rows (rotation/counts.py)."""
    from django.db import connections

    from rotation import counts

    tables = set(connections[using].introspection.table_names())
    if {"rotation_record_status", "rotation_rotation", "vault_pamuser"} <= tables:
        counts.ensure(using)
