from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RotationConfig(AppConfig):
    name = "rotation"
    verbose_name = "Password rotation"

    def ready(self) -> None:
        from rotation import checks, importing, signals, taskguard  # noqa: F401  (registered on import)

        importing.install()
        taskguard.install()  # only the vault's task functions run on gateways
        post_migrate.connect(_ensure_counts, sender=self)
        # The home and folder pages count a folder's records from the counts kept here.
        from rotation import counts
        from vault import counting

        counting.RECORD_COUNT = counts.record_count


def _ensure_counts(sender, using="default", **kwargs) -> None:
    """After every migrate (and flush): the home page's count triggers are there and current,
    else they are installed and the counts rebuilt (rotation/counts.py). On SQLite a later
    migration that rebuilds one of the tables drops its triggers; this puts them back."""
    from django.db import connections

    from rotation import counts

    tables = set(connections[using].introspection.table_names())
    if {"rotation_record_status", "rotation_rotation", "vault_pamuser"} <= tables:
        counts.ensure(using)
