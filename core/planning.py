"""Keeping one query from a plan kind PostgreSQL would misjudge for it.

The planner's enable_* settings, switched off for a block with SET LOCAL and back at once on
leaving: the table's attribute-only count (a bitmap scan it thinks cheaper than the index
walk it is not) and the first page that counts its matches (an index scan that filters the
whole agent). Other databases plan as they do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections, transaction

# Plan kinds a query may be kept from (PostgreSQL's enable_* settings).
PLAN_KINDS = frozenset({"bitmapscan", "indexscan"})


@contextmanager
def plans_without(kind: str, using: str = "default") -> Iterator[None]:
    """PostgreSQL plans the queries of this block without `kind` (SET LOCAL enable_… = off),
    for a query whose best plan the planner misjudges; the setting is back at once on
    leaving, even inside a caller's transaction (an error rolls the block back, and the
    setting with it). Other databases: nothing changes."""
    if kind not in PLAN_KINDS:
        raise ValueError(f"Unknown plan kind: {kind}")
    if connections[using].vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(f"SET LOCAL enable_{kind} = off")
        yield
        cursor.execute(f"SET LOCAL enable_{kind} TO DEFAULT")
