"""A batch's per-row values in one statement: a FROM item holding them, and UPDATE ... FROM it.

On a gateway's hot path a batch of rotations changes each row by its own values (the claim
writes each rotation's pending secret under its own read attempt count; the finish writes
each record's new ciphertext and each settings row's next run). The ORM says that with one
CASE per column and one WHEN (and a Q) per row, and building those cost the gateway more CPU
than the database spent running them (issue 10's profile: a third of a worker's CPU). Here
the per-row values travel as data instead of SQL:

- PostgreSQL: ``unnest(%s::<type>[], ...) AS v (col, ...)``, one typed array per column, so
  the statement's text is the same whatever the batch's size;
- SQLite: ``(SELECT column1 AS col, ... FROM (VALUES (%s, ...), ...)) AS v``.

``update_from_rows`` joins the target's rows to ``v`` by primary key (``UPDATE ... FROM``:
PostgreSQL, SQLite 3.33 and later; RETURNING needs 3.35, which vault.E006 requires). Every
value goes through its field's ``get_db_prep_save``, as the ORM would save it. The SQL given
for a column or a condition (``Sql``) names the target as ``{t}`` and the row's values as
``v``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from django.db import connections, router, transaction
from django.db.models import Field, Model


@dataclass(frozen=True)
class Sql:
    """An SQL fragment over ``{t}`` (the target) and ``v`` (the row's values), and the values
    of its ``%s`` in order, each a (field name, Python value) pair: prepared as that field
    saves it, so a datetime compares equal to the stored one."""

    text: str
    values: tuple[tuple[str, object], ...] = ()


def rows_sources(
    model: type[Model],
    fields: Sequence[str],
    rows: Sequence[tuple],
    using: str,
    *,
    other_params: int = 0,
) -> Iterator[tuple[str, list]]:
    """The FROM items ``... AS v`` holding `rows`, each with its parameters: one, unless the
    rows exceed one statement's parameter limit (SQLite's) beside the statement's
    `other_params` others, then as many as that needs. A row is a tuple in the order of
    `fields` (names of `model`'s fields; the columns of v are their column names)."""
    limit = connections[using].features.max_query_params
    per_statement = (limit - other_params) // len(fields) if limit else len(rows)
    for start in range(0, len(rows), per_statement):
        yield _source(model, fields, rows[start : start + per_statement], using)


def _source(
    model: type[Model], fields: Sequence[str], rows: Sequence[tuple], using: str
) -> tuple[str, list]:
    connection = connections[using]
    columns = [model._meta.get_field(name) for name in fields]
    prepped = [_prepped(columns, row, connection) for row in rows]
    names = [connection.ops.quote_name(field.column) for field in columns]
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in columns)
        params = [list(column) for column in zip(*prepped, strict=True)] or [[] for _ in columns]
        return f"unnest({arrays}) AS v ({', '.join(names)})", params
    row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
    renamed = ", ".join(f"column{n} AS {name}" for n, name in enumerate(names, start=1))
    values = ", ".join([row_sql] * len(rows))
    return (
        f"(SELECT {renamed} FROM (VALUES {values})) AS v",
        [value for row in prepped for value in row],
    )


def _prepped(columns: Sequence[Field], row: tuple, connection) -> list:
    return [
        field.get_db_prep_save(value, connection) for field, value in zip(columns, row, strict=True)
    ]


def update_from_rows(
    model: type[Model],
    *,
    fields: Sequence[str],
    rows: Sequence[tuple],
    set_values: Mapping[str, object] | None = None,
    set_sql: Mapping[str, str | Sql] | None = None,
    where: str | Sql = "",
    returning: bool = False,
) -> list | int:
    """UPDATE `model`'s rows whose primary key is the first of `fields` in one of `rows`.

    `set_values`: columns set to the same value in every row ({field name: Python value});
    `set_sql`: columns set by an SQL expression ({field name: SQL}); `where`: further
    conditions. Returns the primary keys of the rows changed when `returning`, else how
    many. Rows beyond one statement's parameter limit (SQLite's) go in several statements.
    """
    if not rows:
        return [] if returning else 0
    using = router.db_for_write(model)
    connection = connections[using]
    meta = model._meta
    if meta.get_field(fields[0]) != meta.pk:
        raise ValueError("update_from_rows: the first field must be the primary key")
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    assignments, set_params = [], []
    for name, value in (set_values or {}).items():
        field = meta.get_field(name)
        assignments.append(f"{quote(field.column)} = %s")
        set_params.append(field.get_db_prep_save(value, connection))
    for name, sql in (set_sql or {}).items():
        text, params = _fragment(model, sql, table, connection)
        assignments.append(f"{quote(meta.get_field(name).column)} = {text}")
        set_params += params
    pk = quote(meta.pk.column)
    condition, where_params = _fragment(model, where, table, connection)
    condition = f"{table}.{pk} = v.{pk}" + (f" AND ({condition})" if condition else "")
    tail = f" RETURNING {table}.{pk}" if returning else ""
    sources = rows_sources(
        model, fields, rows, using, other_params=len(set_params) + len(where_params)
    )
    changed: list = []
    count = 0
    with transaction.mark_for_rollback_on_error(using=using), connection.cursor() as cursor:
        for source, source_params in sources:
            cursor.execute(
                f"UPDATE {table} SET {', '.join(assignments)} FROM {source} "
                f"WHERE {condition}{tail}",
                set_params + source_params + where_params,
            )
            if returning:
                changed += [row[0] for row in cursor.fetchall()]
            else:
                count += cursor.rowcount
    return changed if returning else count


def _fragment(model: type[Model], sql: str | Sql, table: str, connection) -> tuple[str, list]:
    if isinstance(sql, str):
        sql = Sql(sql)
    params = [
        model._meta.get_field(name).get_db_prep_save(value, connection)
        for name, value in sql.values
    ]
    return sql.text.format(t=table), params
