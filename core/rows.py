"""Model instances from hand-written SQL, without `Model.objects.raw()`'s per-call setup.

`raw()` works out, on every call, which columns map to which fields, the order `__init__`
wants them in and each column's converters; on identify's hot path that cost more than the
statement. The statements here select every concrete column by name, in field order
(`columns(model)`), so all of that is known once per model and database.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import connections
from django.db.models import Model
from django.db.models.sql import Query


def columns(model: type[Model], *, of: str = "") -> str:
    """Every concrete column by name, in field order: what `instance` expects. (Never `*`:
    a prepared statement must keep its result type when a migration adds a column.) `of`
    qualifies each with a table or CTE name, for a statement that reads two models."""
    prefix = f"{of}." if of else ""
    return ", ".join(f"{prefix}{f.column}" for f in model._meta.concrete_fields)


def width(model: type[Model]) -> int:
    """How many values `columns(model)` selects."""
    return len(model._meta.concrete_fields)


@cache
def _shape(model: type[Model], alias: str) -> tuple[list[str], list[tuple[int, list, Any]]]:
    """The attribute names `from_db` takes and, per column that needs any, its converters
    (the backend's, then the field's), worked out once per model and database."""
    connection = connections[alias]
    fields = model._meta.concrete_fields
    compiler = connection.ops.compiler("SQLCompiler")(Query(model), connection, alias)
    converters = compiler.get_converters([f.get_col(model._meta.db_table) for f in fields])
    return [f.attname for f in fields], [
        (pos, funcs, expression) for pos, (funcs, expression) in converters.items()
    ]


def instance(model: type[Model], row: tuple | None, *, using: str = "default") -> Any:
    """The `model` instance for a row of `SELECT columns(model) …`, or None for no row; as
    `raw()` would build it (database converters applied, `_state` set)."""
    if row is None:
        return None
    connection = connections[using]
    names, converters = _shape(model, using)
    values = list(row)
    for pos, funcs, expression in converters:
        value = values[pos]
        for convert in funcs:
            value = convert(value, expression, connection)
        values[pos] = value
    return model.from_db(using, names, values)
