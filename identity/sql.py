"""The identity app's hand-written SQL: the visitor session every identify starts with."""

from __future__ import annotations

from contacts import sql as contacts_sql
from contacts.models import Contact
from core.rows import columns
from identity.models import VisitorSession

# One statement, race-free on both databases: two identifies of a new visitor both INSERT,
# the unique (agent, visitor_id) constraint turns the second into an update of the first.
_INSERT_SESSION = (
    f"INSERT INTO {VisitorSession._meta.db_table}"
    " (id, agent_id, visitor_id, contact_id, created_contact, signed, created_at, last_seen_at)"
)
_SESSION_VALUES = "%s, %s, %s, NULL, %s, %s, %s, %s"
_ON_CONFLICT = (
    " ON CONFLICT (agent_id, visitor_id) DO UPDATE SET last_seen_at = excluded.last_seen_at"
    # Every column by name: a prepared statement keeps its result type when a migration
    # adds a column (`RETURNING *` would fail with "cached plan must not change result type").
    f" RETURNING {columns(VisitorSession)}"
)
SESSION_UPSERT = f"{_INSERT_SESSION} VALUES ({_SESSION_VALUES}){_ON_CONFLICT}"

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

# A returning signed-in visitor, in one statement instead of a transaction of four: their
# contact found by external id and marked seen (contacts.sql.SEEN_BY_EXTERNAL_ID), their
# session upserted, and whether self-reported contacts with the contact's email wait to be
# folded in (contacts.sql.SELF_REPORTED_TWINS, asked of the row as found). The commit is
# relaxed as above. One row: the session's columns, the contact's (NULLs when no contact
# has the external id), the twins flag. The caller uses the answer only when nothing else
# is to be written (identity.services.returning_visitor); otherwise it runs the full
# identify, to which this statement's writes are the same idempotent first steps.
RETURNING_VISITOR = (
    f"WITH contact AS ({contacts_sql.SEEN_BY_EXTERNAL_ID}),"
    # The session's row is locked after the contact's, as the full identify locks them:
    # reading the contact CTE's count makes its UPDATE run first.
    f" session AS ({_INSERT_SESSION} SELECT {_SESSION_VALUES}"
    f" FROM (SELECT count(*) FROM contact) AS contact_first{_ON_CONFLICT})"
    f" SELECT {columns(VisitorSession, of='session')}, {columns(Contact, of='contact')},"
    " contact.email <> '' AND EXISTS ("
    f"SELECT 1 FROM {Contact._meta.db_table} twin WHERE twin.agent_id = contact.agent_id"
    " AND lower(twin.email) = lower(contact.email) AND twin.deleted_at IS NULL"
    " AND twin.identity = 'self_reported' AND twin.external_id IS NULL"
    " AND twin.id <> contact.id) AS twins,"
    " set_config('synchronous_commit', 'off', true) AS relaxed_commit"
    " FROM session LEFT JOIN contact ON true"
)
