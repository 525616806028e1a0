"""The identity app's hand-written SQL: the visitor session every identify starts with."""

from __future__ import annotations

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
    f" RETURNING {', '.join(f.column for f in VisitorSession._meta.concrete_fields)}"
)
