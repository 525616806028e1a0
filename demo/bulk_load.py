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

from django.db import connection, transaction

from contacts.search_index import TRIGRAM_INDEX_NAME, TRIGRAM_INDEX_SQL
from demo import data as demo_data
from demo.copying import connect, connection_params, copy_batches, tables
from demo.load_worker import load_slice

# Below this many new contacts a plain single-connection COPY with live indexes is faster
# than dropping and rebuilding every index.
BULK_LOAD_THRESHOLD = 50_000


def declared_indexes() -> dict[str, str]:
    """name -> CREATE INDEX statement of every non-unique index of the loaded tables."""
    declared = {TRIGRAM_INDEX_NAME: TRIGRAM_INDEX_SQL}
    with connection.schema_editor(collect_sql=True) as editor:
        for _, model, _ in tables():
            for index in model._meta.indexes:
                declared[index.name] = str(index.create_sql(model, editor))
    return declared


def repair_indexes() -> list[str]:
    """Create the declared indexes that are missing; returns their names."""
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


def build_indexes(statements: list[str]) -> None:
    """Run CREATE INDEX statements two at a time, each on its own connection (builds of one
    table only share a SHARE lock). The long trigram GIN build starts first; the btree
    builds fill both lanes around it."""
    if not statements:
        return

    def run(statement: str) -> None:
        with connect() as conn:
            conn.execute("SET maintenance_work_mem = '512MB'")
            # One process per build: parallel workers would only fight for the two cores.
            conn.execute("SET max_parallel_maintenance_workers = 0")
            conn.execute(statement)

    ordered = sorted(statements, key=lambda s: "USING gin" not in s)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(run, statement) for statement in ordered]:
            future.result()


def load(plan: dict, count: int) -> dict[str, int]:
    """Add `count` demo contacts described by `plan` (see demo_data.generate)."""
    if count < BULK_LOAD_THRESHOLD:
        with transaction.atomic(), connection.cursor() as cursor:
            return copy_batches(cursor.cursor, demo_data.generate(count=count, **plan))

    declared = declared_indexes()
    with connect() as conn:
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
        for result in pool.map(load_slice, [(s, params) for s in slices]):
            for name, rows in result.items():
                totals[name] = totals.get(name, 0) + rows
    build_indexes(list(declared.values()))
    analyze()
    return totals


def analyze() -> None:
    """Statistics for the tables a seed filled (either database: SQLite keeps none until
    ANALYZE, and PostgreSQL's autovacuum would wait for them)."""
    with connection.cursor() as cursor:
        for _, model, _ in tables():
            cursor.execute(f"ANALYZE {model._meta.db_table}")
