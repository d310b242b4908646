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

It refuses, when it compiles, what it could not run faithfully: `select_related` (only the
model's own instance is built; annotate the few related columns needed instead), and a placeholder that does not
reach the parameters as itself (a LIKE pattern, an IN list, a value the field converts). Every
other value in the builder is fixed at compile time, so a builder must not read the clock or
anything else that changes: only its arguments vary.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet

# Placeholder values: unlike anything a caller passes, and of the type the field expects.
_TEXT = "\x1fprepared:{}\x1f"
_NUMBER_BASE = -7_310_000_000_000


class PreparedQuery:
    """`build(**placeholders)` compiled once per database alias, run with `run(**values)`."""

    def __init__(self, build: Callable[..., QuerySet], **placeholders: type) -> None:
        for name, kind in placeholders.items():
            if kind not in (str, int):
                raise TypeError(f"placeholder {name}: only str and int values can be prepared")
        self._build = build
        self._placeholders = placeholders
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _placeholder_values(self) -> dict[str, object]:
        return {
            name: _TEXT.format(name) if kind is str else _NUMBER_BASE - n
            for n, (name, kind) in enumerate(self._placeholders.items())
        }

    def _compile(self, using: str) -> _Compiled:
        stand_ins = self._placeholder_values()
        queryset = self._build(**stand_ins).using(using)
        if queryset.query.select_related:
            raise ValueError("a prepared query cannot select_related: annotate the columns")
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        by_value = {value: name for name, value in stand_ins.items()}
        slots: list = []
        for param in params:
            if isinstance(param, (str, int)) and param in by_value:
                slots.append(_Slot(by_value[param]))
                continue
            if isinstance(param, str) and any(
                isinstance(v, str) and v in param for v in stand_ins.values()
            ):
                raise ValueError(f"a placeholder reaches the SQL changed ({param!r})")
            slots.append(param)
        missing = set(stand_ins) - {s.name for s in slots if isinstance(s, _Slot)}
        if missing:
            raise ValueError(f"placeholders not in the SQL: {', '.join(sorted(missing))}")
        # What ModelIterable reads off the compiler to turn rows into instances.
        select = compiler.select
        positions = compiler.klass_info["select_fields"]
        return _Compiled(
            model=compiler.klass_info["model"],
            sql=sql,
            slots=slots,
            fields=(positions[0], positions[-1] + 1),
            names=[select[i][0].target.attname for i in positions],
            annotations=dict(compiler.annotation_col_map),
            converters=compiler.get_converters([column[0] for column in select]),
        )

    def run(self, using: str = DEFAULT_DB_ALIAS, **values: object) -> list:
        """The rows `build(**values)` would give, without building or compiling it."""
        if values.keys() != self._placeholders.keys():
            raise TypeError(f"expected the values {', '.join(self._placeholders)}")
        for name, kind in self._placeholders.items():
            if type(values[name]) is not kind:
                raise TypeError(f"{name} must be {kind.__name__}")
        compiled = self._compiled.get(using)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(using) or self._compile(using)
                self._compiled[using] = compiled
        params = [values[s.name] if isinstance(s, _Slot) else s for s in compiled.slots]
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        return [compiled.instance(row, connection, using) for row in rows]


@dataclass(frozen=True)
class _Compiled:
    model: type[Model]
    sql: str
    slots: list
    fields: tuple[int, int]  # the row's slice that holds the model's own fields
    names: list[str]
    annotations: dict[str, int]
    converters: dict

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
        for name, position in self.annotations.items():
            setattr(obj, name, row[position])
        return obj


class _Slot:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name
