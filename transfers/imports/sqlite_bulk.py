"""Talking to SQLite in bulk from the import's threads (transfers.imports.sqlite_writer):
IN lists and multi-row statements under the connection's variable limit, results read as
one JSON array, a page cache big enough for the contacts table's indexes, SQLite's own
lower-casing, and no cyclic garbage collection while a batch is cleaned or written."""

from __future__ import annotations

import gc
import json
import sqlite3
import string
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

# SQLite's lower() folds ASCII letters only (no ICU): the in-memory email index folds the
# stored side the same way, so it matches exactly the contacts `lower(email) = %s` would.
_SQL_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def sql_lower(text: str) -> str:
    """`text` as SQLite's lower() gives it (ASCII letters only)."""
    return text.lower() if text.isascii() else text.translate(_SQL_LOWER)


def chunked(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """`values` in slices of at most `size`."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def variable_limit(raw: sqlite3.Connection) -> int:
    """How many parameters one statement may hold on this connection
    (SQLITE_LIMIT_VARIABLE_NUMBER: 32,766 by default, 999 before SQLite 3.32, and lowered
    per connection by some hosts)."""
    return raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


# Why whole chunks per statement: Python's sqlite3 lets go of the GIL for every step of a
# statement, i.e. for every row an executemany() inserts or a SELECT returns, and takes it
# back afterwards. While the engine's reading thread cleans the next batch (Python, holding
# the GIL) each take-back may wait for the interpreter's switch interval: inserting 10,000
# contacts took 5 s that way instead of 0.2 s. One statement per chunk of rows, and one
# JSON array per chunk of results, cost one step each.
ROWS_PER_STATEMENT = 1000

# The page cache (KiB, as PRAGMA cache_size takes it negated) the import's connection gets
# at least: the contacts table has 16 indexes, which at 100,000 contacts no longer fit the
# default 2 MiB, so each insert read most of its index pages back from the OS (a sixth of
# SQLite's time inserting 100,000 contacts into 100,000). Only ever raised, never lowered;
# pages are allocated as they are used.
CACHE_KIB = 64 * 1024


def cache_kib(raw: sqlite3.Connection) -> int:
    """The connection's page cache in KiB (PRAGMA cache_size: pages, or -KiB)."""
    size = raw.execute("PRAGMA cache_size").fetchone()[0]
    if size < 0:
        return -size
    return size * raw.execute("PRAGMA page_size").fetchone()[0] // 1024


def select_in(
    raw: sqlite3.Connection,
    columns: str,
    rest: str,
    values: Iterable[Any],
    *,
    before: Sequence[Any] = (),
) -> list[list[Any]]:
    """The rows of `SELECT columns rest` whose `rest` holds one IN list (`{marks}`) over
    `values`, in chunks under the variable limit, each chunk read as one JSON array (text,
    numbers and NULL come back as they are stored; datetimes as their text)."""
    values = list(dict.fromkeys(values))
    size = max(1, variable_limit(raw) - len(before))
    sql = f"SELECT json_group_array(json_array({columns})) {rest}"
    found: list[list[Any]] = []
    for chunk in chunked(values, size):
        statement = sql.format(marks=",".join("?" * len(chunk)))
        found += json.loads(raw.execute(statement, (*before, *chunk)).fetchone()[0])
    return found


def insert_rows(raw: sqlite3.Connection, head: str, template: str, rows: Sequence[tuple]) -> None:
    """`head VALUES template, template, …` for `rows`: many rows per statement."""
    width = template.count("?")
    size = max(1, min(ROWS_PER_STATEMENT, variable_limit(raw) // width))
    for chunk in chunked(rows, size):
        raw.execute(
            f"{head} VALUES {','.join([template] * len(chunk))}",
            [value for row in chunk for value in row],
        )


def update_rows(
    raw: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[tuple]
) -> None:
    """Set `columns` of the rows of `table` named by id: each of `rows` is (id, *values),
    many rows per statement (UPDATE … FROM VALUES, SQLite 3.33+)."""
    assignments = ", ".join(f"{c} = v.column{n}" for n, c in enumerate(columns, start=2))
    width = len(columns) + 1
    template = f"({','.join('?' * width)})"
    size = max(1, min(ROWS_PER_STATEMENT, variable_limit(raw) // width))
    for chunk in chunked(rows, size):
        raw.execute(
            f"UPDATE {table} AS t SET {assignments} "  # noqa: S608 - names from the models
            f"FROM (VALUES {','.join([template] * len(chunk))}) AS v WHERE t.id = v.column1",
            [value for row in chunk for value in row],
        )


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch is cleaned or written.

    A batch is tens of thousands of small objects that live until it is written, and each
    batch's worth of survivors sets off a full collection that walks every object of the
    process: a third of the CPU time of an import (measured, 100,000 rows). Their memory
    goes by reference counting, as soon as the batch is done, and what little cyclic
    garbage the import makes meanwhile is collected once no batch is being cleaned or
    written. Counted across threads: the reading thread cleans while the main one writes."""
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()
