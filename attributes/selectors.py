from __future__ import annotations

from attributes.models import AttributeDefinition
from workspaces.models import Agent


def attribute_definitions(
    *, agent: Agent, include_archived: bool = False
) -> list[AttributeDefinition]:
    """The agent's attribute schema in display order."""
    qs = AttributeDefinition.objects.filter(agent=agent)
    if not include_archived:
        qs = qs.filter(archived=False)
    return list(qs.order_by("position", "id"))


def attribute_definition_map(*, agent: Agent) -> dict[str, AttributeDefinition]:
    """Every definition of the agent (archived included), by key."""
    return {d.key: d for d in AttributeDefinition.objects.filter(agent=agent)}
