"""Background work of the attributes app (run by `manage.py db_worker`)."""

from __future__ import annotations

from django.tasks import task

from attributes.models import AttributeDefinition
from attributes.sort_indexes import sort_index_build


@task
def build_attribute_sort_index(definition_id: int) -> bool:
    """Build the sort index of one attribute (see attributes.sort_indexes)."""
    definition = AttributeDefinition.objects.filter(pk=definition_id).first()
    if definition is None or definition.archived:
        return False
    return sort_index_build(definition)
