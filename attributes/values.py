"""Where attribute values live. This app owns the schema; the values are kept by the app
that stores contacts (one JSON column per contact), which registers a `ValueStore` in its
`AppConfig.ready`. Schema changes that touch values (deleting an attribute, removing a
select option, counting what a deletion would lose) go through it.
"""

from __future__ import annotations

from typing import Protocol

from attributes.models import AttributeDefinition


class ValueStore(Protocol):
    def count(self, definition: AttributeDefinition) -> int:
        """How many records (live or deleted) hold a value for the attribute."""

    def count_option(self, definition: AttributeDefinition, option: str) -> int:
        """How many records hold this option of a select attribute."""

    def remove(self, definition: AttributeDefinition) -> int:
        """Remove the attribute's values everywhere (inside the caller's transaction);
        returns how many records lost one."""


_stores: list[ValueStore] = []


def register(store: ValueStore) -> None:
    if store not in _stores:
        _stores.append(store)


def value_stores() -> list[ValueStore]:
    return list(_stores)
