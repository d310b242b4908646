"""Querysets compiled to SQL once per process, for the few reads on a hot path where Django
building the SQL costs several times what running it does.

Measured on the secrets API (2 vCPU, PostgreSQL, 2026-12-01): Django spent 0.4 to 0.9 ms of CPU
building and compiling each of GetSecretValue's reads, and the database about 0.1 ms answering
it. Each read is still written with the ORM, in the module that owns its rule (vault/access.py
says which records an application may read): `PreparedQuery` calls that builder once, with a
placeholder for each value that varies, and keeps what Django's compiler made of it: the SQL,
where each placeholder landed among its parameters, which columns fill the model's fields and
annotations, and the database's converters. A run executes the SQL with the real values and
builds the instances the way Django's ModelIterable does (`Model.from_db`, annotations set as
attributes, converters applied), from the same compiler attributes (Django 5.2).

`select_related` instances are built as ModelIterable builds them too, with Django's related
populators (a gateway's claim reads each rotation with its record, settings, configuration and
gateway: compiling that read was a tenth of a worker's CPU). A datetime placeholder reaches
the parameters as the database takes a datetime (`adapt_datetimefield_value`), so a
comparison with the clock is prepared with the time as a placeholder.

On a gateway's PostgreSQL connection the SQL is also prepared on the server, so the server
plans it once per connection rather than at each run (vault/dbbackend/base.py,
``prepared_cursor``); elsewhere it runs through Django's own cursor.

A read that locks its rows (`select_for_update`, where the database has row locks) runs only
inside a transaction, as Django's own refuses to run outside one (a gateway's claim locks its
batch and skips the rows another worker's claim holds).

It refuses, when it compiles, what it could not run faithfully: `prefetch_related`, a related
manager's queryset, `values()`, a query with no SQL (an empty IN
list), a placeholder that does not reach the parameters as itself (a LIKE pattern, a value the
field converts) or not at all, and any other parameter that changes from one build to the next
(the clock read inside the builder). It builds twice, with different stand-in values, to tell
the placeholders' parameters from the fixed ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable, get_related_populators
from django.db.transaction import TransactionManagementError

# Stand-in values the builder is called with, twice, each time a different set: a parameter
# that differs between the two builds is a placeholder's slot (it must equal that placeholder's
# stand-in both times); one that is the same is fixed. Numbers fit every integer column
# (a small positive one too: Django refuses a lookup value outside the column's range).
_TEXT = "\x1fprepared:{}:{}\x1f"
_NUMBER_BASE = 30_000
_LARGEST = 2**63 - 1  # a value beyond any column: nothing can match it
_TIME_BASE = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
_KINDS = (str, int, datetime)


class PreparedQuery:
    """`build(**placeholders)` compiled once per database alias, run with `run(**values)`."""

    def __init__(self, build: Callable[..., QuerySet], **placeholders: type) -> None:
        for name, kind in placeholders.items():
            if kind not in _KINDS:
                raise TypeError(
                    f"placeholder {name}: only str, int and datetime values can be prepared"
                )
        self._build = build
        self._placeholders = placeholders
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _stand_ins(self, build: int) -> dict[str, object]:
        stand_ins: dict[str, object] = {}
        for n, (name, kind) in enumerate(self._placeholders.items()):
            number = _NUMBER_BASE + 2 * n + build
            if kind is str:
                stand_ins[name] = _TEXT.format(name, build)
            elif kind is datetime:
                stand_ins[name] = _TIME_BASE + timedelta(microseconds=number)
            else:
                stand_ins[name] = number
        return stand_ins

    def _queryset(self, stand_ins: dict, using: str) -> QuerySet:
        queryset = self._build(**stand_ins).using(using)
        if queryset._prefetch_related_lookups or queryset._known_related_objects:
            raise ValueError(
                "a prepared query builds plain instances: no prefetch, no related manager"
            )
        if queryset._iterable_class is not ModelIterable:
            raise ValueError("a prepared query reads model instances")
        return queryset

    def _sql(self, stand_ins: dict, using: str) -> tuple:
        compiler = self._queryset(stand_ins, using).query.get_compiler(using=using)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            raise ValueError("a prepared query must have SQL (not an empty IN list)") from None
        return compiler, sql, list(params)

    def _compile(self, using: str) -> _Compiled:
        first, second = self._stand_ins(1), self._stand_ins(2)
        compiler, sql, params = self._sql(first, using)
        _, sql_again, params_again = self._sql(second, using)
        if sql != sql_again or len(params) != len(params_again):
            raise ValueError("the builder's SQL changes with its values: it cannot be prepared")
        connection = connections[using]
        names = {
            (_param(first[name], connection), _param(second[name], connection)): name
            for name in first
        }
        slots: list = []
        for param, param_again in zip(params, params_again, strict=True):
            if param == param_again:
                slots.append(param)
            elif (param, param_again) in names:
                slots.append(_Slot(names[param, param_again]))
            else:
                raise ValueError(
                    f"a parameter changed between builds without being a placeholder ({param!r}): "
                    "a placeholder the SQL changed (a LIKE pattern), or a value such as the clock"
                )
        missing = set(first) - {s.name for s in slots if isinstance(s, _Slot)}
        if missing:
            raise ValueError(f"placeholders not in the SQL: {', '.join(sorted(missing))}")
        # What ModelIterable reads off the compiler to turn rows into instances.
        select = compiler.select
        positions = compiler.klass_info["select_fields"]
        return _Compiled(
            locks=bool(
                compiler.query.select_for_update and connection.features.has_select_for_update
            ),
            model=compiler.klass_info["model"],
            sql=sql,
            slots=slots,
            fields=(positions[0], positions[-1] + 1),
            names=[select[i][0].target.attname for i in positions],
            annotations=dict(compiler.annotation_col_map),
            converters=compiler.get_converters([column[0] for column in select]),
            related=get_related_populators(compiler.klass_info, select, using),
        )

    def run(self, using: str = DEFAULT_DB_ALIAS, **values: object) -> list:
        """The rows `build(**values)` would give, without building or compiling it."""
        if values.keys() != self._placeholders.keys():
            raise TypeError(f"expected the values {', '.join(self._placeholders)}")
        for name, kind in self._placeholders.items():
            if type(values[name]) is not kind:
                raise TypeError(f"{name} must be {kind.__name__}")
            if kind is datetime and values[name].tzinfo is None:
                raise TypeError(f"{name} must be an aware datetime")
        if any(type(v) is int and abs(v) > _LARGEST for v in values.values()):
            return []  # as the ORM: no row holds a number beyond every column's range
        compiled = self._compiled.get(using)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(using) or self._compile(using)
                self._compiled[using] = compiled
        connection = connections[using]
        if compiled.locks and connection.get_autocommit():
            # Django's own check, which compiling made only the first time.
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        params = [
            _param(values[s.name], connection) if isinstance(s, _Slot) else s
            for s in compiled.slots
        ]
        # On PostgreSQL a gateway's connection prepares it on the server too: planned once
        # per connection, not at each run (vault/dbbackend/base.py).
        prepared_cursor = getattr(connection, "prepared_cursor", connection.cursor)
        with prepared_cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        return [compiled.instance(row, connection, using) for row in rows]


@dataclass(frozen=True)
class _Compiled:
    locks: bool  # SELECT ... FOR UPDATE: only inside a transaction
    model: type[Model]
    sql: str
    slots: list
    fields: tuple[int, int]  # the row's slice that holds the model's own fields
    names: list[str]
    annotations: dict[str, int]
    converters: dict
    related: list  # Django's RelatedPopulator for each select_related model

    def instance(self, row: tuple, connection, using: str) -> Model:
        if self.converters:
            row = list(row)
            for position, (converters, expression) in self.converters.items():
                value = row[position]
                for convert in converters:
                    value = convert(value, expression, connection)
                row[position] = value
        start, end = self.fields
        obj = self.model.from_db(using, self.names, row[start:end])
        for populator in self.related:
            populator.populate(row, obj)
        for name, position in self.annotations.items():
            setattr(obj, name, row[position])
        return obj


def _param(value: object, connection) -> object:
    """A placeholder's value as the query's parameters hold it."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


class _Slot:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name
