"""What contacts plug into the app below them (connected in ContactsConfig.ready)."""

from __future__ import annotations

from attributes import values
from contacts.attribute_values import contact_attribute_values


def connect() -> None:
    # Attribute values live on contacts: the schema reaches them through this store.
    values.register(contact_attribute_values)
