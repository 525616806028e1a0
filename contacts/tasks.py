"""Background work of the contacts app (run by `manage.py worker`): sort indexes."""

from __future__ import annotations

from django.core.cache import caches
from django.tasks import task

from attributes.models import AttributeDefinition
from contacts.models import Contact
from contacts.selectors import EXACT_COUNT_LIMIT
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


def sort_index_request(definition: AttributeDefinition, *, large: bool | None = None) -> bool:
    """Ask the task worker to build the index (once) if the agent is large (more live
    contacts than an exact count covers; `large` when the caller knows); True when a build
    was enqueued."""
    # A per-process memo: asking twice only enqueues a build that finds the index there.
    memo = caches["local"]
    marker = f"attr-sort-index:{definition.agent_id}:{definition.key}"
    if memo.get(marker):
        return False
    if large is None:
        live = Contact.objects.filter(agent_id=definition.agent_id, deleted_at__isnull=True)
        large = live.order_by()[: EXACT_COUNT_LIMIT + 1].count() > EXACT_COUNT_LIMIT
    if not large:
        # Asked again once the memo expires, by when the agent may have grown.
        memo.set(marker, True, _ENQUEUED_TTL)
        return False
    if sort_index_exists(definition):
        memo.set(marker, True, _ENQUEUED_TTL)
        return False
    build_attribute_sort_index.enqueue(definition_id=definition.pk)
    memo.set(marker, True, _ENQUEUED_TTL)
    return True
