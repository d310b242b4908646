"""Django's PostgreSQL backend, with a deadline on every wait for the server's answer.

vault/settings.py names this backend for PostgreSQL. What it adds is one connection option,
``read_timeout`` (seconds; settings.py sets it for gateway processes only): when the server
has not answered a query, a commit or any other request within that time, the connection is
closed and the call raises OperationalError. Without it, a connection that TCP still believes
healthy (a proxy, load balancer or NAT that lost its state, a frozen server whose kernel still
acknowledges every segment) leaves the caller waiting forever: libpq has no read timeout, TCP
keepalives are answered, ``tcp_user_timeout`` sees its data acknowledged, and the server's
``statement_timeout`` never starts because the query never reached it. A gateway's workers
would then stay blocked (the heartbeat, recovery and every rotation with them) until
django-q2's task timeout kills them, 15 minutes later.

psycopg (3.3) sends every blocking call of a connection, after the connection is made,
through ``Connection.wait``, which takes a timeout; the connections this backend makes give it
one. Connecting has its own limit, libpq's ``connect_timeout``.

A second option, ``prepared_statements`` (settings.py sets it for gateway processes unless
``DB_PREPARED_STATEMENTS=0``), lets ``prepared_cursor()`` give a cursor whose statements the
server parses and plans once per connection (psycopg's prepared statements, with parameters
bound on the server). Django binds parameters on the client, so the server plans every query
again each time: for a gateway's claim read (seven tables, three EXISTS) that planning was
8 to 10 ms of the server's CPU per batch, against under 3 ms to run it (issue 10). Every other
cursor stays Django's: only the reads that ask for it are prepared (vault/prepared.py), and
never behind a pooler that cannot keep them (DB_PREPARED_STATEMENTS=0; docs/deployment.md).
"""

from __future__ import annotations

import logging

import psycopg
from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.utils.asyncio import async_unsafe
from psycopg.pq import Format

logger = logging.getLogger(__name__)

READ_TIMEOUT_OPTION = "read_timeout"
PREPARED_STATEMENTS_OPTION = "prepared_statements"
# psycopg prepares a statement after this many runs, or when a cursor asks (prepare=True); None,
# Django's default, refuses even when asked. So large that only asking prepares.
_ONLY_WHEN_ASKED = 2**31 - 1


class DeadlineConnection(psycopg.Connection):
    """A psycopg connection whose waits for the server end after ``read_timeout`` seconds."""

    read_timeout: float | None = None

    def wait(self, gen, *args, **kwargs):
        # A caller that gives its own timeout (psycopg's cancel, notifies) keeps it.
        if not self.read_timeout or kwargs.get("timeout") is not None or len(args) > 1:
            return super().wait(gen, *args, **kwargs)
        kwargs["timeout"] = self.read_timeout
        try:
            return super().wait(gen, *args, **kwargs)
        except psycopg.errors._WaitTimeout:
            # The request may be half sent or half answered: the connection is unusable.
            # Closed, every later call on it fails at once, and Django drops it
            # (close_if_unusable_or_obsolete, or the error during a rollback).
            self.close()
            logger.warning(
                "no answer from the database within %g s: connection closed", self.read_timeout
            )
            raise psycopg.OperationalError(
                f"no answer from the database within {self.read_timeout:g} s "
                "(read_timeout); the connection was closed"
            ) from None


class PreparingCursor(psycopg.Cursor):
    """Binds parameters on the server and prepares every statement it runs (once per
    connection: psycopg keeps the names, and forgets them on a rollback)."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        params.pop(READ_TIMEOUT_OPTION, None)  # ours, not libpq's
        params.pop(PREPARED_STATEMENTS_OPTION, None)
        return params

    @async_unsafe
    def prepared_cursor(self):
        """A cursor (wrapped as Django wraps its own: execute wrappers, query logging, error
        translation) whose statements are prepared on the server, when this connection's
        options allow it; otherwise Django's cursor."""
        if not self.settings_dict["OPTIONS"].get(PREPARED_STATEMENTS_OPTION):
            return self.cursor()
        # As Django's _cursor() and create_cursor() make theirs, with another cursor class.
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            if self.connection.prepare_threshold is None:
                self.connection.prepare_threshold = _ONLY_WHEN_ASKED
            cursor = PreparingCursor(self.connection)
            loader = self.connection.adapters.get_loader(base.TIMESTAMPTZ_OID, Format.TEXT)
            if self.timezone != loader.timezone:
                register_tzloader(self.timezone, cursor)
            return self._prepare_cursor(cursor)

    def get_new_connection(self, conn_params: dict) -> psycopg.Connection:
        connection = super().get_new_connection(conn_params)
        seconds = self.settings_dict["OPTIONS"].get(READ_TIMEOUT_OPTION)
        if seconds:
            # Django makes the connection with psycopg.connect; the subclass only overrides
            # wait() and adds no state of its own, so the object can take its class as it is
            # (the alternative, copying Django's get_new_connection, would drift from it).
            connection.__class__ = DeadlineConnection
            connection.read_timeout = float(seconds)
        return connection
