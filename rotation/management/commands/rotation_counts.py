"""`manage.py rotation_counts`: check the home page's counts against the rows they come from;
`--rebuild` recomputes them (rotation/counts.py says when they could drift).

Exit status 0 when they agree (or after a rebuild), 1 when they differ. Both read every record
and rotation once, in a transaction that writers wait for (on PostgreSQL a SHARE lock on the
rotation, record and folder tables): run it at a quiet moment on a large vault.
"""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS, connections

from rotation import counts


class Command(BaseCommand):
    help = "Check the dashboard's counts against the records and rotations; --rebuild repairs."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--rebuild",
            action="store_true",
            help="recompute the counts (and reinstall missing or outdated triggers)",
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, rebuild: bool, database: str, **options) -> None:
        connection = connections[database]
        started = time.monotonic()
        if rebuild:
            if not counts.installed(connection):
                counts.install(connection)
                self.stdout.write("Reinstalled the count triggers.")
            counts.rebuild(database)
            self.stdout.write(f"Rebuilt the counts in {time.monotonic() - started:.1f} s.")
            return
        if not counts.installed(connection):
            self.stdout.write(
                "The count triggers are missing, disabled or outdated: run "
                "`manage.py rotation_counts --rebuild` (or `migrate`)."
            )
            sys.exit(1)
        total, drift = counts.check(database)
        if not total:
            self.stdout.write(
                f"The counts agree with the records and rotations "
                f"({time.monotonic() - started:.1f} s)."
            )
            return
        self.stdout.write(f"{total} counts differ from the records and rotations, e.g.:")
        for d in drift:
            self.stdout.write(f"  {d.table} {d.key}: stored {d.stored}, expected {d.expected}")
        self.stdout.write("Repair: `manage.py rotation_counts --rebuild`.")
        sys.exit(1)
