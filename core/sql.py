"""The kernel's hand-written SQL: the rate-limit counters, counted on every API and widget
call (one statement however many limits a call checks; see core.ratelimit)."""

from __future__ import annotations

from core.models import RateCounter

# Rows of ended windows each call deletes on PostgreSQL (more expire than calls arrive
# only if most callers never come back; a handful per call keeps up with any real load).
PRUNE_PER_CALL = 8

TABLE = RateCounter._meta.db_table
RATE_UPSERT_SQL = (
    f"INSERT INTO {TABLE} (key, window_start, count, expires_at) VALUES <rows>"
    f" ON CONFLICT (key) DO UPDATE SET count = CASE"
    f" WHEN {TABLE}.window_start = excluded.window_start THEN {TABLE}.count + %s"
    " ELSE excluded.count END,"
    " window_start = excluded.window_start, expires_at = excluded.expires_at"
    " RETURNING key, count"
)
# PostgreSQL, when the statement is a transaction of its own: it commits without waiting for
# the WAL flush (set_config(..., true) lasts until that commit).
RATE_RELAXED_COMMIT = ", set_config('synchronous_commit', 'off', true)"
# PostgreSQL: the same statement, after deleting a few long-ended counters of others.
RATE_PRUNE_CTE = (
    f"WITH pruned AS (DELETE FROM {TABLE} WHERE key IN ("
    f"SELECT key FROM {TABLE} WHERE expires_at < %s AND key NOT IN (<keys>)"
    f" LIMIT {PRUNE_PER_CALL} FOR UPDATE SKIP LOCKED)) "
)
