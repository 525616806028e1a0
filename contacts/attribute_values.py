"""Custom attribute values live on the contact (one JSON column): the attribute schema's
value store (attributes.values), registered in ContactsConfig.ready."""

from __future__ import annotations

from django.db import connection, transaction

from attributes.models import AttributeDefinition
from contacts import sql
from contacts.models import Contact
from contacts.sort_indexes import sort_index_drop


class ContactAttributeValues:
    def count(self, definition: AttributeDefinition) -> int:
        return Contact.objects.filter(
            agent_id=definition.agent_id, attributes__has_key=definition.key
        ).count()

    def count_option(self, definition: AttributeDefinition, option: str) -> int:
        return Contact.objects.filter(
            agent_id=definition.agent_id, **{f"attributes__{definition.key}": option}
        ).count()

    def remove(self, definition: AttributeDefinition) -> int:
        params = {
            "key": definition.key,
            "path": f'$."{definition.key}"',
            "agent": definition.agent_id,
        }
        with connection.cursor() as cursor:
            cursor.execute(sql.REMOVE_ATTRIBUTE[connection.vendor], params)
            removed = cursor.rowcount
        # The table's sort index for this key (if one was built) goes too, once committed:
        # DROP INDEX CONCURRENTLY cannot run inside the transaction.
        agent_id, key = definition.agent_id, definition.key
        transaction.on_commit(lambda: sort_index_drop(agent_id=agent_id, key=key), robust=True)
        return removed


contact_attribute_values = ContactAttributeValues()
