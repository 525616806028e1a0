from __future__ import annotations

import pytest

from attributes.selectors import attribute_definition_map
from tests.factories import AttributeFactory, ContactFactory


@pytest.fixture
def schema(agent):
    """One attribute of each type, like a real agent's schema."""
    AttributeFactory(agent=agent, key="plan", label="Plan", type="select", options=["Free", "Pro"])
    AttributeFactory(agent=agent, key="mrr", label="MRR", type="number")
    AttributeFactory(agent=agent, key="beta", label="Beta tester", type="boolean")
    AttributeFactory(agent=agent, key="signup", label="Signup date", type="date")
    AttributeFactory(agent=agent, key="last_order", label="Last order", type="datetime")
    AttributeFactory(agent=agent, key="website", label="Website", type="url")
    AttributeFactory(agent=agent, key="city", label="City", type="text")
    AttributeFactory(agent=agent, key="ltv", label="Lifetime value", type="number", secure=True)
    return attribute_definition_map(agent=agent)


@pytest.fixture
def contact(agent):
    return ContactFactory(agent=agent, name="Ada Lovelace", email="ada@example.com")
