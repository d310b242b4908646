"""UPDATE ... RETURNING with the ORM's conditions and changes: the primary keys of the rows one
statement changed, which QuerySet.update() cannot tell (it returns a count).

A gateway claims a batch of rotations in one statement, each row under its own conditions, and
must know exactly which it won; a follow-up SELECT could mistake another worker's claim for its
own. PostgreSQL and SQLite (3.35 and later) both support RETURNING.
"""

from __future__ import annotations

from django.db import connections, router, transaction
from django.db.models import QuerySet
from django.db.models.sql import UpdateQuery


def update_returning_pks(queryset: QuerySet, changes: dict) -> list:
    """`queryset.update(**changes)`, returning the primary keys of the rows it changed."""
    if queryset.query.is_sliced or queryset.query.combinator:
        raise TypeError("cannot update a sliced or combined queryset")
    using = router.db_for_write(queryset.model, **queryset._hints)
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(changes)
    query.annotations = {}  # as QuerySet.update: none reach the conditions' subquery
    query.clear_select_clause()
    if query.related_updates:
        raise ValueError("update_returning_pks updates one table only")
    statement, params = query.get_compiler(using).as_sql()
    if not statement:
        return []
    connection = connections[using]
    pk = connection.ops.quote_name(queryset.model._meta.pk.column)
    with transaction.mark_for_rollback_on_error(using=using), connection.cursor() as cursor:
        cursor.execute(f"{statement} RETURNING {pk}", params)
        return [row[0] for row in cursor.fetchall()]
