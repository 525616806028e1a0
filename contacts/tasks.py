"""Background work of the contacts app (run by `manage.py worker`): sort indexes."""

from __future__ import annotations

from django.core.cache import caches
from django.db import connection
from django.tasks import task

from attributes.models import AttributeDefinition
from contacts.sort_indexes import sort_index_build, sort_index_exists

# Do not enqueue the same build again while one is probably queued or running.
_ENQUEUED_TTL = 15 * 60


@task
def build_attribute_sort_index(definition_id: int) -> bool:
    """Build the sort index of one attribute (see contacts.sort_indexes)."""
    definition = AttributeDefinition.objects.filter(pk=definition_id).first()
    if definition is None or definition.archived:
        return False
    return sort_index_build(definition)


def sort_index_request(definition: AttributeDefinition) -> bool:
    """Ask the task worker to build the index (once); True when a build was enqueued."""
    if connection.vendor != "postgresql":
        return False
    # A per-process memo: asking twice only enqueues a build that finds the index there.
    memo = caches["local"]
    marker = f"attr-sort-index:{definition.agent_id}:{definition.key}"
    if memo.get(marker):
        return False
    if sort_index_exists(definition):
        memo.set(marker, True, _ENQUEUED_TTL)
        return False
    build_attribute_sort_index.enqueue(definition_id=definition.pk)
    memo.set(marker, True, _ENQUEUED_TTL)
    return True
