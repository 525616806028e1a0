"""An index behind each attribute sort of a large agent (PostgreSQL).

Sorting a million contacts by `attr.mrr` without an index sorts the whole agent (~0.8 s);
with a partial expression index on exactly the sort key the table uses
(`contacts.query.expressions.attribute_expression`, then id) a page is an index range scan (~15 ms).

One index per attribute of every agent would tax every contact write, so an index is built
only where it pays: the first time someone sorts a large agent (more contacts than an exact
count covers) by that attribute, a background task builds it with CREATE INDEX CONCURRENTLY
(no write lock). `manage.py attribute_sort_indexes` builds them up front. Deleting an
attribute drops its index. SQLite needs none of this (small data, no partial JSON indexes).
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
    return models.Index(
        attribute_expression(definition),
        F("id"),
        name=sort_index_name(agent_id=definition.agent_id, key=definition.key),
        condition=Q(agent_id=definition.agent_id, deleted_at__isnull=True),
    )


def sort_index_sql(definition: AttributeDefinition) -> str:
    """CREATE INDEX CONCURRENTLY for the attribute's sort key (what the table orders by)."""
    with connection.schema_editor(collect_sql=True) as editor:
        return str(_index(definition).create_sql(Contact, editor, concurrently=True))


def _state(name: str) -> bool | None:
    """True: a valid index exists; False: an invalid one (an interrupted build); None: none."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s",
            [name],
        )
        row = cursor.fetchone()
    return None if row is None else bool(row[0])


def sort_index_exists(definition: AttributeDefinition) -> bool:
    if connection.vendor != "postgresql":
        return True
    name = sort_index_name(agent_id=definition.agent_id, key=definition.key)
    return _state(name) is True


def sort_index_build(definition: AttributeDefinition) -> bool:
    """Build the index unless it exists; True when one was built. Runs outside transactions."""
    if connection.vendor != "postgresql":
        return False
    name = sort_index_name(agent_id=definition.agent_id, key=definition.key)
    state = _state(name)
    if state is True:
        return False
    with connection.cursor() as cursor:
        if state is False:
            cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
        cursor.execute(sort_index_sql(definition))
    logger.info("Built sort index %s for attribute %s", name, definition.key)
    return True


def sort_index_drop(*, agent_id: int, key: str) -> None:
    if connection.vendor != "postgresql":
        return
    name = sort_index_name(agent_id=agent_id, key=key)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
