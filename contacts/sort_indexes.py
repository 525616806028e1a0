"""An index behind each attribute a large agent's table sorts or filters by.

Sorting a million contacts by `attr.mrr` without an index sorts the whole agent (~0.8 s);
with a partial expression index on exactly the sort key the table uses
(`contacts.query.expressions.attribute_expression`, then id) a page is an index range scan
(~15 ms), and a filter on the attribute (which compares the same key) an index range too.

One index per attribute of every agent would tax every contact write, so an index is built
only where it pays: the first time someone sorts or filters a large agent (more contacts
than an exact count covers) by that attribute, a background task builds it — with CREATE
INDEX CONCURRENTLY on PostgreSQL (no write lock); on SQLite with a plain CREATE INDEX
(SQLite has one writer at a time anyway; 100,000 contacts take about half a second).
`manage.py attribute_sort_indexes` builds them up front. Deleting an attribute drops its
index.
"""

from __future__ import annotations

import hashlib
import logging

from django.db import connection, models
from django.db.models import F, Q

from attributes.models import AttributeDefinition
from contacts.models import Contact
from contacts.query.expressions import attribute_expression

logger = logging.getLogger(__name__)


def sort_index_name(*, agent_id: int, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return f"contact_attr_{agent_id}_{digest}"


def _index(definition: AttributeDefinition) -> models.Index:
    name = sort_index_name(agent_id=definition.agent_id, key=definition.key)
    if connection.vendor == "sqlite":
        # SQLite cannot use an index restricted to `agent_id = 7` for a query that binds the
        # agent as a parameter: the agent leads the index instead.
        return models.Index(
            F("agent_id"),
            attribute_expression(definition),
            F("id"),
            name=name,
            condition=Q(deleted_at__isnull=True),
        )
    return models.Index(
        attribute_expression(definition),
        F("id"),
        name=name,
        condition=Q(agent_id=definition.agent_id, deleted_at__isnull=True),
    )


def sort_index_sql(definition: AttributeDefinition) -> str:
    """CREATE INDEX (CONCURRENTLY on PostgreSQL) for the attribute's sort key (what the
    table orders and filters by)."""
    options = {"concurrently": True} if connection.vendor == "postgresql" else {}
    with connection.schema_editor(collect_sql=True) as editor:
        return str(_index(definition).create_sql(Contact, editor, **options))


def _state(name: str) -> bool | None:
    """True: a valid index exists; False: an invalid one (an interrupted build); None: none."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = %s", [name])
            return True if cursor.fetchone() else None
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s",
            [name],
        )
        row = cursor.fetchone()
    return None if row is None else bool(row[0])


def sort_index_exists(definition: AttributeDefinition) -> bool:
    name = sort_index_name(agent_id=definition.agent_id, key=definition.key)
    return _state(name) is True


def sort_index_build(definition: AttributeDefinition) -> bool:
    """Build the index unless it exists; True when one was built. Runs outside transactions."""
    name = sort_index_name(agent_id=definition.agent_id, key=definition.key)
    state = _state(name)
    if state is True:
        return False
    with connection.cursor() as cursor:
        if state is False:
            cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
        cursor.execute(sort_index_sql(definition))
        if connection.vendor == "sqlite":
            # SQLite plans from ANALYZE's statistics only: give the new index its own.
            cursor.execute(f"ANALYZE {name}")
    logger.info("Built sort index %s for attribute %s", name, definition.key)
    return True


def sort_index_drop(*, agent_id: int, key: str) -> None:
    name = sort_index_name(agent_id=agent_id, key=key)
    concurrently = " CONCURRENTLY" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f'DROP INDEX{concurrently} IF EXISTS "{name}"')
