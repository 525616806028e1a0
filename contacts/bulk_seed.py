"""Loading demo data into PostgreSQL fast: binary COPY from parallel workers, with the
secondary indexes dropped during the load and rebuilt afterwards, two at a time.

One sorted build per index is several times faster than maintaining a dozen indexes row by
row, and the demo rows reference only rows generated just before them, so per-row
foreign-key checks are skipped. The load is therefore not one transaction: an interrupted
run leaves fewer contacts (the next run tops them up) and may leave indexes missing (the
next run rebuilds them first). This is a demo and benchmark tool; never point it at a live
production database.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

# Below this many new contacts a plain single-connection COPY with live indexes is faster
# than dropping and rebuilding every index.
BULK_LOAD_THRESHOLD = 50_000


def tables() -> list[tuple[str, Any, tuple[str, ...]]]:
    """(batch attribute, model, columns) for every table the demo data fills."""
    from contacts import demo_data
    from contacts.models import AuditEvent, Contact, ContactTag, StripeAccount
    from helpdesk.models import Conversation, Message

    return [
        ("contacts", Contact, demo_data.CONTACT_COLUMNS),
        ("contact_tags", ContactTag, demo_data.CONTACT_TAG_COLUMNS),
        ("stripe_accounts", StripeAccount, demo_data.STRIPE_COLUMNS),
        ("conversations", Conversation, demo_data.CONVERSATION_COLUMNS),
        ("messages", Message, demo_data.MESSAGE_COLUMNS),
        ("audit_events", AuditEvent, demo_data.AUDIT_COLUMNS),
    ]


def declared_indexes() -> dict[str, str]:
    """name -> CREATE INDEX statement of every non-unique index of the loaded tables."""
    from django.db import connection

    from contacts.search_index import TRIGRAM_INDEX_NAME, TRIGRAM_INDEX_SQL

    declared = {TRIGRAM_INDEX_NAME: TRIGRAM_INDEX_SQL}
    with connection.schema_editor(collect_sql=True) as editor:
        for _, model, _ in tables():
            for index in model._meta.indexes:
                declared[index.name] = str(index.create_sql(model, editor))
    return declared


def repair_indexes() -> list[str]:
    """Create the declared indexes that are missing; returns their names."""
    from django.db import connection

    declared = declared_indexes()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = ANY(%s)",
            [[model._meta.db_table for _, model, _ in tables()]],
        )
        existing = {row[0] for row in cursor.fetchall()}
    missing = [name for name in declared if name not in existing]
    build_indexes([declared[name] for name in missing])
    return missing


def connection_params() -> dict[str, Any]:
    """Django's connection parameters as plain values (picklable for worker processes)."""
    from django.db import connection

    params = connection.get_connection_params()
    return {k: v for k, v in params.items() if isinstance(v, (str, int, float))}


def _connect(params: dict | None = None) -> psycopg.Connection:
    return psycopg.connect(**(params or connection_params()), autocommit=True)


def build_indexes(statements: list[str]) -> None:
    """Run CREATE INDEX statements two at a time, each on its own connection (builds of one
    table only share a SHARE lock). The long trigram GIN build starts first; the btree
    builds fill both lanes around it."""
    if not statements:
        return

    def run(statement: str) -> None:
        with _connect() as conn:
            conn.execute("SET maintenance_work_mem = '512MB'")
            # One process per build: parallel workers would only fight for the two cores.
            conn.execute("SET max_parallel_maintenance_workers = 0")
            conn.execute(statement)

    ordered = sorted(statements, key=lambda s: "USING gin" not in s)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(run, statement) for statement in ordered]:
            future.result()


def copy_types(model, columns) -> list[str]:
    """PostgreSQL type names of `columns`, as binary COPY needs them."""
    from django.db import connection

    aliases = {"bigint": "int8", "integer": "int4", "smallint": "int2", "boolean": "bool"}
    by_column = {field.column: field for field in model._meta.concrete_fields}
    names = []
    for column in columns:
        field = by_column[column]
        db_type = (field.target_field if field.is_relation else field).db_type(connection)
        db_type = db_type.split("(")[0].strip()
        if db_type == "timestamp with time zone":
            db_type = "timestamptz"
        names.append(aliases.get(db_type, db_type))
    return names


def copy_batches(cursor: psycopg.Cursor, batches) -> dict[str, int]:
    """COPY every batch through `cursor` (the caller owns the transaction)."""
    layout = [
        (name, model, columns, copy_types(model, columns)) for name, model, columns in tables()
    ]
    totals = {name: 0 for name, _, _, _ in layout}
    for batch in batches:
        for name, model, columns, types in layout:
            rows = getattr(batch, name)
            if not rows:
                continue
            table = model._meta.db_table
            sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
            with cursor.copy(sql) as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
            totals[name] += len(rows)
    return totals


def _load_slice(job: tuple[dict, dict]) -> dict[str, int]:
    """Worker process: generate one slice of the demo data and COPY it."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from contacts import demo_data

    kwargs, params = job
    # The parent's connection parameters, not settings: under tests they name the test DB.
    with _connect(params) as conn, conn.transaction(), conn.cursor() as cursor:
        # The generated rows reference only rows created just before them, so the per-row
        # foreign-key checks can be skipped (needs a superuser; otherwise they run).
        try:
            with conn.transaction():
                cursor.execute("SET LOCAL session_replication_role = replica")
        except psycopg.errors.InsufficientPrivilege:
            pass
        return copy_batches(cursor, demo_data.generate(**kwargs))


def load(plan: dict, count: int) -> dict[str, int]:
    """Add `count` demo contacts described by `plan` (see demo_data.generate)."""
    from django.db import connection

    if count < BULK_LOAD_THRESHOLD:
        from django.db import transaction

        from contacts import demo_data

        with transaction.atomic(), connection.cursor() as cursor:
            return copy_batches(cursor.cursor, demo_data.generate(count=count, **plan))

    declared = declared_indexes()
    with _connect() as conn:
        for name in declared:
            conn.execute(f'DROP INDEX IF EXISTS "{name}"')
    workers = max(2, min(os.cpu_count() or 2, 4))
    base_ms = int(plan["now"].timestamp() * 1000) - count
    size = -(-count // workers)
    slices = [
        {
            **plan,
            "count": min(size, count - offset),
            "first_number": plan["first_number"] + offset,
            "first_ms": base_ms + offset,
            "seed": plan["seed"] + index * 7919,
            # A million "created by demo data" history rows would only slow the load.
            "audit": False,
        }
        for index, offset in enumerate(range(0, count, size))
    ]
    totals: dict[str, int] = {}
    with multiprocessing.get_context("spawn").Pool(processes=len(slices)) as pool:
        params = connection_params()
        for result in pool.map(_load_slice, [(s, params) for s in slices]):
            for name, rows in result.items():
                totals[name] = totals.get(name, 0) + rows
    build_indexes(list(declared.values()))
    with connection.cursor() as cursor:
        for _, model, _ in tables():
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    return totals
