"""The identity app's hand-written SQL: the visitor session every identify starts with."""

from __future__ import annotations

from core.rows import columns
from identity.models import VisitorSession

# One statement, race-free on both databases: two identifies of a new visitor both INSERT,
# the unique (agent, visitor_id) constraint turns the second into an update of the first.
SESSION_UPSERT = (
    f"INSERT INTO {VisitorSession._meta.db_table}"
    " (id, agent_id, visitor_id, contact_id, created_contact, signed, created_at, last_seen_at)"
    " VALUES (%s, %s, %s, NULL, %s, %s, %s, %s)"
    " ON CONFLICT (agent_id, visitor_id) DO UPDATE SET last_seen_at = excluded.last_seen_at"
    # Every column by name: a prepared statement keeps its result type when a migration
    # adds a column (`RETURNING *` would fail with "cached plan must not change result type").
    f" RETURNING {columns(VisitorSession)}"
)

# The same, also letting the transaction's COMMIT return before its WAL record reaches the
# disk (`set_config(..., true)` is SET LOCAL; RETURNING evaluates it for the one row an
# upsert always returns). Identify is idempotent and re-sent on every page load, so a crash
# can at worst lose the last fraction of a second of last-seen times and sessions, which
# the next identify recreates; waiting for the flush would otherwise dominate its latency.
# Saying it here rather than in a SET LOCAL of its own saves identify a round trip.
# PostgreSQL only; hand-off tokens, messages and dashboard edits keep full durability.
SESSION_UPSERT_RELAXED = (
    SESSION_UPSERT + ", set_config('synchronous_commit', 'off', true) AS relaxed_commit"
)
