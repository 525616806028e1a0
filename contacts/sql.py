"""The contacts app's hand-written SQL, each statement where the ORM costs more than the
query (measured on identify's hot path: building a query took 0.4-0.8 ms, running it
0.1 ms) or cannot say it (removing one key from every contact's JSON). Each is pinned by
tests/contacts/test_sql_hot_statements.py."""

from __future__ import annotations

from contacts.models import ADOPTABLE_SOURCES, Contact
from core.rows import columns

TABLE = Contact._meta.db_table
# Every column by name, in field order (core.rows), never `SELECT *`: a statement a
# connection has prepared (DB_PREPARE_THRESHOLD) fails with "cached plan must not change
# result type" once a migration adds a column under it; a named list keeps its result type.
COLUMNS = columns(Contact)

# The agent's contact by external id or fingerprint (every identify and upsert).
LOCKED_BY = {
    column: f"SELECT {COLUMNS} FROM {TABLE} WHERE agent_id = %s AND {column} = %s LIMIT 1"
    for column in ("external_id", "fingerprint")
}

# The contacts a signed identify may adopt by email (SPEC 6): live, verified by a trusted
# channel (API, import, staff), no external id yet; two rows are enough to know "several".
_ADOPTABLE = (
    f"SELECT id, created_at FROM {TABLE} WHERE agent_id = %s AND lower(email) = %s"
    " AND deleted_at IS NULL AND external_id IS NULL AND identity = 'verified'"
    f" AND identity_source IN ({', '.join(repr(s) for s in ADOPTABLE_SOURCES)})"
)
# On PostgreSQL the lookup by email is fenced off (MATERIALIZED) from the ORDER BY … LIMIT:
# left together, an agent the statistics do not know yet (a new one on a large table)
# looks tiny, and the planner walks its whole created_at index to save a sort of 0–2 rows.
ADOPTION_CANDIDATES = {
    "postgresql": f"WITH m AS MATERIALIZED ({_ADOPTABLE}) SELECT id FROM m"
    " ORDER BY created_at, id LIMIT 2",
    "sqlite": f"{_ADOPTABLE} ORDER BY created_at, id LIMIT 2",
}

# The live self-reported contacts without an external id that have this email, oldest
# first: what a verified identify folds in. Every verified identify asks and almost always
# finds none; the contact_self_reported_email index answers it in this order.
SELF_REPORTED_TWINS = (
    f"SELECT id FROM {TABLE} WHERE agent_id = %s AND lower(email) = %s"
    " AND deleted_at IS NULL AND identity = 'self_reported' AND external_id IS NULL"
    " AND id <> %s ORDER BY created_at, id LIMIT %s"
)

# Activity: last_seen_at only moves forward, first_seen_at is set once.
_SEEN = (
    f"UPDATE {TABLE} SET last_seen_at = CASE WHEN last_seen_at IS NULL"
    " OR last_seen_at < %s THEN %s ELSE last_seen_at END,"
    " first_seen_at = COALESCE(first_seen_at, %s)"
)
MARK_SEEN = _SEEN + " WHERE id = %s"
# Identify: the agent's contact by external id, marked seen, locked (an UPDATE locks its
# row until the transaction ends) and read back in one statement instead of three.
SEEN_BY_EXTERNAL_ID = _SEEN + f" WHERE agent_id = %s AND external_id = %s RETURNING {COLUMNS}"

# A deleted attribute's values, out of every contact of the agent.
REMOVE_ATTRIBUTE = {
    "postgresql": (
        f"UPDATE {TABLE} SET attributes = attributes - %(key)s "
        "WHERE agent_id = %(agent)s AND attributes ? %(key)s"
    ),
    "sqlite": (
        f"UPDATE {TABLE} SET attributes = json_remove(attributes, %(path)s) "
        "WHERE agent_id = %(agent)s AND json_type(attributes, %(path)s) IS NOT NULL"
    ),
}


# How many soft-deleted contacts of an agent carry the tag named (SQLite; tag names are
# unique per agent whatever their case, uniq_tag_name_ci, and a contact links a tag once):
# the agent's deleted contacts (few, their own partial index) lead and each probes its
# links; CROSS JOIN fixes SQLite's join order.
TAGGED_DELETED_COUNT = (
    "SELECT COUNT(*) FROM contacts_contact AS c CROSS JOIN contacts_contacttag AS link "
    "ON link.contact_id = c.id WHERE c.agent_id = %(agent)s AND c.deleted_at IS NOT NULL "
    "AND link.tag_id = (SELECT id FROM contacts_tag "
    "WHERE agent_id = %(agent)s AND lower(name) = lower(%(name)s))"
)
